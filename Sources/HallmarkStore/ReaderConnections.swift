import GRDB
import Synchronization

/// Read-only connections for the enrollment path's read before signing.
///
/// GRDB's `DatabasePool` hands out its readers under a lock built on a concurrent dispatch
/// queue; under enrollment load the threads running requests parked on it (`bench enroll` saw a
/// few hundred such waits a second, with a core partly idle). Here a connection is taken and put
/// back under a `Mutex` held for one array operation. Each connection is used by one thread
/// at a time, and idle ones beyond `limit` are closed.
final class ReaderConnections: Sendable {
    private let path: String
    private let configuration: Configuration
    private let limit: Int
    private let idle = Mutex<[DatabaseQueue]>([])

    init(path: String, limit: Int = 8) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        configuration.label = "hallmark.registry.reader"
        self.path = path
        self.configuration = configuration
        self.limit = limit
    }

    /// Runs `body` on an idle connection (opening one if none is idle), outside any transaction.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        let connection = try idle.withLock { $0.popLast() } ?? DatabaseQueue(path: path, configuration: configuration)
        defer {
            idle.withLock { connections in
                if connections.count < limit { connections.append(connection) }
            }
        }
        return try connection.unsafeRead(body)
    }
}
