import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore
import X509

/// Bring-your-own CA: an OEM's CA whose device certificates the broker accepts.
extension CACommand {
    struct RegistrationCode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "registration-code",
            abstract: "Print the registration code: the subject CN of the verification certificate that proves you hold a CA's key.")

        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                print(try registry.registrationCode(tenant: tenant.resolve(in: registry), now: Date()))
            }
        }
    }

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an OEM's CA (with proof of possession). Its devices then join on first connection.",
            discussion: """
                Without --template, a device's first connection registers its certificate as PENDING_ACTIVATION,
                announces it on $aws/events/certificates/registered/<CA id> and is refused (JITR); activate it with
                `hallmark cert activate`. With --template, the thing is created, the certificate activated, the
                policy attached and the same connection goes on (JITP). A template is JSON:
                {"product": "default", "thingName": "oem-${iot:Certificate.Subject.CommonName}", "policy": "NAME"}
                """)

        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        @Option(help: "The OEM CA's certificate (PEM).")
        var caCertificate: String

        @Option(help: "A certificate signed by that CA whose subject CN is the registration code (PEM).")
        var verificationCertificate: String

        @Option(help: "A provisioning template (JSON file) for just-in-time provisioning.")
        var template: String?

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let ca = try loadCertificate(caCertificate, what: "CA certificate")
                let proof = try loadCertificate(verificationCertificate, what: "verification certificate")
                let parsedTemplate = try template.map { path in
                    guard let json = FileManager.default.contents(atPath: path) else {
                        throw HallmarkError(.provisioningTemplateInvalid, "The template file \(path) cannot be read.", remedy: "Check the path.")
                    }
                    return try ProvisioningTemplate(json: json)
                }
                let registered = try await registry.registerCA(
                    ca, verification: proof, template: parsedTemplate, tenant: tenant.resolve(in: registry), now: Date())
                print("registered CA \(registered.id)")
                print("  subject: \(ca.subject)")
                if let t = registered.template {
                    print("  JITP: things named \(t.thingName) in product \(t.product), policy \(t.policy ?? "(the product's default)")")
                } else {
                    print("  JITR: new certificates wait for `hallmark cert activate`; events on $aws/events/certificates/registered/\(registered.id)")
                }
            }
        }
    }

    struct Registered: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered OEM CAs.")

        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let cas = try registry.registeredCAs(tenant: tenant.filter)
                if cas.isEmpty { print("no registered CAs") }
                for ca in cas {
                    let mode = ca.template.map { "JITP (\($0.product), \($0.thingName))" } ?? "JITR"
                    print("\(ca.id)  \(ca.active ? "active  " : "inactive")  \(mode)  \(ca.certificate.subject)")
                }
            }
        }
    }

    struct SetStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-status",
            abstract: "Deactivate or reactivate a registered OEM CA. While inactive, its devices are refused and their sessions end.")

        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The registered CA's id (or a prefix of 12+ digits).") var id: String
        @Argument(help: "active or inactive.") var status: String

        func run() async throws {
            try await reporting {
                guard status == "active" || status == "inactive" else {
                    throw HallmarkError(.configInvalid, "The status \(status) is not active or inactive.", remedy: "Give active or inactive.")
                }
                let registry = try data.openRegistry()
                try await registry.setCAStatus(id, active: status == "active", tenant: tenant.resolve(in: registry), now: Date())
                print("CA \(id) is \(status)")
            }
        }
    }
}

/// Reads one PEM certificate from a file.
func loadCertificate(_ path: String, what: String) throws -> Certificate {
    guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw HallmarkError(.notFound, "The \(what) file \(path) cannot be read.", remedy: "Check the path and its permissions.")
    }
    do {
        return try Certificate(pemEncoded: pem)
    } catch {
        throw HallmarkError(.caRegistrationInvalid, "The \(what) in \(path) is not a PEM X.509 certificate.",
                            remedy: "Give the certificate as PEM (BEGIN CERTIFICATE).")
    }
}
