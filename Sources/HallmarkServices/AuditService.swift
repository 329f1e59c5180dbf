import HallmarkCore
import HallmarkStore
import Logging
import Synchronization
import ServiceLifecycle
import X509

import Foundation

/// Audits the fleet's configuration (``AuditChecks``) on demand and on a schedule: findings the
/// operator suppressed are kept but marked; each scheduled run is an `audit` event per tenant,
/// and its findings of high or critical severity are announced on `$hallmark/alarms/audit/<check>`
/// and to the webhook.
public final class AuditService: Service, Sendable {
    let registry: Registry
    let files: AuthorityFiles
    let interval: Duration?
    let settings: AuditChecks.Settings
    let defender: DefenderService?
    let logger: Logger
    /// The last scheduled run's open findings by severity (nil before the first).
    private let lastCounts = Mutex<[AuditFinding.Severity: Int]?>(nil)

    /// The last scheduled audit's open findings, by severity.
    public var lastFindings: [AuditFinding.Severity: Int]? { lastCounts.withLock { $0 } }

    public init(
        registry: Registry, files: AuthorityFiles, interval: Duration?, settings: AuditChecks.Settings = .init(), defender: DefenderService? = nil,
        logger: Logger
    ) {
        self.registry = registry
        self.files = files
        self.interval = interval
        self.settings = settings
        self.defender = defender
        self.logger = logger
    }

    /// Hallmark's own CAs, by tenant (`*`: the shared ones, audited for every tenant).
    func hallmarkCAs() throws -> [(tenant: String, id: String, certificate: Certificate)] {
        var cas: [(tenant: String, id: String, certificate: Certificate)] = []
        if let root = try? files.loadRoot() { cas.append(("*", "hallmark-root", root)) }
        if let issuing = try? files.loadIssuingCertificate() { cas.append(("*", "hallmark-issuing", issuing)) }
        for (tenant, certificate) in try registry.tenantIssuingCAs() { cas.append((tenant, "tenant-issuing-\(tenant)", certificate)) }
        return cas
    }

    /// Runs every check over a tenant's configuration (every tenant's for nil).
    public func run(tenant: String?, now: Date = Date()) throws -> [AuditFinding] {
        let snapshot = try registry.auditSnapshot(tenant: tenant, extraCAs: try hallmarkCAs(), now: now)
        let suppressed = Set(try registry.auditSuppressions(tenant: tenant, now: now).map { "\($0.tenant)\u{0}\($0.check)\u{0}\($0.resource)" })
        return AuditChecks.run(snapshot, settings: settings, now: now).map { finding in
            var finding = finding
            finding.suppressed = suppressed.contains("\(finding.tenant)\u{0}\(finding.checkName)\u{0}\(finding.resourceIdentifier)")
            return finding
        }
    }

    public func run() async throws {
        guard let interval else { return try await gracefulShutdown() }
        // The first audit a minute after the start, then on the schedule.
        var wait: Duration = .seconds(60)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // A graceful shutdown ends the wait at once (a day's sleep must not hold the server up).
            let pause = min(wait, interval)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            wait = interval
            guard !Task.isShuttingDownGracefully else { break }
            do {
                let now = Date()
                let findings = try run(tenant: nil, now: now)
                let open = findings.filter { !$0.suppressed }
                lastCounts.withLock { counts in
                    counts = Dictionary(uniqueKeysWithValues: AuditFinding.Severity.allCases.map { severity in (severity, open.filter { $0.severity == severity }.count) })
                }
                for tenant in try registry.tenants().map(\.id) {
                    let own = findings.filter { $0.tenant == tenant }
                    try await registry.recordAudit(tenant: tenant, findings: own, now: now)
                    for finding in own where !finding.suppressed && finding.severity <= .high {
                        defender?.announceFinding(finding)
                    }
                }
            } catch {
                logger.error("audit failed: \(error)")
            }
        }
    }
}

extension AuditFinding {
    /// The finding as JSON (AWS's `AuditFinding` fields, plus the tenant, mitigation and whether it is suppressed).
    public var jsonObject: [String: Any] {
        [
            "checkName": checkName, "severity": severity.rawValue, "tenant": tenant,
            "nonCompliantResource": ["resourceType": resourceType, "resourceIdentifier": resourceIdentifier],
            "reasonForNonComplianceCode": reasonForNonComplianceCode, "reasonForNonCompliance": reasonForNonCompliance,
            "mitigation": mitigation, "isSuppressed": suppressed,
        ]
    }
}
