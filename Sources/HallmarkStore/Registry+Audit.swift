import GRDB
import HallmarkCore
import X509

import Foundation

extension Registry {
    /// A finding the operator chose not to be told of again, until a date or for good.
    public struct AuditSuppression: Sendable, Hashable {
        public var tenant: String
        public var check: String
        public var resource: String
        public var until: Date?
        public var reason: String
    }

    /// What an audit reads, in one read transaction. `extraCAs` are Hallmark's own CA certificates
    /// (kept in files, not in the registry), by tenant.
    public func auditSnapshot(tenant: String?, extraCAs: [(tenant: String, id: String, certificate: Certificate)], now: Date) throws -> AuditSnapshot {
        try pool.read { db in
            var snapshot = AuditSnapshot()
            snapshot.tenants = try String.fetchAll(db, sql: "SELECT id FROM tenants WHERE ?1 IS NULL OR id = ?1 ORDER BY id", arguments: [tenant])
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT tenant_id, serial, thing_name, ca_id, not_after, issued_at, der FROM certificates
                    WHERE status = 'active' AND (?1 IS NULL OR tenant_id = ?1)
                    """,
                arguments: [tenant])
            while let row = try rows.next() {
                let der: Data = row["der"]
                snapshot.certificates.append(
                    AuditSnapshot.CertificateInfo(
                        tenant: row["tenant_id"], serial: row["serial"], thing: row["thing_name"], caID: row["ca_id"],
                        notAfter: Date(timeIntervalSince1970: row["not_after"]), issuedAt: Date(timeIntervalSince1970: row["issued_at"]),
                        key: (try? Certificate(derEncoded: Array(der))).map(KeyQuality.key(of:))))
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT id, tenant_id, subject, der, status FROM ca_certificates WHERE ?1 IS NULL OR tenant_id = ?1", arguments: [tenant])
            {
                let der: Data = row["der"]
                guard let certificate = try? Certificate(derEncoded: Array(der)) else { continue }
                snapshot.cas.append(
                    AuditSnapshot.CAInfo(
                        tenant: row["tenant_id"], id: row["id"], subject: row["subject"], notAfter: certificate.notValidAfter,
                        active: row["status"] == "active", key: KeyQuality.key(of: certificate)))
            }
            for extra in extraCAs where tenant == nil || extra.tenant == tenant || extra.tenant == "*" {
                snapshot.cas.append(
                    AuditSnapshot.CAInfo(
                        tenant: extra.tenant == "*" ? (tenant ?? Self.defaultTenant) : extra.tenant, id: extra.id,
                        subject: extra.certificate.subject.description, notAfter: extra.certificate.notValidAfter, active: true,
                        key: KeyQuality.key(of: extra.certificate)))
            }
            snapshot.policies = try Row.fetchAll(
                db,
                sql: """
                    SELECT p.tenant_id, p.name, p.document,
                        (SELECT COUNT(*) FROM thing_policies tp WHERE tp.tenant_id = p.tenant_id AND tp.policy_name = p.name) AS things
                    FROM policies p
                    WHERE (?1 IS NULL OR p.tenant_id = ?1)
                      AND p.version = (SELECT MAX(version) FROM policies q WHERE q.tenant_id = p.tenant_id AND q.name = p.name)
                    ORDER BY p.tenant_id, p.name
                    """,
                arguments: [tenant]
            ).map { AuditSnapshot.PolicyInfo(tenant: $0["tenant_id"], name: $0["name"], document: $0["document"], attachedThings: $0["things"]) }
            let since = now.timeIntervalSince1970 - 30 * 86_400
            snapshot.sharedCertificates = try Row.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT e.tenant_id, e.serial, COALESCE(e.thing, c.thing_name) AS thing FROM events e
                    LEFT JOIN certificates c ON c.serial = e.serial
                    WHERE e.code = 'clone_suspected' AND e.at > ?2 AND e.serial IS NOT NULL AND (?1 IS NULL OR e.tenant_id = ?1)
                    """,
                arguments: [tenant, since]
            ).map { ($0["tenant_id"], $0["serial"], $0["thing"] ?? "-") }
            snapshot.conflictingClientIDs = try Row.fetchAll(
                db,
                sql: """
                    SELECT tenant_id, substr(detail, 11, instr(detail, ',') - 11) AS client, COUNT(DISTINCT serial) AS n FROM events
                    WHERE code = 'connected' AND at > ?2 AND action = 'mqtt.connect' AND detail LIKE 'client id %,%' AND (?1 IS NULL OR tenant_id = ?1)
                    GROUP BY tenant_id, client HAVING COUNT(DISTINCT serial) > 1
                    """,
                arguments: [tenant, since]
            ).map { ($0["tenant_id"], $0["client"], $0["n"]) }
            snapshot.newestEvent = try Double.fetchOne(db, sql: "SELECT MAX(at) FROM events").map(Date.init(timeIntervalSince1970:))
            snapshot.newestCheckpoint = try Double.fetchOne(db, sql: "SELECT MAX(signed_at) FROM log_checkpoints").map(Date.init(timeIntervalSince1970:))
            return snapshot
        }
    }

    /// Suppresses a finding (a check on one resource) until a date or for good, with an event.
    public func suppressAuditFinding(tenant: String, check: String, resource: String, until: Date?, reason: String, now: Date) async throws {
        guard AuditCheck(rawValue: check) != nil else {
            throw HallmarkError(.notFound, "There is no audit check \(check.prefix(80)).", remedy: "Use a check name `hallmark audit run` prints.")
        }
        try await committer.perform { db in
            try db.execute(
                sql: """
                    INSERT INTO audit_suppressions (tenant_id, check_name, resource, until, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id, check_name, resource) DO UPDATE SET until = excluded.until, reason = excluded.reason
                    """,
                arguments: [tenant, check, resource, until?.timeIntervalSince1970, reason, now.timeIntervalSince1970])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .audit, decision: .allow, code: "finding_suppressed",
                    detail: "\(check) on \(resource.prefix(200)) suppressed" + (until.map { " until \(ISO8601DateFormatter().string(from: $0))" } ?? "") + ": \(reason.prefix(200))"),
                db)
        }
    }

    /// Ends a suppression.
    public func unsuppressAuditFinding(tenant: String, check: String, resource: String, now: Date) async throws {
        try await committer.perform { db in
            try db.execute(
                sql: "DELETE FROM audit_suppressions WHERE tenant_id = ? AND check_name = ? AND resource = ?", arguments: [tenant, check, resource])
            guard db.changesCount == 1 else {
                throw HallmarkError(.notFound, "\(check.prefix(80)) on \(resource.prefix(80)) is not suppressed.", remedy: "List them with `hallmark audit suppressions`.")
            }
            try Self.insert(
                AuditEvent(at: now, tenant: tenant, action: .audit, decision: .allow, code: "finding_unsuppressed", detail: "\(check) on \(resource.prefix(200))"), db)
        }
    }

    /// The suppressions in force at `now`.
    public func auditSuppressions(tenant: String?, now: Date) throws -> [AuditSuppression] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM audit_suppressions WHERE (?1 IS NULL OR tenant_id = ?1) AND (until IS NULL OR until > ?2) ORDER BY tenant_id, check_name, resource",
                arguments: [tenant, now.timeIntervalSince1970]
            ).map {
                AuditSuppression(
                    tenant: $0["tenant_id"], check: $0["check_name"], resource: $0["resource"],
                    until: ($0["until"] as Double?).map(Date.init(timeIntervalSince1970:)), reason: $0["reason"])
            }
        }
    }

    /// Records an audit's outcome: one event with the counts by severity.
    public func recordAudit(tenant: String, findings: [AuditFinding], now: Date) async throws {
        let open = findings.filter { !$0.suppressed }
        let counts = AuditFinding.Severity.allCases.map { severity in "\(open.filter { $0.severity == severity }.count) \(severity.rawValue.lowercased())" }
        try await append(
            AuditEvent(
                at: now, tenant: tenant, action: .audit, decision: open.contains { $0.severity <= .high } ? .alarm : .allow,
                code: open.isEmpty ? "audit_clean" : "audit_findings",
                detail: "\(open.count) findings (" + counts.joined(separator: ", ") + "), \(findings.count - open.count) suppressed"))
    }
}
