import GRDB
import HallmarkCore
import TransparencyLog

import Foundation

/// The event log as a Merkle tree: each event, in id order, is a leaf (``EventLeaf``), its hash
/// kept in `log_leaves`; signed checkpoints are kept in `log_checkpoints`. An event row edited,
/// deleted or moved after it became a leaf no longer gives the leaf hash, or the tree the root,
/// a checkpoint signed; `hallmark log verify` finds it.
extension Registry {
    /// One leaf: its index, the event it is, and the exact bytes hashed.
    public struct LogEntry: Sendable, Hashable {
        public var index: Int
        public var eventID: Int64
        public var leaf: [UInt8]
        /// The leaf hash recorded when the event became a leaf.
        public var recordedHash: [UInt8]
        public var tenant: String

        public init(index: Int, eventID: Int64, leaf: [UInt8], recordedHash: [UInt8], tenant: String) {
            self.index = index
            self.eventID = eventID
            self.leaf = leaf
            self.recordedHash = recordedHash
            self.tenant = tenant
        }
    }

    /// A signed checkpoint as kept.
    public struct StoredCheckpoint: Sendable, Hashable {
        public var size: Int
        public var root: [UInt8]
        public var signedAt: Date
        public var note: String
    }

    /// Makes the events not yet in the tree its next leaves (at most `limit`); returns their hashes, in order.
    public func appendLogLeaves(limit: Int = 10_000) async throws -> [MerkleTree.Hash] {
        try await committer.perform { db in
            let next = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves") ?? 0
            let after = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(event_id), 0) FROM log_leaves") ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT \(EventLeaf.columns.joined(separator: ", ")) FROM events WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [after, limit])
            var hashes: [MerkleTree.Hash] = []
            let insert = try db.cachedStatement(sql: "INSERT INTO log_leaves (idx, event_id, hash) VALUES (?, ?, ?)")
            for (offset, row) in rows.enumerated() {
                let hash = MerkleTree.leafHash(Self.leaf(row))
                try insert.execute(arguments: [next + offset, row["id"] as Int64, Data(hash)])
                hashes.append(hash)
            }
            return hashes
        }
    }

    static func leaf(_ row: Row) -> [UInt8] {
        EventLeaf.bytes(
            id: row["id"], at: row["at"], tenant: row["tenant_id"], action: row["action"], decision: row["decision"],
            code: row["code"], udid: row["udid"], thing: row["thing"], serial: row["serial"], source: row["source"],
            detail: row["detail"])
    }

    /// Every leaf hash recorded, in order.
    public func logLeafHashes() throws -> [MerkleTree.Hash] {
        try pool.read { db in
            let cursor = try Data.fetchCursor(db, sql: "SELECT hash FROM log_leaves ORDER BY idx")
            var hashes: [MerkleTree.Hash] = []
            while let hash = try cursor.next() { hashes.append(Array(hash)) }
            return hashes
        }
    }

    /// The leaves from `start` up to (not including) `end`, their bytes made again from the event
    /// rows as they are now. With `tenant`, only that tenant's (the indexes stay the tree's).
    public func logEntries(start: Int, end: Int, tenant: String? = nil) throws -> [LogEntry] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT l.idx, l.event_id, l.hash, \(EventLeaf.columns.map { "e.\($0)" }.joined(separator: ", "))
                    FROM log_leaves l LEFT JOIN events e ON e.id = l.event_id
                    WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx
                    """,
                arguments: [start, end])
            return rows.compactMap { row in
                let eventTenant: String? = row["tenant_id"]
                if let tenant, eventTenant != tenant { return nil }
                let present = !row.hasNull(atIndex: 3)
                let hash: Data = row["hash"]
                return LogEntry(
                    index: row["idx"], eventID: row["event_id"], leaf: present ? Self.leaf(row) : [], recordedHash: Array(hash),
                    tenant: eventTenant ?? "")
            }
        }
    }

    /// The number of events, and the highest event id.
    public func eventCount() throws -> (count: Int, maxID: Int64) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM events")
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    /// The event ids in order (for checking that none was removed or inserted under the tree).
    public func eventIDs(after id: Int64, limit: Int) throws -> [Int64] {
        try pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?", arguments: [id, limit])
        }
    }

    public func saveCheckpoint(_ checkpoint: Checkpoint, note: String, now: Date) async throws {
        try await committer.perform { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO log_checkpoints (size, root, signed_at, note) VALUES (?, ?, ?, ?)",
                arguments: [checkpoint.size, Data(checkpoint.root), now.timeIntervalSince1970, note])
        }
    }

    /// The checkpoints kept, oldest first.
    public func checkpoints() throws -> [StoredCheckpoint] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT size, root, signed_at, note FROM log_checkpoints ORDER BY size").map { row in
                let root: Data = row["root"]
                return StoredCheckpoint(size: row["size"], root: Array(root), signedAt: Date(timeIntervalSince1970: row["signed_at"]), note: row["note"])
            }
        }
    }

    /// The indexes of a device's events in the tree, newest last.
    public func logIndexes(udid: String, limit: Int = 20) throws -> [Int] {
        try pool.read { db in
            try Int.fetchAll(
                db,
                sql: """
                    SELECT l.idx FROM log_leaves l JOIN events e ON e.id = l.event_id
                    WHERE e.udid = ? ORDER BY l.idx DESC LIMIT ?
                    """,
                arguments: [udid, limit]
            ).reversed()
        }
    }
}
