import HallmarkCore
import TransparencyLog

import Foundation

/// What the transparency log needs of the registry: to turn new events into leaves, the leaves
/// and checkpoints kept, and the entries as the event rows are now.
public protocol LogStore: Sendable {
    func appendLogLeaves(limit: Int) async throws -> [MerkleTree.Hash]
    func logLeafHashes() throws -> [MerkleTree.Hash]
    func logEntries(start: Int, end: Int, tenant: String?) throws -> [Registry.LogEntry]
    func saveCheckpoint(_ checkpoint: Checkpoint, note: String, now: Date) async throws
    func checkpoints() throws -> [Registry.StoredCheckpoint]
    func tenant(forCredential secret: String) throws -> String?
    func append(_ event: AuditEvent) async throws
    /// Writes the counts of refusal floods whose minute is over.
    func flushCountedRefusals(now: Date) async throws
}

extension Registry: LogStore {}
