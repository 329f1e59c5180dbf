import ArgumentParser
import Crypto
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import X509

/// `hallmark provisioning-template`: AWS IoT provisioning templates for fleet provisioning by claim.
struct ProvisioningTemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provisioning-template", abstract: "AWS IoT provisioning templates for fleet provisioning by claim.",
        subcommands: [Create.self, List.self, Show.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a template: an AWS IoT provisioning template document (what Hallmark does not support of it is refused now).")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The template's name (1-36 letters, digits, '_', '-'): devices publish to $aws/provisioning-templates/NAME/provision/json.")
        var name: String
        @Argument(help: "The template document (JSON, AWS's format).") var file: String
        @Option(help: "The product its devices must be of (default: the claim's).") var product: String?
        @Option(help: "A pre-provisioning hook: an HTTPS URL that must allow each registration within 5 seconds.") var hook: String?
        @Option(help: "The template parameter that carries the device's UDID.") var udidParameter = "SerialNumber"
        @Flag(help: "Replace the document of an existing template.") var replace = false

        func run() async throws {
            try await reporting {
                guard let document = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw HallmarkError(.provisioningTemplateInvalid, "The template file \(file) cannot be read.", remedy: "Check the path.")
                }
                let registry = try data.openRegistry()
                let record = Registry.ProvisioningTemplateRecord(
                    tenant: try tenant.resolve(in: registry), name: name, product: product, document: document, udidParameter: udidParameter,
                    hookURL: hook, createdAt: Date())
                try registry.putProvisioningTemplate(record, replace: replace, now: Date())
                print(Show.describe(record))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's templates.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for record in try registry.provisioningTemplates(tenant: try tenant.resolve(in: registry)) { print(Show.describe(record)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a template's document.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var name: String

        static func describe(_ record: Registry.ProvisioningTemplateRecord) -> String {
            "\(record.name)\tproduct \(record.product ?? "of the claim")\tUDID in \(record.udidParameter)\thook \(record.hookURL ?? "none")"
        }

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let record = try registry.provisioningTemplate(tenant: try tenant.resolve(in: registry), name: name) else {
                    throw HallmarkError(.notFound, "There is no template \(name.prefix(40)).", remedy: "List them with `hallmark provisioning-template list`.")
                }
                print(Self.describe(record))
                print(record.document)
            }
        }
    }
}

/// `hallmark claim`: the shared certificates devices provision themselves with.
struct ClaimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claim", abstract: "Fleet provisioning claims: one certificate for many devices, good only for asking for their own.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a claim certificate and key (DIR/claim.pem, DIR/claim.key) for a product's template; prints the claim id.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option(help: "The product whose devices it provisions.") var product: String
        @Option(help: "The provisioning template it may use.") var template: String
        @Option(help: "Where to write claim.pem and claim.key.") var out: String
        @Option(help: "How many devices it may provision (default: no limit).") var maxUses: Int?
        @Option(help: "Days it stays good (default 365).") var validDays = 365

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let tenantID = try tenant.resolve(in: registry)
                let passphrase = try data.passphrase()
                let files = AuthorityFiles(dataDirectory: data.dataURL)
                let authorities = IssuingAuthorities(shared: try files.loadIssuingAuthority(passphrase: passphrase), registry: registry) { tenant, certificate in
                    try files.loadTenantAuthority(tenant: tenant, certificate: certificate, passphrase: passphrase)
                }
                let issued = try ClaimIssuance.issue(
                    registry: registry, authority: try await authorities.authority(for: tenantID), tenant: tenantID, product: product,
                    template: template, maxUses: maxUses, validDays: validDays, now: Date())
                let directory = URL(fileURLWithPath: out, isDirectory: true)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let chain = try issued.chain.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
                try Data(chain.utf8).write(to: directory.appendingPathComponent("claim.pem"))
                let keyFile = directory.appendingPathComponent("claim.key")
                try Data((issued.key.pemRepresentation + "\n").utf8).write(to: keyFile)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile.path)
                print("\(issued.claim.id)\tproduct \(product)\ttemplate \(template)\t\(maxUses.map { "at most \($0) devices" } ?? "no device limit")\tuntil \(issued.chain[0].notValidAfter)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's claims.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let claims = try registry.claims(tenant: try tenant.resolve(in: registry))
                guard !json else {
                    let objects: [[String: Any]] = claims.map { claim in
                        var object: [String: Any] = [
                            "id": claim.id, "product": claim.product, "template": claim.template, "serial": claim.serial,
                            "certificateId": claim.fingerprint, "used": claim.used, "status": claim.status,
                        ]
                        if let maxUses = claim.maxUses { object["maxUses"] = maxUses }
                        if let expiresAt = claim.expiresAt { object["expiresAt"] = Int(expiresAt.timeIntervalSince1970) }
                        return object
                    }
                    return print(String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
                }
                for claim in claims {
                    print("\(claim.id)\t\(claim.status)\tproduct \(claim.product)\ttemplate \(claim.template)\tused \(claim.used)\(claim.maxUses.map { " of \($0)" } ?? "")")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a claim: its certificate is revoked and its sessions end; it provisions no more devices.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var id: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try await registry.revokeClaim(tenant: try tenant.resolve(in: registry), id: id, now: Date())
                print("\(id): revoked")
            }
        }
    }
}
