import GRDB
import HallmarkCore

import Foundation

extension Registry {
    /// A production batch and how far it has come.
    public struct BatchReport: Sendable, Hashable, Codable {
        public var id: String
        public var tenant: String
        public var product: String
        public var quota: Int
        /// Devices the programming station registered against the batch.
        public var programmed: Int
        /// Registrations refused (over quota).
        public var refused: Int
        /// Programmed devices that have since enrolled.
        public var enrolled: Int
        public var createdAt: Date
    }

    /// A new batch and the programming station's credential (shown once).
    public struct NewBatch: Sendable {
        public var report: BatchReport
        public var stationCredential: String
    }

    /// Creates a production batch of a product with a quota, and a credential for the factory's
    /// programming station.
    public func createBatch(tenant: String, product: String, quota: Int, now: Date) throws -> NewBatch {
        guard quota > 0, quota <= 10_000_000 else {
            throw HallmarkError(.batchInvalid, "A batch quota must be between 1 and 10,000,000 (got \(quota)).",
                                remedy: "Give the number of devices the factory is to make: --quota N.")
        }
        guard try self.product(tenant: tenant, id: product) != nil else {
            throw HallmarkError(.notFound, "Product \(product.prefix(40)) does not exist.", remedy: "Name an existing product.")
        }
        let id = "b-" + Credential.identifier(bytes: 6)
        let secret = Credential.generate(prefix: "hmk_station")
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO batches (id, tenant_id, product_id, quota, station_token_hash, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [id, tenant, product, quota, Credential.digest(secret), now.timeIntervalSince1970])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .batchCreate, decision: .allow, code: "batch_created",
                    detail: "batch \(id) of product \(product), quota \(quota)"), db)
        }
        return NewBatch(report: try batchReport(tenant: tenant, id: id)!, stationCredential: secret)
    }

    /// The batch a station credential belongs to, if any (its row: `enrolled` is not counted).
    public func batch(forStationCredential secret: String) throws -> BatchReport? {
        try pool.read { db in
            guard
                let id = try String.fetchOne(
                    db, sql: "SELECT id FROM batches WHERE station_token_hash = ?", arguments: [Credential.digest(secret)])
            else { return nil }
            return try Self.batch(db, id: id)
        }
    }

    /// A tenant's batch, or nil (also for another tenant's batch).
    public func batchReport(tenant: String, id: String) throws -> BatchReport? {
        try pool.read { db in try Self.batchReport(db, id: id).flatMap { $0.tenant == tenant ? $0 : nil } }
    }

    /// A tenant's batches, newest first.
    public func batches(tenant: String) throws -> [BatchReport] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM batches WHERE tenant_id = ? ORDER BY created_at DESC", arguments: [tenant])
                .compactMap { try Self.batchReport(db, id: $0) }
        }
    }

    static func batchReport(_ db: Database, id: String) throws -> BatchReport? {
        guard var report = try batch(db, id: id) else { return nil }
        report.enrolled =
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM devices d WHERE d.batch_id = ?
                    AND EXISTS (SELECT 1 FROM certificates c WHERE c.udid = d.udid)
                    """, arguments: [id]) ?? 0
        return report
    }

    /// The batch's own row, without the count of enrolled devices (`enrolled` is 0).
    static func batch(_ db: Database, id: String) throws -> BatchReport? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM batches WHERE id = ?", arguments: [id]) else { return nil }
        return BatchReport(
            id: row["id"], tenant: row["tenant_id"], product: row["product_id"], quota: row["quota"],
            programmed: row["programmed"], refused: row["refused"], enrolled: 0,
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    /// How a station's registration ended.
    public enum ProgrammingOutcome: Sendable, Equatable {
        /// Recorded against the batch; `remaining` devices are left in the quota.
        case registered(remaining: Int)
        /// The same device and key were registered before: nothing counted twice.
        case alreadyRegistered
        /// Refused, with the reason; the refusal (and for over-production, the alarm) is logged.
        case refused(HallmarkError)
    }

    /// Records a device a programming station has just programmed, against its batch's quota.
    ///
    /// The quota is taken in the same transaction as the device record, and the registry's single
    /// writer orders all registrations: under any concurrency exactly `quota` devices get in. The
    /// first registration past the quota raises an `overproduction` alarm; every one is refused.
    public func registerProgrammedDevice(
        batch batchID: String, udid: UDID, key: DeviceKey, source: String?, now: Date
    ) async throws -> ProgrammingOutcome {
        try await committer.perform { db in
            guard let batch = try Self.batch(db, id: batchID) else {
                throw HallmarkError(.notFound, "Batch \(batchID) does not exist.", remedy: "Check the station's configuration.")
            }
            let at = now.timeIntervalSince1970
            func refuse(_ error: HallmarkError, tenantToo owner: String? = nil) throws -> ProgrammingOutcome {
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: batch.tenant, action: .batchRegister, decision: .refuse, code: error.code.rawValue,
                        udid: udid.rawValue, source: source, detail: "batch \(batch.id): \(error.reason)"), db)
                if let owner {
                    try Self.insert(
                        AuditEvent(
                            at: now, tenant: owner, action: .batchRegister, decision: .refuse, code: error.code.rawValue,
                            udid: udid.rawValue, detail: "another tenant's factory registered this device; refused"), db)
                }
                return .refused(error)
            }
            if let existing = try Row.fetchOne(
                db, sql: "SELECT tenant_id, key_fingerprint, batch_id FROM devices WHERE udid = ?", arguments: [udid.rawValue])
            {
                let owner: String = existing["tenant_id"]
                guard owner == batch.tenant else {
                    return try refuse(
                        HallmarkError(.ownershipConflict, "Device \(udid) already belongs to another tenant.",
                                      remedy: "A chip another OEM owns cannot go into your product; set it aside."),
                        tenantToo: owner)
                }
                guard existing["key_fingerprint"] == key.fingerprint else {
                    return try refuse(
                        HallmarkError(.cloneSuspected, "Device \(udid) is on record with another root-of-trust key.",
                                      remedy: "Two chips claim one UDID: set this one aside as a suspected clone."))
                }
                let existingBatch: String? = existing["batch_id"]
                if existingBatch == batchID { return .alreadyRegistered }
                if existingBatch != nil {
                    return try refuse(
                        HallmarkError(.batchInvalid, "Device \(udid) was already programmed in batch \(existingBatch!).",
                                      remedy: "A device is programmed once; check for a re-used chip."))
                }
            } else if try Bool.fetchOne(
                db, sql: "SELECT 1 FROM devices WHERE key_fingerprint = ?", arguments: [key.fingerprint]) == true
            {
                return try refuse(
                    HallmarkError(.cloneSuspected, "Device \(udid)'s key is already on record for another device.",
                                  remedy: "Two chips share one key: set this one aside as a suspected clone."))
            }
            try db.execute(
                sql: "UPDATE batches SET programmed = programmed + 1 WHERE id = ? AND programmed < quota", arguments: [batchID])
            guard db.changesCount == 1 else {
                try db.execute(sql: "UPDATE batches SET refused = refused + 1 WHERE id = ?", arguments: [batchID])
                if batch.refused == 0 {
                    try Self.insert(
                        AuditEvent(
                            at: now, tenant: batch.tenant, action: .alarm, decision: .alarm, code: "overproduction",
                            udid: udid.rawValue, source: source,
                            detail: "batch \(batch.id) of product \(batch.product): quota \(batch.quota) reached and the station registered more"),
                        db)
                }
                return try refuse(
                    HallmarkError(.quotaExceeded, "Batch \(batch.id) has used its quota of \(batch.quota) devices.",
                                  remedy: "Over-production is refused; a larger run needs a new batch from the OEM."))
            }
            try db.execute(
                sql: """
                    INSERT INTO devices (udid, tenant_id, product_id, public_key, key_fingerprint, source, status, created_at, updated_at, batch_id)
                    VALUES (?, ?, ?, ?, ?, ?, 'allowed', ?, ?, ?)
                    ON CONFLICT (udid) DO UPDATE SET batch_id = excluded.batch_id, updated_at = excluded.updated_at
                    """,
                arguments: [
                    udid.rawValue, batch.tenant, batch.product, Data(key.spkiDER), key.fingerprint, "batch:\(batchID)", at, at, batchID,
                ])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: batch.tenant, action: .batchRegister, decision: .allow, code: "programmed",
                    udid: udid.rawValue, source: source, detail: "batch \(batch.id): \(batch.programmed + 1) of \(batch.quota)"), db)
            return .registered(remaining: batch.quota - batch.programmed - 1)
        }
    }
}
