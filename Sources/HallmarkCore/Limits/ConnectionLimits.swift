import Synchronization

/// What a listener allows a connection that has not proved itself yet: a client gets so long to
/// finish its TLS handshake and say what it wants, and one address may hold only so many such
/// connections at once. Half-open connections, handshakes that stop halfway and headers sent a
/// byte at a time (slowloris) then cost a listener a bounded number of sockets for a bounded time.
public struct ConnectionLimits: Sendable, Hashable, Codable {
    /// Seconds from accept to a finished TLS handshake and the first MQTT CONNECT or HTTP request head.
    public var handshakeTimeout: Int = 10
    /// Seconds an HTTP connection may stay open between requests (keep-alive).
    public var idleTimeout: Int = 60
    /// Seconds from an HTTP request's head to the end of its body.
    public var requestTimeout: Int = 30
    /// Connections from one address still in their handshake (before CONNECT is accepted, or before
    /// the first request head); 0 for no limit. Established connections do not count, so devices
    /// behind one NAT are not limited.
    public var maximumPendingPerAddress: Int = 32
    /// The largest HTTP request head (request line and header fields), in bytes.
    public var maximumHeaderSize: Int = 16 * 1024

    public init() {}
}

/// What an admitted connection holds of a limit (a place among its address's pending connections,
/// a share of the process's budget), given back once: by whichever comes first of "the connection
/// proved itself" and "the connection closed". Later calls do nothing.
public final class ConnectionHold: Sendable {
    private let giveBack: @Sendable () -> Void
    private let released = Atomic<Bool>(false)

    init(_ giveBack: @escaping @Sendable () -> Void) {
        self.giveBack = giveBack
    }

    public func release() {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        giveBack()
    }
}

/// The connections from each address that are still in their handshake, shared by a listener's
/// event loops.
public final class PendingConnections: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    /// Takes a place for a new connection from `address`; nil when the address has `limit` already.
    public func admit(_ address: String) -> ConnectionHold? {
        guard limit > 0 else { return ConnectionHold {} }
        let admitted = counts.withLock { counts in
            let count = counts[address, default: 0]
            guard count < limit else { return false }
            counts[address] = count + 1
            return true
        }
        guard admitted else { return nil }
        return ConnectionHold { [self] in
            counts.withLock { counts in
                guard let count = counts[address] else { return }
                counts[address] = count > 1 ? count - 1 : nil
            }
        }
    }

    /// Connections from `address` in their handshake now.
    public func count(_ address: String) -> Int { counts.withLock { $0[address, default: 0] } }
}

/// The connections the whole process may hold, across its listeners: fewer than its file
/// descriptors by a reserve, so that a flood of connections never leaves the registry, the
/// runtime or the kernel's /proc reads without one. (On Linux, libdispatch stops the process when
/// it cannot open /proc to watch its thread pool.) A connection past the budget is closed at accept.
public final class ConnectionBudget: Sendable {
    public let maximum: Int
    private let open = Atomic<Int>(0)

    public init(maximum: Int) {
        self.maximum = maximum
    }

    /// A share of the budget for a new connection; nil when `maximum` are open.
    public func admit() -> ConnectionHold? {
        guard open.add(1, ordering: .relaxed).newValue <= maximum else {
            open.subtract(1, ordering: .relaxed)
            return nil
        }
        return ConnectionHold { [self] in open.subtract(1, ordering: .relaxed) }
    }

    /// Connections open now.
    public var count: Int { open.load(ordering: .relaxed) }

    /// The budget for a process with `descriptors` file descriptors: all but a reserve of a
    /// quarter, at least 64 and at most 1,024 (the registry's files, event loops, the runtime).
    public static func forDescriptors(_ descriptors: Int) -> Int {
        let reserve = min(1024, max(64, descriptors / 4))
        return max(16, descriptors - reserve)
    }
}

/// Who a listener lets in at accept: a share of the process's budget, then (where the listener
/// limits them) a place among the address's connections in their handshake.
public struct ListenerAdmission: Sendable {
    public let budget: ConnectionBudget?
    public let pending: PendingConnections?

    public init(budget: ConnectionBudget?, pending: PendingConnections?) {
        self.budget = budget
        self.pending = pending
    }

    /// Why a connection was closed at accept, as `hallmark_connections_dropped_total` names it.
    public enum Refusal: String, Error {
        case tooManyConnections = "too_many_connections"
        case tooManyPending = "too_many_pending"
    }

    /// What an admitted connection holds: its share of the budget (give it back when the connection
    /// closes) and its pending place (give it back when it proves itself, or closes).
    public struct Admitted: Sendable {
        public let share: ConnectionHold?
        public let place: ConnectionHold?

        /// Gives back both: the connection closed.
        public func release() {
            share?.release()
            place?.release()
        }
    }

    public func admit(_ address: String) -> Result<Admitted, Refusal> {
        var share: ConnectionHold?
        if let budget {
            guard let taken = budget.admit() else { return .failure(.tooManyConnections) }
            share = taken
        }
        var place: ConnectionHold?
        if let pending {
            guard let taken = pending.admit(address) else {
                share?.release()
                return .failure(.tooManyPending)
            }
            place = taken
        }
        return .success(Admitted(share: share, place: place))
    }
}
