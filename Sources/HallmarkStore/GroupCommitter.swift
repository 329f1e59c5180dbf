import Dispatch
import Foundation
import GRDB
import Synchronization

/// Batches many small write transactions into one (group commit), and runs the reads that must
/// be quick on the writer's connection.
///
/// Callers submit a closure; a single dispatch queue drains everything queued so far into one
/// transaction, each closure inside its own savepoint, so one failing closure does not undo the
/// others. A caller resumes only after the transaction holding its work has committed: an answer
/// given is an answer on disk.
///
/// Reads submitted with ``read(_:)`` run on the same queue and connection, at the start of the
/// next batch's transaction, before its writes. That connection's page cache stays warm: SQLite
/// empties a connection's cache when another connection has committed since its last read,
/// which for this one happens only when a command writes beside the server. A read-only
/// connection found its cache emptied by nearly every read under load and fetched every page
/// again (`bench enroll` saw the read before signing cost more than all of an enrollment's writes).
final class GroupCommitter: Sendable {
    private struct Job: Sendable {
        /// Runs the work (a write's inside a savepoint) and returns how to deliver its result
        /// (a write's once its transaction has committed).
        let run: @Sendable (Database) -> @Sendable () -> Void
        /// Delivers a failure of the whole transaction, or of the connection before a read ran.
        let fail: @Sendable (any Error) -> Void
    }

    private struct State {
        var queue: [Job] = []
        var reads: [Job] = []
        var draining = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())
    private let drainQueue = DispatchQueue(label: "hallmark.registry.group-commit")

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `work` in the next batched transaction and returns its result once committed.
    func perform<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await submit(read: false) { db in try Self.inSavepoint(db) { try work(db) } }
    }

    /// Runs `work` on the writer's connection ahead of the next batch, in its transaction before
    /// any of its writes, and returns its result at once. It must not write.
    func read<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await submit(read: true, work)
    }

    private func submit<T: Sendable>(read: Bool, _ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = Job(
                run: { db in
                    let outcome = Result { try work(db) }
                    return { continuation.resume(with: outcome) }
                },
                fail: { error in continuation.resume(throwing: error) })
            let startDrain = state.withLock { state in
                if read { state.reads.append(job) } else { state.queue.append(job) }
                if state.draining { return false }
                state.draining = true
                return true
            }
            if startDrain {
                drainQueue.async { self.drain() }
            }
        }
    }

    /// Runs `work` in a savepoint of the batch's transaction, undoing only its own changes if it
    /// throws. The three statements are prepared once per connection (GRDB's `inSavepoint`
    /// parses them on every call, a measurable share of an enrollment).
    private static func inSavepoint<T>(_ db: Database, _ work: () throws -> T) throws -> T {
        try db.cachedStatement(sql: "SAVEPOINT job").execute()
        do {
            let result = try work()
            try db.cachedStatement(sql: "RELEASE SAVEPOINT job").execute()
            return result
        } catch {
            // The work's own error is the one to report. Should the rollback fail, SQLite has
            // already abandoned the whole transaction, and the batch's commit fails for everyone.
            try? db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT job").execute()
            try? db.cachedStatement(sql: "RELEASE SAVEPOINT job").execute()
            throw error
        }
    }

    /// Under load, the writer waits this long for a batch to fill up to `gatherTarget` jobs
    /// before it begins the next transaction. Each commit writes the pages its jobs share (the
    /// ends of the tables and indexes that grow in order) and pays the transaction's fixed cost
    /// once, so larger batches cost less per job; the wait is short beside the batch's own time.
    static let gatherMicroseconds: UInt32 = 250
    static let gatherTarget = 8

    private func drain() {
        // Set once a batch has committed in this run of the loop: more requests are then likely
        // on their way. The first batch after an idle spell starts at once.
        var underLoad = false
        while true {
            // Reads never wait for a batch to fill: their callers sign next, then commit.
            if underLoad, state.withLock({ $0.queue.count < Self.gatherTarget && $0.reads.isEmpty }) {
                usleep(Self.gatherMicroseconds)
            }
            let (reads, batch) = state.withLock { state -> ([Job], [Job]) in
                if state.queue.isEmpty && state.reads.isEmpty {
                    state.draining = false
                    return ([], [])
                }
                defer {
                    state.reads.removeAll(keepingCapacity: true)
                    state.queue.removeAll(keepingCapacity: true)
                }
                return (state.reads, state.queue)
            }
            if reads.isEmpty && batch.isEmpty { return }
            var deliveries: [@Sendable () -> Void] = []
            var readsDone = false
            do {
                try pool.writeWithoutTransaction { db in
                    // One transaction, so one lock on the WAL's shared memory, for the reads and
                    // the batch. The reads come first and see only committed data: their answers
                    // go out at once.
                    try db.inTransaction {
                        for job in reads { job.run(db)() }
                        readsDone = true
                        deliveries = batch.map { $0.run(db) }
                        return .commit
                    }
                }
                for deliver in deliveries { deliver() }
            } catch {
                if !readsDone { for job in reads { job.fail(error) } }
                for job in batch { job.fail(error) }
            }
            underLoad = underLoad || !batch.isEmpty
        }
    }
}
