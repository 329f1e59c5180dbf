import HallmarkCore
import HallmarkMetrics
import HallmarkStore
import Synchronization

import Foundation

/// What the registry knows, for Prometheus, read at most every ten seconds: certificates by
/// status (across processes: the CLI's revocations too), active Device Defender violations, and the
/// last scheduled audit's findings by severity.
public final class RegistrySamples: Sendable {
    let registry: Registry
    let audit: AuditService?
    private let cache = Mutex<(at: Date, samples: [FleetMetrics.Sample])?>(nil)

    public init(registry: Registry, audit: AuditService?) {
        self.registry = registry
        self.audit = audit
    }

    @Sendable public func samples() -> [FleetMetrics.Sample] {
        if let cached = cache.withLock({ $0 }), Date().timeIntervalSince(cached.at) < 10 { return cached.samples }
        var samples: [FleetMetrics.Sample] = []
        let statuses = (try? registry.certificateCountsByStatus()) ?? [:]
        for status in ["active", "inactive", "revoked", "superseded", "pending_activation"] {
            samples.append(
                .init(name: "certificates", help: "Certificates in the registry, by status.", label: ("status", status), value: Double(statuses[status] ?? 0)))
        }
        samples.append(
            .init(name: "defender_violations_active", help: "Device Defender violations in alarm.",
                  value: Double((try? registry.activeViolationCount()) ?? 0)))
        if let counts = audit?.lastFindings {
            for severity in AuditFinding.Severity.allCases {
                samples.append(
                    .init(name: "audit_findings", help: "Open findings of the last scheduled audit, by severity.",
                          label: ("severity", severity.rawValue.lowercased()), value: Double(counts[severity] ?? 0)))
            }
        }
        cache.withLock { $0 = (Date(), samples) }
        return samples
    }
}
