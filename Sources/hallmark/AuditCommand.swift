import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import Logging

/// `hallmark audit`: AWS IoT Device Defender Audit's checks over the fleet's configuration.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Audit the fleet's configuration with AWS IoT Device Defender Audit's checks (hallmark serve runs it daily).",
        subcommands: [Run.self, Suppress.self, Unsuppress.self, Suppressions.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run every check now: shared certificates, conflicting client ids, weak keys, over-broad policies, wildcards in Deny, expiring and old certificates, deactivated CAs with active certificates, the event log's checkpoints.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Flag(help: "Print JSON (AWS's AuditFinding fields).") var json = false
        @Option(help: "CERT_AGE_THRESHOLD_IN_DAYS: certificates older than this are reported (30…3652).") var certAgeDays = 365
        @Flag(help: "Record the run as an audit event.") var record = false
        @Flag(help: "Exit 1 when a finding of high or critical severity is not suppressed.") var strict = false

        func run() async throws {
            try await reporting {
                guard (30...3652).contains(certAgeDays) else {
                    throw HallmarkError(.configInvalid, "A certificate age threshold of \(certAgeDays) days is out of range.", remedy: "Give 30 to 3652 days (AWS's range).")
                }
                let registry = try data.openRegistry()
                let service = AuditService(
                    registry: registry, files: AuthorityFiles(dataDirectory: data.dataURL),
                    interval: nil, settings: .init(certificateAgeDays: certAgeDays), logger: Logger(label: "hallmark.audit"))
                let findings = try service.run(tenant: tenant.filter)
                if record {
                    for id in Set(findings.map(\.tenant)).union(tenant.filter.map { [$0] } ?? []) {
                        try await registry.recordAudit(tenant: id, findings: findings.filter { $0.tenant == id }, now: Date())
                    }
                }
                if json {
                    print(String(decoding: try JSONSerialization.data(withJSONObject: findings.map(\.jsonObject), options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
                } else {
                    for finding in findings {
                        print(
                            "\(finding.severity.rawValue)\t\(finding.checkName)\t\(finding.tenant)\t\(finding.resourceType) \(finding.resourceIdentifier)\t\(finding.reasonForNonComplianceCode)"
                                + (finding.suppressed ? "\t(suppressed)" : "") + "\n\t\(finding.reasonForNonCompliance)\n\tfix: \(finding.mitigation)")
                    }
                    let open = findings.filter { !$0.suppressed }
                    print("\(open.count) findings, \(findings.count - open.count) suppressed")
                }
                if strict && findings.contains(where: { !$0.suppressed && $0.severity <= .high }) { throw ExitCode(1) }
            }
        }
    }

    struct Suppress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suppress a finding: a check on one resource, for some days or for good.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The check's name (e.g. IOT_POLICY_OVERLY_PERMISSIVE_CHECK).") var check: String
        @Argument(help: "The resource's identifier, as the finding names it.") var resource: String
        @Option(help: "For how many days (default: until unsuppressed).") var days: Int?
        @Option(help: "Why.") var reason = "accepted risk"

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let until = days.map { Date().addingTimeInterval(TimeInterval($0) * 86_400) }
                try await registry.suppressAuditFinding(
                    tenant: try tenant.resolve(in: registry), check: check, resource: resource, until: until, reason: reason, now: Date())
                print("\(check) on \(resource): suppressed" + (until.map { " until \(ISO8601DateFormatter().string(from: $0))" } ?? ""))
            }
        }
    }

    struct Unsuppress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a suppression.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var check: String
        @Argument var resource: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try await registry.unsuppressAuditFinding(tenant: try tenant.resolve(in: registry), check: check, resource: resource, now: Date())
                print("\(check) on \(resource): no longer suppressed")
            }
        }
    }

    struct Suppressions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the suppressions in force.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for suppression in try registry.auditSuppressions(tenant: tenant.filter, now: Date()) {
                    print("\(suppression.tenant)\t\(suppression.check)\t\(suppression.resource)\t\(suppression.until.map { ISO8601DateFormatter().string(from: $0) } ?? "for good")\t\(suppression.reason)")
                }
            }
        }
    }
}
