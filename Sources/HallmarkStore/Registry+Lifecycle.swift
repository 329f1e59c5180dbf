import GRDB
import HallmarkCore
import Revocation

import Foundation

/// Old certificates retire: a renewal's superseded certificate is revoked (superseded) once the
/// device has connected with its new one, or when its product's grace has passed; certificates
/// close to expiry raise `certificate_expiring`.
extension Registry {
    /// At most this many certificates are retired or warned about per call (the next call goes on).
    static let lifecycleBatch = 1000

    /// Revokes (superseded) the certificates that the given serials replaced: their devices have
    /// used the new ones. Returns how many were retired.
    public func retireSuperseded(replacedBy serials: [String], now: Date) async throws -> Int {
        guard !serials.isEmpty else { return 0 }
        return try await committer.perform { db in
            var retired = 0
            for serial in Set(serials) {
                let rows = try Row.fetchAll(
                    db.cachedStatement(
                        sql: "SELECT fingerprint, serial, tenant_id, thing_name, udid FROM certificates WHERE replaced_by = ? AND status = 'superseded'"),
                    arguments: [serial])
                for row in rows {
                    try Self.retire(row, because: "its replacement \(serial) is in use", now: now, db)
                    retired += 1
                }
            }
            return retired
        }
    }

    /// Revokes (superseded) the superseded certificates whose replacement is older than their
    /// product's grace. Returns how many were retired.
    public func retireSupersededPastGrace(now: Date) async throws -> Int {
        try await committer.perform { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.fingerprint, c.serial, c.tenant_id, c.thing_name, c.udid FROM certificates c
                    JOIN certificates r ON r.ca_id = c.ca_id AND r.serial = c.replaced_by
                    LEFT JOIN devices d ON d.udid = c.udid
                    LEFT JOIN products p ON p.tenant_id = d.tenant_id AND p.id = d.product_id
                    WHERE c.status = 'superseded' AND r.issued_at <= ? - COALESCE(p.superseded_grace_seconds, ?)
                    LIMIT ?
                    """,
                arguments: [now.timeIntervalSince1970, DeviceCertificateProfile.defaultSupersededGrace, Self.lifecycleBatch])
            for row in rows { try Self.retire(row, because: "its product's grace after renewal has passed", now: now, db) }
            return rows.count
        }
    }

    private static func retire(_ row: Row, because reason: String, now: Date, _ db: Database) throws {
        try db.execute(
            sql: """
                UPDATE certificates SET status = 'revoked', status_changed_at = ?, status_reason = 'superseded', revocation_reason = ?
                WHERE fingerprint = ? AND status = 'superseded'
                """,
            arguments: [now.timeIntervalSince1970, RevocationReason.superseded.rawValue, row["fingerprint"] as String])
        try insert(
            AuditEvent(
                at: now, tenant: row["tenant_id"], action: .certificateStatus, decision: .allow, code: "certificate_retired",
                udid: row["udid"], thing: row["thing_name"], serial: row["serial"],
                detail: "revoked (superseded): \(reason)"),
            db)
    }

    /// Raises `certificate_expiring` once for each active certificate within its product's warning
    /// of expiry. Returns how many were announced.
    public func warnExpiring(now: Date) async throws -> Int {
        try await committer.perform { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.fingerprint, c.serial, c.tenant_id, c.thing_name, c.udid, c.not_after FROM certificates c
                    LEFT JOIN devices d ON d.udid = c.udid
                    LEFT JOIN products p ON p.tenant_id = d.tenant_id AND p.id = d.product_id
                    WHERE c.status = 'active' AND c.not_after <= ? AND c.expiry_warned_at IS NULL
                        AND c.not_after <= ? + COALESCE(p.expiry_warning_seconds, ?)
                    LIMIT ?
                    """,
                arguments: [
                    now.timeIntervalSince1970 + 365 * 86_400, now.timeIntervalSince1970, DeviceCertificateProfile.defaultExpiryWarning,
                    Self.lifecycleBatch,
                ])
            for row in rows {
                try db.execute(
                    sql: "UPDATE certificates SET expiry_warned_at = ? WHERE fingerprint = ?",
                    arguments: [now.timeIntervalSince1970, row["fingerprint"] as String])
                let notAfter = Date(timeIntervalSince1970: row["not_after"])
                let days = Int((notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: row["tenant_id"], action: .certificateExpiry, decision: .alarm, code: "certificate_expiring",
                        udid: row["udid"], thing: row["thing_name"], serial: row["serial"],
                        detail: days >= 0 ? "expires in \(days) day\(days == 1 ? "" : "s"), \(notAfter)" : "expired \(notAfter)"),
                    db)
            }
            return rows.count
        }
    }
}
