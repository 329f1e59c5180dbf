import GRDB
import HallmarkCore
import Revocation

import Foundation

extension Registry {
    // MARK: Security profiles

    /// Stores a security profile for a product's things (or, with `replace`, a new document for one).
    /// - Throws: `security_profile_invalid`, `security_profile_exists`, `not_found`.
    public func putSecurityProfile(tenant: String, name: String, product: String, document: String, replace: Bool, now: Date) throws {
        try recordingRefusal(tenant: tenant, action: .securityProfile, now: now, what: "security profile \(name.prefix(64))") {
            guard SecurityProfile.isValidName(name) else {
                throw HallmarkError(.securityProfileInvalid, "\(name.prefix(64)) is not a security profile name.", remedy: "Use 1-128 letters, digits, ':', '_' or '-'.")
            }
            let profile = try SecurityProfile(json: Array(document.utf8))
            try pool.write { db in
                guard try Self.product(db, tenant: tenant, id: product) != nil else {
                    throw HallmarkError(.notFound, "Product \(product.prefix(64)) does not exist.", remedy: "Create it with `hallmark product create`.")
                }
                for case .moveToProduct(let target) in profile.mitigations where try Self.product(db, tenant: tenant, id: target) == nil {
                    throw HallmarkError(.securityProfileInvalid, "The profile moves things to product \(target.prefix(64)), which does not exist.",
                                        remedy: "Create that product first.")
                }
                let exists = try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM security_profiles WHERE tenant_id = ? AND name = ?", arguments: [tenant, name]) ?? false
                if exists && !replace {
                    throw HallmarkError(.securityProfileExists, "Security profile \(name) exists.", remedy: "Give --replace to store a new document for it.")
                }
                try db.execute(
                    sql: """
                        INSERT INTO security_profiles (tenant_id, name, product_id, document, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (tenant_id, name) DO UPDATE SET product_id = excluded.product_id, document = excluded.document, updated_at = excluded.updated_at
                        """,
                    arguments: [tenant, name, product, document, now.timeIntervalSince1970, now.timeIntervalSince1970])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .securityProfile, decision: .allow, code: exists ? "security_profile_replaced" : "security_profile_created",
                        detail: "security profile \(name) for product \(product): " + profile.behaviors.map(\.name).joined(separator: ", ")),
                    db)
            }
        }
    }

    /// A tenant's security profiles (every tenant's for nil).
    public func securityProfiles(tenant: String?) throws -> [SecurityProfileRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM security_profiles WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY tenant_id, name", arguments: [tenant]
            ).map {
                SecurityProfileRecord(
                    tenant: $0["tenant_id"], name: $0["name"], product: $0["product_id"], document: $0["document"],
                    updatedAt: Date(timeIntervalSince1970: $0["updated_at"]))
            }
        }
    }

    /// Deletes a security profile; its open violations are invalidated.
    public func deleteSecurityProfile(tenant: String, name: String, now: Date) async throws {
        try await committer.perform { db in
            try db.execute(sql: "DELETE FROM security_profiles WHERE tenant_id = ? AND name = ?", arguments: [tenant, name])
            guard db.changesCount == 1 else {
                throw HallmarkError(.notFound, "There is no security profile \(name.prefix(64)).", remedy: "List them with `hallmark security-profile list`.")
            }
            try db.execute(
                sql: "UPDATE violations SET state = 'alarm-invalidated', updated_at = ?1, ended_at = ?1 WHERE tenant_id = ?2 AND profile_name = ?3 AND state = 'in-alarm'",
                arguments: [now.timeIntervalSince1970, tenant, name])
            try Self.insert(
                AuditEvent(at: now, tenant: tenant, action: .securityProfile, decision: .allow, code: "security_profile_deleted", detail: "security profile \(name)"), db)
        }
    }

    // MARK: Violations

    /// Opens a violation and carries out the profile's mitigations in the same transaction: the
    /// events they write end or re-check the thing's sessions through the change feed. Returns
    /// the violation as recorded (with what was done), or nil if one was already open.
    public func openViolation(
        _ violation: ViolationRecord, mitigations: [SecurityProfile.Mitigation], now: Date
    ) async throws -> ViolationRecord? {
        try await committer.perform { db in
            var violation = violation
            let open = try Bool.fetchOne(
                db,
                sql: "SELECT 1 FROM violations WHERE tenant_id = ? AND thing_name = ? AND profile_name = ? AND behavior_name = ? AND state = 'in-alarm'",
                arguments: [violation.tenant, violation.thing, violation.profile, violation.behavior]) ?? false
            guard !open else { return nil }
            let subject = try? Self.defenderSubject(db, tenant: violation.tenant, thing: violation.thing)
            var done: [String] = []
            for mitigation in mitigations {
                if try Self.mitigate(db, mitigation, violation: violation, subject: subject, now: now) { done.append(mitigation.name) }
            }
            violation.mitigations = done.joined(separator: ",")
            try db.execute(
                sql: """
                    INSERT INTO violations (id, tenant_id, thing_name, profile_name, behavior_name, metric, metric_value, state, started_at, updated_at, mitigations)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 'in-alarm', ?, ?, ?)
                    """,
                arguments: [
                    violation.id, violation.tenant, violation.thing, violation.profile, violation.behavior, violation.metric, violation.metricValue,
                    now.timeIntervalSince1970, now.timeIntervalSince1970, violation.mitigations,
                ])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: violation.tenant, action: .defenderViolation, decision: .alarm, code: ViolationRecord.State.inAlarm.rawValue,
                    udid: subject?.udid, thing: violation.thing,
                    detail: "\(violation.profile)/\(violation.behavior): \(violation.metric) = \(violation.metricValue.prefix(200))"
                        + (done.isEmpty ? "" : "; " + done.joined(separator: ", "))),
                db)
            return violation
        }
    }

    /// Ends a thing's open violation of a behaviour (cleared, or invalidated when data stopped).
    @discardableResult
    public func closeViolation(
        tenant: String, thing: String, profile: String, behavior: String, state: ViolationRecord.State, metricValue: String?, now: Date
    ) async throws -> ViolationRecord? {
        precondition(state != .inAlarm)
        return try await committer.perform { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT * FROM violations WHERE tenant_id = ? AND thing_name = ? AND profile_name = ? AND behavior_name = ? AND state = 'in-alarm'",
                    arguments: [tenant, thing, profile, behavior])
            else { return nil }
            var violation = Self.violation(row)
            violation.state = state
            violation.updatedAt = now
            violation.endedAt = now
            if let metricValue { violation.metricValue = metricValue }
            try db.execute(
                sql: "UPDATE violations SET state = ?, metric_value = ?, updated_at = ?, ended_at = ? WHERE id = ?",
                arguments: [state.rawValue, violation.metricValue, now.timeIntervalSince1970, now.timeIntervalSince1970, violation.id])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .defenderViolation, decision: .allow, code: state.rawValue, thing: thing,
                    detail: "\(profile)/\(behavior): \(violation.metric) = \(violation.metricValue.prefix(200))"),
                db)
            return violation
        }
    }

    /// Violations, newest first: the open ones only, or every one.
    public func violations(tenant: String?, activeOnly: Bool, limit: Int = 1000) throws -> [ViolationRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM violations WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 = 0 OR state = 'in-alarm')
                    ORDER BY started_at DESC, id LIMIT ?3
                    """,
                arguments: [tenant, activeOnly, limit]
            ).map(Self.violation)
        }
    }

    /// How many violations are in alarm.
    public func activeViolationCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM violations WHERE state = 'in-alarm'") ?? 0 }
    }

    /// How many certificates the registry holds, by status.
    public func certificateCountsByStatus() throws -> [String: Int] {
        try pool.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM certificates GROUP BY status").map { ($0["status"], $0["n"]) })
        }
    }

    static func violation(_ row: Row) -> ViolationRecord {
        ViolationRecord(
            id: row["id"], tenant: row["tenant_id"], thing: row["thing_name"], profile: row["profile_name"], behavior: row["behavior_name"],
            metric: row["metric"], metricValue: row["metric_value"], state: ViolationRecord.State(rawValue: row["state"]) ?? .invalidated,
            startedAt: Date(timeIntervalSince1970: row["started_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
            endedAt: (row["ended_at"] as Double?).map(Date.init(timeIntervalSince1970:)), mitigations: row["mitigations"])
    }

    /// Carries out one mitigation; returns whether it changed anything.
    private static func mitigate(
        _ db: Database, _ mitigation: SecurityProfile.Mitigation, violation: ViolationRecord, subject: DefenderSubject?, now: Date
    ) throws -> Bool {
        let tenant = violation.tenant
        let thing = violation.thing
        let why = "security profile \(violation.profile), behaviour \(violation.behavior) in alarm"
        let at = now.timeIntervalSince1970
        switch mitigation {
        case .quarantineDevice:
            if let udid = subject?.udid {
                try db.execute(
                    sql: "UPDATE devices SET status = 'quarantined', updated_at = ? WHERE udid = ? AND status IN ('allowed', 'enrolled')",
                    arguments: [at, udid])
                guard db.changesCount == 1 else { return false }
                try insert(
                    AuditEvent(at: now, tenant: tenant, action: .deviceStatus, decision: .allow, code: "status_quarantined", udid: udid, thing: thing,
                               detail: "quarantined: \(why)"), db)
            } else {
                // A thing of a registered CA has no device record: it is deactivated instead.
                try db.execute(sql: "UPDATE things SET status = 'inactive' WHERE tenant_id = ? AND name = ? AND status = 'active'", arguments: [tenant, thing])
                guard db.changesCount == 1 else { return false }
                try insert(
                    AuditEvent(at: now, tenant: tenant, action: .thingStatus, decision: .allow, code: "thing_deactivated", thing: thing, detail: "deactivated: \(why)"), db)
            }
            return true
        case .deactivateCertificate, .revokeCertificate:
            let revoke = mitigation == .revokeCertificate
            let serials = try String.fetchAll(
                db, sql: "SELECT serial FROM certificates WHERE tenant_id = ? AND thing_name = ? AND status = 'active'", arguments: [tenant, thing])
            for serial in serials {
                try db.execute(
                    sql: "UPDATE certificates SET status = ?, status_changed_at = ?, status_reason = ?, revocation_reason = ? WHERE serial = ?",
                    arguments: [revoke ? "revoked" : "inactive", at, why, revoke ? RevocationReason.keyCompromise.rawValue : nil, serial])
                try insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .certificateStatus, decision: .allow, code: revoke ? "certificate_revoked" : "certificate_deactivated",
                        udid: subject?.udid, thing: thing, serial: serial, detail: why + (revoke ? " (keyCompromise)" : "")),
                    db)
            }
            return !serials.isEmpty
        case .moveToProduct(let product):
            guard let subject, subject.product != product, let target = try Self.product(db, tenant: tenant, id: product) else { return false }
            try db.execute(sql: "UPDATE things SET product_id = ? WHERE tenant_id = ? AND name = ?", arguments: [product, tenant, thing])
            if let udid = subject.udid {
                try db.execute(sql: "UPDATE devices SET product_id = ?, updated_at = ? WHERE udid = ?", arguments: [product, at, udid])
            }
            // The thing takes the new product's default policy in place of what it had.
            try db.execute(sql: "DELETE FROM thing_policies WHERE tenant_id = ? AND thing_name = ?", arguments: [tenant, thing])
            try db.execute(
                sql: "INSERT OR IGNORE INTO thing_policies (tenant_id, thing_name, policy_name) VALUES (?, ?, ?)",
                arguments: [tenant, thing, target.defaultPolicy])
            try insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .policyAttachment, decision: .allow, code: "moved_to_product", udid: subject.udid, thing: thing,
                    detail: "moved from product \(subject.product) to \(product), policy \(target.defaultPolicy): \(why)"),
                db)
            return true
        }
    }
}
