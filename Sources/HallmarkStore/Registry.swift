import GRDB
import HallmarkCore

import Foundation

/// The device registry on embedded SQLite (WAL): tenants, products, the allowlist, things,
/// certificates, policies and the append-only event log.
public final class Registry: Sendable {
    /// The tenant every object belongs to until tenants are managed.
    public static let defaultTenant = "default"
    /// The product devices are imported into unless told otherwise.
    public static let defaultProduct = "default"

    let pool: DatabasePool
    let committer: GroupCommitter
    let checkpointer: Checkpointer
    /// Holds back floods of refusals (``RefusalLimiter``).
    let refusals = RefusalLimiter()

    /// Opens (creating if needed) the registry at a path and brings its schema up to date.
    public init(path: String, now: Date = Date()) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // The pool's configuration holds the checkpointer, so it outlives every connection it watches.
        let checkpointer = Checkpointer(path: path)
        configuration.prepareDatabase { db in
            // WAL + NORMAL: a committed transaction survives a killed process.
            // 2 KiB pages (for a new file; an existing one keeps its own): an enrollment changes a
            // dozen index leaves at random places, and each changed page is written whole to the
            // WAL and again at checkpoint: `bench enroll` writes 33 KB per enrollment, against 124 KB
            // with 4 KiB pages.
            try db.execute(sql: "PRAGMA page_size = 2048")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // Checkpoints run on a thread of their own, every 4,000 pages (8 MB of WAL) rather than
            // SQLite's 1,000: a page changed by many enrollments between two checkpoints is copied
            // to the database once.
            checkpointer.watch(db)
        }
        self.pool = try DatabasePool(path: path, configuration: configuration)
        try RegistrySchema.migrator.migrate(pool)
        self.committer = GroupCommitter(pool: pool)
        self.checkpointer = checkpointer
        try pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
                arguments: [Self.defaultTenant, "Default tenant", now.timeIntervalSince1970])
            try db.execute(
                sql: "INSERT OR IGNORE INTO policies (tenant_id, name, version, document, created_at) VALUES (?, ?, 1, ?, ?)",
                arguments: [Self.defaultTenant, DefaultPolicy.name, DefaultPolicy.document, now.timeIntervalSince1970])
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO products (tenant_id, id, name, certificate_validity_seconds, default_policy, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    Self.defaultTenant, Self.defaultProduct, "Default product",
                    DeviceCertificateProfile.defaultValidity, DefaultPolicy.name, now.timeIntervalSince1970,
                ])
        }
    }

    /// Copies the write-ahead log into the database file now, and returns when done (commits
    /// otherwise start a checkpoint in the background): for a tool that wants the disk quiet.
    public func checkpoint() {
        checkpointer.checkpointNow()
    }

    // MARK: Devices

    /// Finds a device by UDID.
    public func device(_ udid: UDID) throws -> DeviceRecord? {
        try pool.read { db in try Self.device(db, udid) }
    }

    static func device(_ db: Database, _ udid: UDID) throws -> DeviceRecord? {
        try db.fetchRecord(sql: "SELECT \(deviceColumns) FROM devices WHERE udid = ?", arguments: [udid.rawValue]) {
            try deviceRecord($0)
        }
    }

    /// The columns ``deviceRecord(_:from:)`` reads, in its order.
    static let deviceColumns = columnList(deviceColumnNames, table: nil)
    static let deviceColumnNames = ["tenant_id", "udid", "public_key", "status", "source", "product_id"]

    /// A device from a row holding ``deviceColumns`` from column `first` on (read by position:
    /// the enrollment path reads devices twice per request, and a lookup by name costs more than the read).
    static func deviceRecord(_ row: Columns, from first: Int = 0) throws -> DeviceRecord {
        DeviceRecord(
            tenant: row.string(first), udid: try UDID(validating: row.string(first + 1)),
            key: try DeviceKey(storedSPKI: row.bytes(first + 2)),
            status: DeviceStatus(rawValue: row.string(first + 3)) ?? .quarantined, source: row.string(first + 4),
            product: row.string(first + 5))
    }

    static func columnList(_ names: [String], table: String?) -> String {
        names.map { name in table.map { "\($0).\(name)" } ?? name }.joined(separator: ", ")
    }

    /// Lists devices, optionally only those in one status.
    /// With `tenant`, only that tenant's devices.
    public func devices(status: DeviceStatus? = nil, tenant: String? = nil, limit: Int = 100) throws -> [DeviceRecord] {
        try pool.read { db in
            var (filter, arguments) = Self.filter(["status": status?.rawValue, "tenant_id": tenant])
            arguments += [limit]
            return try db.fetchRecords(sql: "SELECT \(Self.deviceColumns) FROM devices \(filter) ORDER BY udid LIMIT ?", arguments: arguments) {
                try Self.deviceRecord($0)
            }
        }
    }

    /// Counts devices per status.
    public func deviceCounts() throws -> [DeviceStatus: Int] {
        try pool.read { db in
            var counts: [DeviceStatus: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM devices GROUP BY status") {
                if let status = DeviceStatus(rawValue: row["status"]) { counts[status] = row["n"] }
            }
            return counts
        }
    }

    /// Sets a device's status (quarantine, release, decommission), with an event.
    /// With `tenant`, only that tenant's device can be changed.
    ///
    /// Decommissioning ends a device's life: every certificate it holds is revoked
    /// (cessationOfOperation), its thing retired (its sessions end), and enrollment refused with
    /// `device_decommissioned`; its record and history stay. Only ``recommission(_:reason:tenant:now:)``
    /// brings it back.
    public func setDeviceStatus(_ udid: UDID, to status: DeviceStatus, reason: String, tenant: String? = nil, now: Date) throws {
        try pool.write { db in
            let (owner, current) = try Self.deviceOwner(db, udid, tenant: tenant)
            if current == .decommissioned && status != .decommissioned {
                throw HallmarkError(
                    .deviceDecommissioned, "Device \(udid) is decommissioned.",
                    remedy: "Bring it back with `hallmark registry recommission \(udid)` (the API: POST devices/\(udid)/recommission).")
            }
            try db.execute(
                sql: "UPDATE devices SET status = ?, updated_at = ? WHERE udid = ?",
                arguments: [status.rawValue, now.timeIntervalSince1970, udid.rawValue])
            var detail = reason
            if status == .decommissioned {
                try db.execute(
                    sql: """
                        UPDATE certificates SET status = 'revoked', status_changed_at = ?, status_reason = 'decommissioned',
                            revocation_reason = 5
                        WHERE udid = ? AND status IN ('active', 'inactive', 'superseded')
                        """,
                    arguments: [now.timeIntervalSince1970, udid.rawValue])
                let revoked = db.changesCount
                try db.execute(sql: "UPDATE things SET status = 'inactive' WHERE udid = ?", arguments: [udid.rawValue])
                detail += "; \(revoked) certificate\(revoked == 1 ? "" : "s") revoked (cessationOfOperation), its thing retired"
            }
            try Self.insert(
                AuditEvent(
                    at: now, tenant: owner, action: .deviceStatus, decision: .allow,
                    code: "status_\(status.rawValue)", udid: udid.rawValue, detail: detail), db)
        }
    }

    /// Brings a decommissioned device back, on an operator's word (logged): it may enrol afresh
    /// (its old certificates stay revoked) and its thing may connect again.
    public func recommission(_ udid: UDID, reason: String, tenant: String? = nil, now: Date) throws {
        try pool.write { db in
            let (owner, current) = try Self.deviceOwner(db, udid, tenant: tenant)
            guard current == .decommissioned else {
                throw HallmarkError(
                    .deviceStatusInvalid, "Device \(udid) is \(current?.rawValue ?? "unknown"), not decommissioned.",
                    remedy: "Only a decommissioned device is recommissioned.")
            }
            try db.execute(
                sql: "UPDATE devices SET status = 'allowed', updated_at = ? WHERE udid = ?",
                arguments: [now.timeIntervalSince1970, udid.rawValue])
            try db.execute(sql: "UPDATE things SET status = 'active' WHERE udid = ?", arguments: [udid.rawValue])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: owner, action: .deviceStatus, decision: .allow, code: "status_recommissioned",
                    udid: udid.rawValue, detail: reason + "; it enrols afresh"), db)
        }
    }

    /// A device's tenant and status; `not_found` if it is not in the registry (or not `tenant`'s).
    static func deviceOwner(_ db: Database, _ udid: UDID, tenant: String?) throws -> (String, DeviceStatus?) {
        guard let row = try Row.fetchOne(db, sql: "SELECT tenant_id, status FROM devices WHERE udid = ?", arguments: [udid.rawValue]),
            tenant == nil || tenant == row["tenant_id"]
        else {
            throw HallmarkError(.notFound, "Device \(udid) is not in the registry.", remedy: "Check the UDID.")
        }
        return (row["tenant_id"], DeviceStatus(rawValue: row["status"]))
    }

    // MARK: Certificates

    /// The device's active certificate, if it has one.
    public func activeCertificate(_ udid: UDID) throws -> CertificateRecord? {
        try pool.read { db in try Self.activeCertificate(db, udid) }
    }

    static func activeCertificate(_ db: Database, _ udid: UDID) throws -> CertificateRecord? {
        try db.fetchRecord(
            sql: "SELECT \(certificateColumns) FROM certificates WHERE udid = ? AND status = 'active'", arguments: [udid.rawValue]
        ) { try certificateRecord($0) }
    }

    /// Finds a certificate by the SHA-256 fingerprint of its DER.
    public func certificate(fingerprint: String) throws -> CertificateRecord? {
        try pool.read { db in try Self.certificate(db, fingerprint: fingerprint) }
    }

    static func certificate(_ db: Database, fingerprint: String) throws -> CertificateRecord? {
        try db.fetchRecord(sql: "SELECT \(certificateColumns) FROM certificates WHERE fingerprint = ?", arguments: [fingerprint]) {
            try certificateRecord($0)
        }
    }

    /// Finds a certificate by serial number (hex).
    public func certificate(serial: String) throws -> CertificateRecord? {
        try pool.read { db in try Self.certificate(db, serial: serial) }
    }

    static func certificate(_ db: Database, serial: String) throws -> CertificateRecord? {
        try db.fetchRecord(
            sql: "SELECT \(certificateColumns) FROM certificates WHERE serial = ? AND ca_id = 'hallmark'",
            arguments: [serial.lowercased()]
        ) { try certificateRecord($0) }
    }

    /// Lists certificates, newest first.
    /// With `tenant`, only that tenant's certificates.
    public func certificates(udid: UDID? = nil, tenant: String? = nil, limit: Int = 100) throws -> [CertificateRecord] {
        try pool.read { db in
            // A device's few certificates are found by its UDID; the unary `+` keeps SQLite from
            // walking the whole tenant's index instead, newest first, to find them.
            var (filter, arguments) = Self.filter(["udid": udid?.rawValue, (udid == nil ? "tenant_id" : "+tenant_id"): tenant])
            arguments += [limit]
            return try db.fetchRecords(
                sql: "SELECT \(Self.certificateColumns) FROM certificates \(filter) ORDER BY issued_at DESC LIMIT ?",
                arguments: arguments
            ) { try Self.certificateRecord($0) }
        }
    }

    /// The columns ``certificateRecord(_:from:)`` reads, in its order.
    static let certificateColumns = columnList(certificateColumnNames, table: nil)
    static let certificateColumnNames = [
        "serial", "tenant_id", "thing_name", "udid", "fingerprint", "key_fingerprint", "not_before", "not_after", "status",
        "replaced_by", "der",
    ]

    /// A certificate from a row holding ``certificateColumns`` from column `first` on.
    static func certificateRecord(_ row: Columns, from first: Int = 0) throws -> CertificateRecord {
        CertificateRecord(
            serial: row.string(first), tenant: row.string(first + 1), thingName: row.string(first + 2),
            udid: try row.optionalString(first + 3).map { try UDID(validating: $0) }, fingerprint: row.string(first + 4),
            keyFingerprint: row.string(first + 5),
            notBefore: Date(timeIntervalSince1970: row.double(first + 6)),
            notAfter: Date(timeIntervalSince1970: row.double(first + 7)),
            status: CertificateStatus(rawValue: row.string(first + 8)) ?? .revoked, replacedBy: row.optionalString(first + 9),
            der: row.bytes(first + 10))
    }

    // MARK: Things

    /// A thing: the registry's name for an enrolled device.
    public struct Thing: Sendable, Hashable {
        public var tenant: String
        public var name: String
        /// The allowlisted device; nil for a thing provisioned through a registered OEM CA.
        public var udid: String?
        public var product: String
        public var status: ThingStatus
        public var createdAt: Date
        public var policies: [String]
        /// What a provisioning template's `AttributePayload` gave it.
        public var attributes: [String: String] = [:]
    }

    /// Finds a thing by name.
    public func thing(named name: String, tenant: String = defaultTenant) throws -> Thing? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM things WHERE tenant_id = ? AND name = ?", arguments: [tenant, name])
            else { return nil }
            let policies = try String.fetchAll(
                db, sql: "SELECT policy_name FROM thing_policies WHERE tenant_id = ? AND thing_name = ? ORDER BY policy_name",
                arguments: [tenant, name])
            return Thing(
                tenant: row["tenant_id"], name: row["name"], udid: row["udid"], product: row["product_id"],
                status: ThingStatus(rawValue: row["status"]) ?? .inactive,
                createdAt: Date(timeIntervalSince1970: row["created_at"]), policies: policies,
                attributes: (row["attributes"] as String?).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:])
        }
    }

    /// Counts things.
    public func thingCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM things") ?? 0 }
    }

    // MARK: Events

    /// Appends events to the log, in one batched transaction with other writers. Refusals pass
    /// through the flood limit (``RefusalLimiter``): beyond 60 of a kind from one host in a
    /// minute, they are counted into one event.
    public func append(_ events: [AuditEvent]) async throws {
        let admitted = refusals.admit(events)
        guard !admitted.isEmpty else { return }
        try await committer.perform { db in
            for event in admitted { try Self.insert(event, db) }
        }
    }

    /// Writes the counts of floods whose minute is over (called now and then by a background service).
    public func flushCountedRefusals(now: Date = Date()) async throws {
        let counts = refusals.flush(now: now)
        guard !counts.isEmpty else { return }
        try await committer.perform { db in
            for event in counts { try Self.insert(event, db) }
        }
    }

    static func insert(_ event: AuditEvent, _ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO events (at, tenant_id, action, decision, code, udid, thing, serial, source, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            event.at.timeIntervalSince1970, event.tenant, event.action.rawValue, event.decision.rawValue, event.code,
            event.udid, event.thing, event.serial, event.source, event.detail,
        ])
    }

    /// Reads the event log, newest first.
    /// With `tenant`, only that tenant's events.
    public func events(udid: String? = nil, code: String? = nil, tenant: String? = nil, limit: Int = 50) throws -> [AuditEvent] {
        try pool.read { db in
            var (filter, arguments) = Self.filter(["tenant_id": tenant, "udid": udid, "code": code])
            arguments += [limit]
            return try Row.fetchAll(
                db, sql: "SELECT * FROM events \(filter) ORDER BY id DESC LIMIT ?", arguments: arguments
            ).compactMap(Self.auditEvent)
        }
    }

    /// An event as stored; nil for an action this version does not know (written by a newer one).
    static func auditEvent(_ row: Row) -> AuditEvent? {
        guard let action = EventAction(rawValue: row["action"]) else { return nil }
        return AuditEvent(
            at: Date(timeIntervalSince1970: row["at"]), tenant: row["tenant_id"], action: action,
            decision: AuditEvent.Decision(rawValue: row["decision"]) ?? .refuse, code: row["code"],
            udid: row["udid"], thing: row["thing"], serial: row["serial"], source: row["source"],
            detail: row["detail"])
    }

    /// A `WHERE` clause matching every column given a value (columns are the caller's literals).
    static func filter(_ equalities: KeyValuePairs<String, String?>) -> (sql: String, arguments: StatementArguments) {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        for (column, value) in equalities {
            guard let value else { continue }
            clauses.append("\(column) = ?")
            arguments += [value]
        }
        return (clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND "), arguments)
    }

    /// Runs raw SQL against the database; for tests that prove the log cannot be rewritten.
    package func execute(sql: String) throws {
        try pool.write { db in try db.execute(sql: sql) }
    }
}
