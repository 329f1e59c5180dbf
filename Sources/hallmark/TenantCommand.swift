import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore

/// The tenant a command acts for.
struct TenantOption: ParsableArguments {
    @Option(help: "The tenant (an OEM) to act for (default: $HALLMARK_TENANT or 'default').")
    var tenant: String?

    var id: String { filter ?? Registry.defaultTenant }

    /// The tenant if one was named; listings without one show every tenant.
    var filter: String? { tenant ?? ProcessInfo.processInfo.environment["HALLMARK_TENANT"] }

    /// The tenant id, checked to exist.
    func resolve(in registry: Registry) throws -> String {
        try registry.requireTenant(id)
        return id
    }
}

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "OEM tenants, each with its own fleet, events and administrator credential.",
        subcommands: [Create.self, List.self, Credential.self, IssuingCA.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tenant with its own issuing CA, and print its administrator credential (shown once).")
        @OptionGroup var data: DataOptions
        @Argument(help: "The tenant id: 1–32 of a–z, 0–9, '-'. Its devices enrol at /.well-known/est/<id>/simpleenroll.")
        var id: String
        @Option(help: "A display name.") var name: String?

        func run() async throws {
            try await reporting {
                let created = try AuthorityFiles(dataDirectory: data.dataURL).createTenant(
                    id: id, name: name ?? id, in: data.openRegistry(), passphrase: data.passphrase(), now: Date())
                print("tenant \(id) created")
                print("  EST:        /.well-known/est/\(id)/simpleenroll")
                print("  issuing CA: \(created.authority.certificate.subject) (serial \(created.authority.certificate.serialHex))")
                let secret = created.credential
                print("  credential: \(secret)")
                print("  (shown once; the API takes it as 'Authorization: Bearer …')")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants with their fleet sizes.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            try await reporting {
                for tenant in try data.openRegistry().tenants() {
                    print("\(tenant.id)\t\(tenant.devices) devices\t\(tenant.things) things\t\(tenant.hasCredential ? "credential set" : "no credential")\t\(tenant.hasOwnCA ? "own CA" : "shared CA")\t\(tenant.name)")
                }
            }
        }
    }

    struct Credential: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a tenant a new administrator credential; the old one stops working at once.")
        @OptionGroup var data: DataOptions
        @Argument var id: String

        func run() async throws {
            try await reporting {
                print(try data.openRegistry().rotateTenantCredential(id, now: Date()))
            }
        }
    }

    struct IssuingCA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca",
            abstract: "Give a tenant made before tenants had their own CA an issuing CA; its devices get certificates from it when they next enrol or renew.")
        @OptionGroup var data: DataOptions
        @Argument var id: String

        func run() async throws {
            try await reporting {
                let authority = try AuthorityFiles(dataDirectory: data.dataURL).addTenantAuthority(
                    tenant: id, in: data.openRegistry(), passphrase: data.passphrase(), now: Date())
                print("tenant \(id): issuing CA \(authority.certificate.subject) (serial \(authority.certificate.serialHex))")
            }
        }
    }
}
