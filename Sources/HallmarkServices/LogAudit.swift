import HallmarkStore
import TransparencyLog

import Foundation

/// Checks a transparency log end to end, from what an auditor can read: every leaf's bytes
/// against the hash recorded when its event was logged, the tree of those bytes against a
/// checkpoint the log's key signed, and each earlier checkpoint against the later tree.
public struct LogAudit: Sendable {
    public var findings: [String] = []
    public var leaves = 0
    public var checkpointSize = 0
    public var checkpointsChecked = 0
    public var ok: Bool { findings.isEmpty }

    public init() {}

    /// Audits entries (in index order, from 0) against signed checkpoint notes (oldest first).
    public static func audit(
        entries: [Registry.LogEntry], notes: [String], verifier: Checkpoint.Verifier, unlogged: [Int64] = []
    ) -> LogAudit {
        var audit = LogAudit()
        audit.leaves = entries.count
        var hashes: [MerkleTree.Hash] = []
        for (position, entry) in entries.enumerated() {
            if entry.index != position {
                audit.findings.append("leaf \(position) is missing from the tree")
                return audit
            }
            if entry.leaf.isEmpty {
                audit.findings.append("leaf \(entry.index): the row of event \(entry.eventID) was deleted")
            } else if MerkleTree.leafHash(entry.leaf) != entry.recordedHash {
                audit.findings.append("leaf \(entry.index): event \(entry.eventID) was edited after it was logged")
            }
            hashes.append(MerkleTree.leafHash(entry.leaf))
        }
        for id in unlogged.prefix(20) {
            audit.findings.append("event \(id) is in the event log but not in the tree: inserted out of order, or its id reused")
        }
        if notes.isEmpty { audit.findings.append("no signed checkpoint to check the tree against") }
        for note in notes {
            do {
                let checkpoint = try Checkpoint.open(note, verifier: verifier)
                guard checkpoint.size <= hashes.count else {
                    audit.findings.append("checkpoint of size \(checkpoint.size) is larger than the tree (\(hashes.count)): entries were removed")
                    continue
                }
                if MerkleTree.root(hashes.prefix(checkpoint.size)) != checkpoint.root {
                    audit.findings.append("the tree of the first \(checkpoint.size) leaves does not have the root its signed checkpoint gives")
                }
                audit.checkpointsChecked += 1
                audit.checkpointSize = max(audit.checkpointSize, checkpoint.size)
            } catch {
                audit.findings.append("a checkpoint does not verify: \(error)")
            }
        }
        return audit
    }

    /// Audits a registry's log as it is on disk.
    public static func audit(registry: Registry, verifier: Checkpoint.Verifier) throws -> LogAudit {
        let size = try registry.logLeafHashes().count
        let entries = try registry.logEntries(start: 0, end: size)
        let last = entries.last?.eventID ?? 0
        let logged = Set(entries.map(\.eventID))
        let unlogged = try registry.eventIDs(after: 0, limit: Int.max).filter { $0 <= last && !logged.contains($0) }
        return audit(entries: entries, notes: try registry.checkpoints().map(\.note), verifier: verifier, unlogged: unlogged)
    }
}
