import GRDB
import HallmarkCore
import Revocation

import Foundation

/// What the broker needs to know about a connecting certificate, read in one transaction.
public struct ConnectionIdentity: Sendable, Hashable {
    public var tenant: String
    public var thingName: String
    public var udid: String?
    public var serial: String
    public var fingerprint: String
    /// `hallmark` for certificates Hallmark issued, else the registered CA's id.
    public var caID: String
    public var certificateStatus: CertificateStatus
    /// Nil when the thing does not exist yet (a certificate pending activation).
    public var thingStatus: ThingStatus?
    public var deviceStatus: DeviceStatus?
    /// The documents of the latest version of each policy attached to the thing.
    public var policyDocuments: [String]
    /// For a fleet provisioning claim's certificate: the claim (it has no thing).
    public var claim: Registry.ProvisioningClaim? = nil
}

extension Registry {
    /// Looks up a certificate by fingerprint, with its thing, device and policies.
    public func connectionIdentity(fingerprint: String) throws -> ConnectionIdentity? {
        try pool.read { db in try Self.connectionIdentity(db, fingerprint: fingerprint) }
    }

    static func connectionIdentity(_ db: Database, fingerprint: String) throws -> ConnectionIdentity? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT c.tenant_id, c.thing_name, c.udid, c.serial, c.fingerprint, c.ca_id, c.status,
                               t.status AS thing_status, d.status AS device_status, cl.id AS claim_id
                        FROM certificates c
                        LEFT JOIN claims cl ON cl.fingerprint = c.fingerprint
                        LEFT JOIN things t ON t.tenant_id = c.tenant_id AND t.name = c.thing_name
                        LEFT JOIN devices d ON d.udid = c.udid
                        WHERE c.fingerprint = ?
                        """), arguments: [fingerprint])
        else { return nil }
        let tenant: String = row["tenant_id"]
        let thing: String = row["thing_name"]
        let claim = try (row["claim_id"] as String?).flatMap { try Self.claim(db, id: $0) }
        let documents = claim != nil ? [] : try String.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT p.document FROM thing_policies tp
                    JOIN policies p ON p.tenant_id = tp.tenant_id AND p.name = tp.policy_name
                    WHERE tp.tenant_id = ? AND tp.thing_name = ?
                      AND p.version = (SELECT MAX(version) FROM policies q WHERE q.tenant_id = p.tenant_id AND q.name = p.name)
                    ORDER BY p.name
                    """), arguments: [tenant, thing])
        return ConnectionIdentity(
            tenant: tenant, thingName: thing, udid: row["udid"], serial: row["serial"], fingerprint: row["fingerprint"],
            caID: row["ca_id"], certificateStatus: CertificateStatus(rawValue: row["status"]) ?? .revoked,
            thingStatus: (row["thing_status"] as String?).map { ThingStatus(rawValue: $0) ?? .inactive }, deviceStatus: (row["device_status"] as String?).flatMap(DeviceStatus.init(rawValue:)),
            policyDocuments: documents, claim: claim)
    }

    // MARK: Certificate and thing status

    /// Finds a certificate by serial (Hallmark-issued), full fingerprint, or a fingerprint prefix of at
    /// least 12 hex digits.
    /// With `tenant`, only that tenant's certificates are found.
    static func certificateRow(_ db: Database, selector: String, tenant: String? = nil) throws -> Row {
        let key = selector.lowercased()
        let scope = tenant == nil ? "" : " AND tenant_id = ?"
        var arguments: StatementArguments = [key, key]
        if let tenant { arguments += [tenant] }
        if let row = try Row.fetchOne(
            db, sql: "SELECT * FROM certificates WHERE (fingerprint = ? OR (serial = ? AND ca_id = 'hallmark'))" + scope,
            arguments: arguments)
        {
            return row
        }
        if key.count >= 12, key.allSatisfy(\.isHexDigit) {
            var arguments: StatementArguments = [key + "%"]
            if let tenant { arguments += [tenant] }
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM certificates WHERE fingerprint LIKE ?" + scope + " LIMIT 2", arguments: arguments)
            if rows.count == 1 { return rows[0] }
        }
        throw HallmarkError(
            .notFound, "No single certificate has the serial or fingerprint \(selector).",
            remedy: "List certificates with `hallmark registry certificates` and give a serial or a full fingerprint.")
    }

    /// Revokes, deactivates or activates a certificate, with an event. Revocation is final, and
    /// carries an RFC 5280 reason (its CRL entry and OCSP answer name it).
    /// Activating a certificate pending activation (JITR) creates its thing with the product's
    /// default policy. Returns the certificate's fingerprint.
    @discardableResult
    public func setCertificateStatus(
        _ selector: String, to status: CertificateStatus, reason: String, revocationReason: RevocationReason = .unspecified,
        tenant: String? = nil, now: Date
    ) async throws -> String {
        precondition([.revoked, .inactive, .active].contains(status))
        return try await committer.perform { db in
            let row = try Self.certificateRow(db, selector: selector, tenant: tenant)
            let current = CertificateStatus(rawValue: row["status"]) ?? .revoked
            let fingerprint: String = row["fingerprint"]
            let serial: String = row["serial"]
            if current == .revoked && status != .revoked {
                throw HallmarkError(
                    .certificateRevoked, "Certificate \(serial) is revoked; revocation is final.",
                    remedy: "Enrol the device again to get a new certificate.")
            }
            if status == .active && current == .superseded {
                throw HallmarkError(
                    .certificateNotActive, "Certificate \(serial) was replaced by a renewal.",
                    remedy: "Activate the device's current certificate instead.")
            }
            let tenant: String = row["tenant_id"]
            let thing: String = row["thing_name"]
            if status == .active && current == .pendingActivation && (row["ca_id"] as String) == "hallmark" {
                throw HallmarkError(
                    .certificatePendingActivation, "Certificate \(serial) was given to a device by fleet provisioning and waits for its RegisterThing.",
                    remedy: "The device activates it by registering with its ownership token; an unclaimed one is revoked after the hour.")
            }
            if status == .active && current == .pendingActivation {
                try Self.createThingIfMissing(db, tenant: tenant, name: thing, udid: nil, product: Self.defaultProduct, now: now)
            }
            do {
                try db.execute(
                    sql: """
                        UPDATE certificates SET status = ?, status_changed_at = ?, status_reason = ?, revocation_reason = ?
                        WHERE fingerprint = ?
                        """,
                    arguments: [
                        status.rawValue, now.timeIntervalSince1970, reason, status == .revoked ? revocationReason.rawValue : nil,
                        fingerprint,
                    ])
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw HallmarkError(
                    .certificateNotActive, "The device of certificate \(serial) already has another active certificate.",
                    remedy: "Revoke or deactivate that one first.")
            }
            let code = switch status {
            case .revoked: "certificate_revoked"
            case .inactive: "certificate_deactivated"
            default: "certificate_activated"
            }
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .certificateStatus, decision: .allow, code: code,
                    udid: row["udid"], thing: thing, serial: serial,
                    detail: "fingerprint \(fingerprint): \(reason)" + (status == .revoked ? " (\(revocationReason.name))" : "")), db)
            return fingerprint
        }
    }

    /// Activates or deactivates a thing, with an event.
    public func setThingStatus(_ name: String, active: Bool, reason: String, tenant: String = defaultTenant, now: Date) async throws {
        try await committer.perform { db in
            try db.execute(
                sql: "UPDATE things SET status = ? WHERE tenant_id = ? AND name = ?",
                arguments: [(active ? ThingStatus.active : .inactive).rawValue, tenant, name])
            guard db.changesCount == 1 else {
                throw HallmarkError(.notFound, "There is no thing named \(name).", remedy: "Check the name with `hallmark registry devices`.")
            }
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .thingStatus, decision: .allow,
                    code: active ? "thing_activated" : "thing_deactivated", thing: name, detail: reason), db)
        }
    }

    /// Creates a thing with a policy attached (by default its product's default policy), unless it
    /// exists; an existing thing only gets the policy attached.
    static func createThingIfMissing(
        _ db: Database, tenant: String, name: String, udid: String?, product: String, policy: String? = nil, now: Date
    ) throws {
        // One lookup, not two: the insert itself finds whether the thing exists. Another thing of
        // the same device (its UDID is unique) is still an error.
        try db.cachedStatement(
            sql: """
                INSERT INTO things (tenant_id, name, udid, product_id, created_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (tenant_id, name) DO NOTHING
                """
        ).execute(arguments: [tenant, name, udid, product, now.timeIntervalSince1970])
        let exists = db.changesCount == 0
        if let policy {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO thing_policies (tenant_id, thing_name, policy_name) VALUES (?, ?, ?)")
                .execute(arguments: [tenant, name, policy])
        } else if !exists {
            try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO thing_policies (tenant_id, thing_name, policy_name)
                    SELECT tenant_id, ?, default_policy FROM products WHERE tenant_id = ? AND id = ?
                    """
            ).execute(arguments: [name, tenant, product])
        }
    }

    // MARK: Watching for changes

    /// A logged event with its position in the log.
    public struct LoggedEvent: Sendable {
        public var id: Int64
        public var event: AuditEvent
    }

    /// The id of the newest event (0 for an empty log).
    public func latestEventID() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM events") ?? 0 }
    }

    /// Events after `id` whose action is one of `actions`, oldest first.
    public func events(after id: Int64, actions: [EventAction], limit: Int = 1000) throws -> [LoggedEvent] {
        try pool.read { db in
            let marks = Array(repeating: "?", count: actions.count).joined(separator: ",")
            var arguments: StatementArguments = [id]
            for action in actions { arguments += [action.rawValue] }
            arguments += [limit]
            return try Row.fetchAll(
                db, sql: "SELECT * FROM events WHERE id > ? AND action IN (\(marks)) ORDER BY id LIMIT ?", arguments: arguments
            ).compactMap { row in Self.auditEvent(row).map { LoggedEvent(id: row["id"], event: $0) } }
        }
    }
}
