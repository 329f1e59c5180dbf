import Foundation

/// Audits the fleet's configuration: pure, over a snapshot of the registry.
public enum AuditChecks {
    public struct Settings: Sendable {
        /// AWS's `CERT_AGE_THRESHOLD_IN_DAYS` (30…3652, default 365).
        public var certificateAgeDays: Int
        /// How soon before expiry a certificate is reported (AWS: 30 days).
        public var expiringDays: Int

        public init(certificateAgeDays: Int = 365, expiringDays: Int = 30) {
            self.certificateAgeDays = certificateAgeDays
            self.expiringDays = expiringDays
        }
    }

    public static func run(_ snapshot: AuditSnapshot, settings: Settings = Settings(), now: Date) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        let expiring = now.addingTimeInterval(TimeInterval(settings.expiringDays) * 86_400)
        let old = now.addingTimeInterval(-TimeInterval(settings.certificateAgeDays) * 86_400)
        for shared in snapshot.sharedCertificates {
            findings.append(
                AuditFinding(
                    .deviceCertificateShared, tenant: shared.tenant, resourceType: "DEVICE_CERTIFICATE", resourceIdentifier: shared.serial,
                    reasonCode: "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES",
                    reason: "certificate \(shared.serial) of thing \(shared.thing) was in use by two connections at once (a clone)",
                    mitigation: "Revoke the certificate (`hallmark cert revoke`) and enrol the genuine device again; quarantine the clone's device."))
        }
        for conflict in snapshot.conflictingClientIDs {
            findings.append(
                AuditFinding(
                    .conflictingClientIDs, tenant: conflict.tenant, resourceType: "CLIENT_ID", resourceIdentifier: conflict.clientID,
                    reasonCode: "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS",
                    reason: "client id \(conflict.clientID) was used by \(conflict.certificates) certificates in the last 30 days",
                    mitigation: "Bind client ids to things (`client/${iot:Connection.Thing.ThingName}` in the policy), as the default policy does."))
        }
        for certificate in snapshot.certificates {
            if let key = certificate.key, let weakness = KeyQuality.weakness(key) {
                findings.append(
                    AuditFinding(
                        .deviceCertificateKeyQuality, tenant: certificate.tenant, resourceType: "DEVICE_CERTIFICATE",
                        resourceIdentifier: certificate.serial, reasonCode: weakness.code,
                        reason: "device certificate \(certificate.serial) of \(certificate.thing): \(weakness.reason)",
                        mitigation: "Revoke it and have the device enrol a new key (P-256)."))
            }
            if certificate.notAfter < expiring {
                let past = certificate.notAfter <= now
                findings.append(
                    AuditFinding(
                        .deviceCertificateExpiring, tenant: certificate.tenant, resourceType: "DEVICE_CERTIFICATE",
                        resourceIdentifier: certificate.serial,
                        reasonCode: past ? "CERTIFICATE_PAST_EXPIRATION" : "CERTIFICATE_APPROACHING_EXPIRATION",
                        reason: "device certificate \(certificate.serial) of \(certificate.thing) \(past ? "expired" : "expires") \(day(certificate.notAfter))",
                        mitigation: "The device renews over EST (simplereenroll); check that it is running."))
            }
            if certificate.issuedAt < old {
                findings.append(
                    AuditFinding(
                        .deviceCertificateAge, tenant: certificate.tenant, resourceType: "DEVICE_CERTIFICATE", resourceIdentifier: certificate.serial,
                        reasonCode: "CERTIFICATE_PAST_AGE_THRESHOLD",
                        reason: "device certificate \(certificate.serial) of \(certificate.thing) was issued \(day(certificate.issuedAt)), over \(settings.certificateAgeDays) days ago",
                        mitigation: "Have the device renew (simplereenroll), or shorten the product's certificate validity."))
            }
        }
        for ca in snapshot.cas {
            if let key = ca.key, let weakness = KeyQuality.weakness(key) {
                findings.append(
                    AuditFinding(
                        .caCertificateKeyQuality, tenant: ca.tenant, resourceType: "CA_CERTIFICATE", resourceIdentifier: ca.id, reasonCode: weakness.code,
                        reason: "CA \(ca.subject): \(weakness.reason)", mitigation: "Register a CA with a strong key and move its devices to it."))
            }
            if ca.active && ca.notAfter < expiring {
                let past = ca.notAfter <= now
                findings.append(
                    AuditFinding(
                        .caCertificateExpiring, tenant: ca.tenant, resourceType: "CA_CERTIFICATE", resourceIdentifier: ca.id,
                        reasonCode: past ? "CERTIFICATE_PAST_EXPIRATION" : "CERTIFICATE_APPROACHING_EXPIRATION",
                        reason: "CA \(ca.subject) \(past ? "expired" : "expires") \(day(ca.notAfter))",
                        mitigation: "Register its successor and have its devices enrol under it before it expires."))
            }
            if !ca.active {
                let active = snapshot.certificates.filter { $0.caID == ca.id }
                if !active.isEmpty {
                    findings.append(
                        AuditFinding(
                            .intermediateCARevoked, tenant: ca.tenant, resourceType: "CA_CERTIFICATE", resourceIdentifier: ca.id,
                            reasonCode: "INTERMEDIATE_CA_REVOKED_BY_ISSUER",
                            reason: "CA \(ca.subject) is deactivated, yet \(active.count) of its device certificates are active",
                            mitigation: "Revoke or deactivate its device certificates (`hallmark cert revoke`), or activate the CA again."))
                }
            }
        }
        for policy in snapshot.policies {
            guard let parsed = try? Policy(document: policy.document) else { continue }
            for statement in parsed.statements {
                let dataPlane = statement.actions.contains("iot:*") || statement.actions.contains { Policy.Action(rawValue: $0) != nil }
                if statement.effect == .allow, dataPlane, let broad = statement.resources.first(where: isBroad) {
                    findings.append(
                        AuditFinding(
                            .policyOverlyPermissive, tenant: policy.tenant, resourceType: "IOT_POLICY", resourceIdentifier: policy.name,
                            reasonCode: "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
                            reason: "policy \(policy.name) (on \(policy.attachedThings) things) allows \(statement.actions.sorted().joined(separator: ", ")) on \(broad)",
                            mitigation: "Name the thing's own resources with ${iot:Connection.Thing.ThingName}, as the default policy does."))
                    break
                }
            }
            for statement in parsed.statements where statement.effect == .deny {
                if let wildcard = statement.resources.first(where: { $0.contains("#") || $0.contains("+") }) {
                    findings.append(
                        AuditFinding(
                            .policyMisconfiguration, tenant: policy.tenant, resourceType: "IOT_POLICY", resourceIdentifier: policy.name,
                            reasonCode: "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
                            reason: "policy \(policy.name) denies \(wildcard): in a policy + and # are plain characters, so it denies only that literal name",
                            mitigation: "Use * in Deny statements' resources (topic/things/x/*), not MQTT's wildcards."))
                    break
                }
            }
        }
        if let newest = snapshot.newestEvent, newest.timeIntervalSince(snapshot.newestCheckpoint ?? .distantPast) > 600 {
            for tenant in snapshot.tenants.prefix(1) {
                findings.append(
                    AuditFinding(
                        .loggingDisabled, tenant: tenant, resourceType: "ACCOUNT_SETTINGS", resourceIdentifier: "event-log",
                        reasonCode: "LOGGING_DISABLED",
                        reason: "the event log has events newer than its last signed checkpoint by over ten minutes",
                        mitigation: "Run `hallmark serve`, which signs a checkpoint at least once a minute; check `hallmark log verify`."))
            }
        }
        return findings.sorted { ($0.severity, $0.checkName, $0.resourceIdentifier) < ($1.severity, $1.checkName, $1.resourceIdentifier) }
    }

    /// A resource every thing's names match: `*`, or a type with nothing but `*` after it.
    static func isBroad(_ resource: String) -> Bool {
        if resource == "*" { return true }
        guard let slash = resource.firstIndex(of: "/") else { return resource.hasSuffix(":*") }
        return resource[resource.index(after: slash)...].allSatisfy { $0 == "*" || $0 == "#" }
    }

    static func day(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}
