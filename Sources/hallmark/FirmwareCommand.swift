import ArgumentParser
import Crypto
import Firmware
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore

struct FirmwareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firmware",
        abstract: "Firmware releases in MCUboot's image format: product keys, mastering, imports from an OEM's signer, devices' copies.",
        subcommands: [Key.self, Master.self, Import.self, Signer.self, List.self, Image.self])

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A product's firmware signing key and mastering key (the recipient of every release's content key).",
            subcommands: [Create.self, Show.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a product's keys (P-256, sealed at rest) and write their public halves as DIR/signing.pub.pem and DIR/mastering.pub.pem.")
            @OptionGroup var data: DataOptions
            @OptionGroup var tenant: TenantOption
            @Option var product: String
            @Option(help: "Where to write the public keys.") var out: String

            func run() async throws {
                try await reporting {
                    let registry = try data.openRegistry()
                    let catalog = FirmwareCatalog(registry: registry, tenant: try tenant.resolve(in: registry))
                    let keys = try catalog.createKeys(product: product, passphrase: try data.passphrase())
                    try write(keys, to: out)
                    print("Product \(product): signing key \(keys.signingKeyHash) (imgtool getpubhash -e raw)")
                    let productClass = ProductClass(tenant: catalog.tenant, product: product)
                    print("Images signed elsewhere: imgtool sign -k OEM.pem -E \(out)/mastering.pub.pem -s auto --vid \(catalog.tenant) --cid \(product) (class \(productClass.classIDText))")
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Write a product's public keys again (DIR/signing.pub.pem, DIR/mastering.pub.pem).")
            @OptionGroup var data: DataOptions
            @OptionGroup var tenant: TenantOption
            @Option var product: String
            @Option var out: String

            func run() async throws {
                try await reporting {
                    let registry = try data.openRegistry()
                    let keys = try FirmwareCatalog(registry: registry, tenant: try tenant.resolve(in: registry)).publicKeys(product: product)
                    try write(keys, to: out)
                    print("Product \(product): signing key \(keys.signingKeyHash)")
                }
            }
        }

        static func write(_ keys: FirmwareCatalog.PublicKeys, to directory: String) throws {
            let url = URL(fileURLWithPath: directory, isDirectory: true)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try Data(keys.signing.utf8).write(to: url.appendingPathComponent("signing.pub.pem"))
            try Data(keys.mastering.utf8).write(to: url.appendingPathComponent("mastering.pub.pem"))
        }
    }

    struct Master: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign and encrypt a plain binary as a release (a fresh content key each time); prints the release id last.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option var product: String
        @Option(help: "major.minor.revision[+build], as imgtool's -v.") var version: String
        @Option(help: "The security counter, or 'auto' (major<<24 | minor<<16 | revision, imgtool's -s auto). Default auto.")
        var securityCounter = "auto"
        @Argument(help: "The plain binary (no header room needed; a 0x200-byte header is added).") var file: String

        func run() async throws {
            try await reporting {
                guard let parsed = ImageVersion(parsing: version) else {
                    throw HallmarkError(.firmwareImageInvalid, "'\(version.prefix(40))' is not a version.", remedy: "Write it as 1.2.3 or 1.2.3+4.")
                }
                let counter: UInt32?
                if securityCounter == "auto" {
                    counter = nil
                } else if let value = UInt32(securityCounter) {
                    counter = value
                } else {
                    throw HallmarkError(.firmwareImageInvalid, "'\(securityCounter.prefix(20))' is not a security counter.", remedy: "Give a number from 0 to 4294967295, or auto.")
                }
                let binary = try readFile(file)
                let registry = try data.openRegistry()
                let catalog = FirmwareCatalog(registry: registry, tenant: try tenant.resolve(in: registry))
                let release = try catalog.master(product: product, binary: binary, version: parsed, securityCounter: counter, passphrase: try data.passphrase())
                print(List.describe(release))
                print(release.id)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import an image signed with `imgtool sign -k OEM.pem -E mastering.pub.pem -s N` by a registered signer; prints the release id last.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option var product: String
        @Argument var file: String

        func run() async throws {
            try await reporting {
                let bytes = try readFile(file)
                let registry = try data.openRegistry()
                let catalog = FirmwareCatalog(registry: registry, tenant: try tenant.resolve(in: registry))
                let release = try await catalog.importImage(product: product, bytes: bytes, passphrase: try data.passphrase(), source: "cli")
                print(List.describe(release))
                print(release.id)
            }
        }
    }

    struct Signer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Keys whose images a product imports.", subcommands: [Add.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Register an OEM's P-256 signing key (its public half, PEM) for a product.")
            @OptionGroup var data: DataOptions
            @OptionGroup var tenant: TenantOption
            @Option var product: String
            @Argument(help: "The public key (or the private key: only its public half is read and kept).") var key: String

            func run() async throws {
                try await reporting {
                    let text = String(decoding: try readFile(key), as: UTF8.self)
                    let publicKey: P256.Signing.PublicKey
                    if let parsed = try? P256.Signing.PublicKey(pemRepresentation: text) {
                        publicKey = parsed
                    } else if let parsed = try? P256.Signing.PrivateKey(pemRepresentation: text) {
                        publicKey = parsed.publicKey
                    } else {
                        throw HallmarkError(
                            .firmwareImageInvalid, "\(key) is not a P-256 key in PEM.",
                            remedy: "Export it with `imgtool getpub -k OEM.pem -e pem` or `openssl pkey -pubout`.")
                    }
                    let registry = try data.openRegistry()
                    let hash = MCUbootImage.keyHash(publicKey).hexString
                    try registry.addFirmwareSigner(
                        tenant: try tenant.resolve(in: registry), product: product, keyHash: hash, publicKey: Array(publicKey.derRepresentation), now: Date())
                    print("Product \(product): signer \(hash) registered")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List releases, newest first.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option var product: String?

        static func describe(_ release: Registry.FirmwareRelease) -> String {
            "\(release.product)\t\(release.version)\tsecurity counter \(release.securityCounter)\t\(release.size) bytes\t\(release.origin)\tsigner \(release.signerKeyHash.prefix(16))\t\(release.id)"
        }

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for release in try registry.firmwareReleases(tenant: try tenant.resolve(in: registry), product: product) { print(Self.describe(release)) }
            }
        }
    }

    struct Image: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a device's copy of a release: its content key wrapped for the device's firmware key.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The release id (or its first 8 or more hex digits).") var release: String
        @Option var udid: String
        @Option var out: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let catalog = FirmwareCatalog(registry: registry, tenant: try tenant.resolve(in: registry))
                let (found, bytes) = try await catalog.deviceImage(release: release, udid: udid, passphrase: try data.passphrase(), source: "cli")
                try Data(bytes).write(to: URL(fileURLWithPath: out))
                print("\(udid): release \(found.version) (\(found.id.prefix(16))…), \(bytes.count) bytes, in \(out)")
            }
        }
    }
}

/// A file's bytes, or `not_found` naming it.
func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw HallmarkError(.notFound, "\(path) cannot be read.", remedy: "Check the path and its permissions.")
    }
    return [UInt8](data)
}
