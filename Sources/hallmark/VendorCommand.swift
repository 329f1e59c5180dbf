import ArgumentParser
import Crypto
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import X509

struct VendorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vendor", abstract: "Silicon vendors a tenant trusts: manifest-signing keys and attestation roots.",
        subcommands: [Register.self, List.self, Simulate.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a silicon vendor for a tenant (or update it).")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The vendor's id, e.g. 'microchip'.") var id: String
        @Option(help: "The vendor's manifest-signing public key (PEM, P-256: manifests are ES256).")
        var manifestKey: String?
        @Option(help: "A root (or intermediate) CA of the vendor's device attestation certificates (PEM); repeatable.")
        var attestationRoot: [String] = []

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let key = try manifestKey.map { path -> P256.Signing.PublicKey in
                    guard let pem = try? String(contentsOfFile: path, encoding: .utf8),
                        let key = try? P256.Signing.PublicKey(pemRepresentation: pem)
                    else {
                        throw HallmarkError(.vendorInvalid, "\(path) is not a P-256 public key in PEM.",
                                            remedy: "Give the vendor's ES256 manifest-signing public key (BEGIN PUBLIC KEY).")
                    }
                    return key
                }
                let roots = try attestationRoot.map { try loadCertificate($0, what: "attestation root") }
                try registry.registerVendor(
                    tenant: try tenant.resolve(in: registry), id: id, manifestKey: key, attestationCertificates: roots, now: Date())
                print("vendor \(id) registered for tenant \(tenant.id)")
                if let key { print("  manifest key \(SecureElementManifest.keyID(key))") }
                for root in roots { print("  attestation CA \(root.subject)") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's vendors.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for trust in try registry.vendorTrusts(tenant: try tenant.resolve(in: registry)) {
                    let key = trust.manifestKey.map(SecureElementManifest.keyID) ?? "no manifest key"
                    let roots = (trust.attestationRoots + trust.attestationIntermediates).map { "\($0.subject)" }
                    print("\(trust.vendor)\tmanifest key \(key)\tattestation: \(roots.isEmpty ? "none" : roots.joined(separator: "; "))")
                }
            }
        }
    }

    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a simulated silicon vendor (manifest-signing key, attestation root CA) for `device factory --vendor`.")
        @Option(help: "The vendor's directory.") var out: String
        @Option var name = "Simulated Silicon"

        func run() async throws {
            try await reporting {
                let vendor = try SimulatedVendor.create(at: URL(fileURLWithPath: out, isDirectory: true), name: name)
                print("vendor \(name) in \(out)")
                print("  manifest key:     \(vendor.manifestPublicKeyFile.path)")
                print("  attestation root: \(vendor.attestationRootFile.path)")
            }
        }
    }
}

struct ManifestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest", abstract: "Vendor manifests of genuine devices.", subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a signed vendor manifest and claim its devices (all, one lot, or a list) for a tenant.",
            discussion: """
                The manifest is a JSON array of signed secure elements (flattened JWS, ES256), the shape Microchip
                publishes. Every entry's signature, claims and attestation chain are checked; by default one bad entry
                or a device another tenant owns means nothing is claimed (--skip-invalid claims the rest).
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var file: String
        @Option(help: "The registered vendor that signed it.") var vendor: String
        @Option(help: "Claim only this lot (the entries' groupId).") var lot: String?
        @Option(help: "Claim only the UDIDs listed in this file (one per line).") var udids: String?
        @Option var product = Registry.defaultProduct
        @Flag var skipInvalid = false

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let bytes = FileManager.default.contents(atPath: file) else {
                    throw HallmarkError(.notFound, "The manifest \(file) cannot be read.", remedy: "Check the path.")
                }
                var claim = Registry.Claim.all
                if let lot { claim = .lot(lot) }
                if let udids {
                    guard let text = try? String(contentsOfFile: udids, encoding: .utf8) else {
                        throw HallmarkError(.notFound, "The UDID list \(udids) cannot be read.", remedy: "Check the path.")
                    }
                    claim = .udids(Set(try text.split(whereSeparator: \.isNewline).map {
                        try UDID(validating: $0.trimmingCharacters(in: .whitespaces))
                    }))
                }
                let report = try await ManifestImport(registry: registry).run(
                    Array(bytes), vendor: vendor, tenant: try tenant.resolve(in: registry), claim: claim, product: product,
                    skipInvalid: skipInvalid, source: file, now: Date())
                for problem in report.problems {
                    print("entry \(problem.index) (\(problem.udid ?? "?")): [\(problem.error.code)] \(problem.error.reason)")
                }
                print("manifest \(report.manifestID.prefix(16)): \(report.entries) entries, \(report.claimed) claimed, \(report.alreadyOwned) already yours, \(report.notSelected) not selected, \(report.problems.count) refused")
                guard report.committed else {
                    let first = report.problems[0].error
                    throw HallmarkError(first.code, "Nothing was claimed: \(report.problems.count) entr\(report.problems.count == 1 ? "y was" : "ies were") refused.",
                                        remedy: "Fix the manifest, or claim the valid entries with --skip-invalid.")
                }
            }
        }
    }
}
