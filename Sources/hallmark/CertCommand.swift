import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore
import Revocation

struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Revoke, deactivate or activate a certificate. Live MQTT sessions using it end within a second.",
        subcommands: [Revoke.self, Deactivate.self, Activate.self])

    struct Target: ParsableArguments {
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The certificate: serial (hex), SHA-256 fingerprint, or a fingerprint prefix of 12+ digits.")
        var certificate: String
        @Option(help: "Why (kept in the event log).")
        var reason = "operator"
    }

    static func set(
        _ target: Target, to status: CertificateStatus, verb: String, revocationReason: String? = nil
    ) async throws {
        try await reporting {
            let code = try revocationReason.map { name in
                guard let reason = RevocationReason(name: name) else {
                    throw HallmarkError(
                        .notFound, "'\(name)' is not an RFC 5280 revocation reason.",
                        remedy: "Use one of \(RevocationReason.allCases.map(\.name).joined(separator: ", ")).")
                }
                return reason
            }
            let registry = try target.data.openRegistry()
            let fingerprint = try await registry.setCertificateStatus(
                target.certificate, to: status, reason: target.reason, revocationReason: code ?? .unspecified,
                tenant: target.tenant.filter, now: Date())
            print("\(verb) certificate \(fingerprint)")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate, for good: its session ends, and its CRL and OCSP answer say so within a second.")
        @OptionGroup var target: Target
        @Option(help: "The RFC 5280 reason its CRL entry and OCSP answer carry: keyCompromise, superseded, cessationOfOperation, affiliationChanged, privilegeWithdrawn, …")
        var code = "unspecified"
        func run() async throws { try await CertCommand.set(target, to: .revoked, verb: "revoked", revocationReason: code) }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a certificate aside until it is activated again.")
        @OptionGroup var target: Target
        func run() async throws { try await CertCommand.set(target, to: .inactive, verb: "deactivated") }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate an inactive certificate, or one pending activation (JITR); this creates its thing.")
        @OptionGroup var target: Target
        func run() async throws { try await CertCommand.set(target, to: .active, verb: "activated") }
    }
}

struct ThingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thing", abstract: "Activate or deactivate a thing. A deactivated thing's MQTT sessions end within a second.",
        subcommands: [Show.self, Reports.self, Activate.self, Deactivate.self])

    struct Reports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A thing's latest Device Defender reports: id, time, signed or not, and each datapoint by AWS metric id.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The thing's name.") var thing: String
        @Option(help: "How many, newest first.") var limit = 10

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for report in try registry.defenderReports(tenant: try tenant.resolve(in: registry), thing: thing, limit: limit) {
                    print("\(report.reportID)\t\(ISO8601DateFormatter().string(from: report.at))\t\(report.signed ? "signed" : "unsigned")\t\(report.datapoints)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a thing: its device, product, status, policies and attributes.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The thing's name.") var thing: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let found = try registry.thing(named: thing, tenant: try tenant.resolve(in: registry)) else {
                    throw HallmarkError(.notFound, "There is no thing \(thing.prefix(128)).", remedy: "Check the name with `hallmark registry devices`.")
                }
                print("\(found.name)\tdevice \(found.udid ?? "none")\tproduct \(found.product)\t\(found.status.rawValue)")
                print("policies: \(found.policies.joined(separator: ", "))")
                for (key, value) in found.attributes.sorted(by: { $0.key < $1.key }) { print("attribute \(key) = \(value)") }
            }
        }
    }

    struct Target: ParsableArguments {
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The thing's name.") var thing: String
        @Option(help: "Why (kept in the event log).") var reason = "operator"

        func set(active: Bool) async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try await registry.setThingStatus(thing, active: active, reason: reason, tenant: tenant.resolve(in: registry), now: Date())
                print("\(active ? "activated" : "deactivated") thing \(thing)")
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        @OptionGroup var target: Target
        func run() async throws { try await target.set(active: true) }
    }

    struct Deactivate: AsyncParsableCommand {
        @OptionGroup var target: Target
        func run() async throws { try await target.set(active: false) }
    }
}
