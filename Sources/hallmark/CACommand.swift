import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import X509

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "The certificate authority.", subcommands: [Init.self, Show.self, RegistrationCode.self, Register.self, Registered.self, SetStatus.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the root CA (P-384) and the issuing CA (P-256), keys sealed under the passphrase.")

        @OptionGroup var data: DataOptions

        @Option(help: "The organisation named in the CA certificates.")
        var organization = "Hallmark"

        func run() async throws {
            try await reporting {
                let passphrase = try data.passphrase()
                let files = AuthorityFiles(dataDirectory: data.dataURL)
                let authority = try files.initialise(organization: organization, passphrase: passphrase, now: Date())
                _ = try Registry(path: data.registryPath)
                print("CA initialised in \(files.directory.path)")
                print("  root CA:    \(authority.root.subject)  (P-384)")
                print("  issuing CA: \(authority.certificate.subject)  (P-256)")
                print("  trust file for clients: \(files.rootFile.path)")
                print("  chain (issuing + root): \(files.chainFile.path)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the CA certificates.")

        @OptionGroup var data: DataOptions

        func run() async throws {
            try await reporting {
                let files = AuthorityFiles(dataDirectory: data.dataURL)
                guard files.isInitialised else {
                    throw HallmarkError(.caNotInitialised, "No CA in \(data.resolvedDataDirectory).", remedy: "Run `hallmark ca init`.")
                }
                let root = try files.loadRoot()
                print("root:  \(root.subject)  valid until \(root.notValidAfter)")
                print("files: \(files.rootFile.path), \(files.chainFile.path)")
            }
        }
    }
}
