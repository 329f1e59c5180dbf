import Dispatch
import GRDB
import GRDBSQLite
import Logging
import Synchronization

/// Copies the write-ahead log into the database file on a connection and thread of its own.
///
/// SQLite's automatic checkpoint runs inside the committing connection, on the group-commit
/// thread: under enrollment load every waiting request stood still while a checkpoint copied
/// megabytes and waited for `fdatasync` (about 15 % of the two cores sat idle in `bench enroll`).
/// Here the writer's commits only report the log's length (SQLite's WAL hook); past `threshold`
/// frames a passive checkpoint is queued, which never blocks the writer or a reader. Should it
/// fall behind, past `backstop` frames the writer checkpoints itself, as SQLite's automatic
/// checkpoint would (the hook replaces that one).
final class Checkpointer: Sendable {
    /// Log frames (pages) after which a checkpoint is queued: 8 MB of 2 KiB pages.
    static let threshold: Int32 = 4000
    /// Log frames after which the committing connection checkpoints itself: a backstop only.
    static let backstop: Int32 = 32000

    private let path: String
    private let queue = DispatchQueue(label: "hallmark.registry.checkpoint")
    private let queued = Atomic<Bool>(false)
    private let state = Mutex(State())
    private let logger = Logger(label: "hallmark.registry")

    private struct State {
        var connection: DatabaseQueue?
        /// While checkpoints fail (a full or read-only disk), one attempt a second, one warning.
        var retryAt: ContinuousClock.Instant?
    }

    init(path: String) {
        self.path = path
    }

    /// Makes `db` report its log's length after each commit. The hook holds the checkpointer
    /// unretained: the registry keeps it for as long as its connections live.
    func watch(_ db: Database) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = sqlite3_wal_hook(
            db.sqliteConnection,
            { context, db, name, frames in
                if frames >= Checkpointer.backstop {
                    _ = sqlite3_wal_checkpoint(db, name)
                }
                guard let context else { return SQLITE_OK }
                Unmanaged<Checkpointer>.fromOpaque(context).takeUnretainedValue().logLength(frames)
                return SQLITE_OK
            },
            context)
    }

    private func logLength(_ frames: Int32) {
        guard frames >= Self.threshold, !queued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async {
            self.checkpoint()
            self.queued.store(false, ordering: .releasing)
        }
    }

    /// Checkpoints now, after any queued checkpoint, and returns when done.
    func checkpointNow() {
        queue.sync { checkpoint(force: true) }
    }

    /// A passive checkpoint: copies what no reader still needs, and leaves the rest for the next.
    /// A failure is logged once and retried at most once a second, by the next commit's request
    /// (or made good by the writer's backstop).
    private func checkpoint(force: Bool = false) {
        state.withLock { state in
            let now = ContinuousClock.now
            if !force, let retryAt = state.retryAt, now < retryAt { return }
            do {
                if state.connection == nil {
                    var configuration = Configuration()
                    configuration.busyMode = .timeout(10)
                    configuration.label = "hallmark.registry.checkpoint"
                    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                    state.connection = try DatabaseQueue(path: path, configuration: configuration)
                }
                _ = try state.connection?.writeWithoutTransaction { db in try db.checkpoint(.passive) }
                if state.retryAt != nil {
                    logger.notice("registry checkpoints work again")
                    state.retryAt = nil
                }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                // Another connection (a CLI command beside the server) is checkpointing: its work is ours.
                return
            } catch {
                if state.retryAt == nil {
                    logger.warning("registry checkpoint failed; retrying once a second", metadata: ["error": "\(error)"])
                }
                state.retryAt = now + .seconds(1)
                state.connection = nil
            }
        }
    }
}
