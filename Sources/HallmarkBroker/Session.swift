import MQTTCore
import NIOCore
import Synchronization

/// The live connection a session is attached to; its methods run on the connection's event loop.
struct ConnectionHandle: Sendable {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<MQTTConnectionHandler>
    let id: ObjectIdentifier

    /// Has the connection write what its session queued. Always a task of its own, even from the
    /// connection's own event loop: messages queued meanwhile (a whole read of a publisher's
    /// packets) then leave in one write.
    func drain() {
        eventLoop.execute { handler.value.drain() }
    }

    func close(reason: ReasonCode, message: String) {
        eventLoop.execute { handler.value.closeByBroker(reason: reason, message: message) }
    }

    /// Lets a publisher held back by a congested session read again.
    func resumeReading() {
        eventLoop.execute { handler.value.resumeReading() }
    }
}

/// An MQTT session: its subscriptions and the messages on their way to its client, which outlive a
/// connection when the client asked for a persistent session.
///
/// Outgoing state (``Outbound``) is behind the session's `Mutex`.
final class Session: @unchecked Sendable {
    struct Outgoing {
        var message: BrokerMessage
        var qos: QoS
        var retain: Bool
        var subscriptionIDs: [UInt32]
        var packetID: UInt16 = 0
        /// QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.
        var released = false
    }

    let key: String
    let tenant: String
    let clientID: String

    // Guarded by the broker's lock.
    var subscriptions: [String: SubscriptionEntry] = [:]

    /// What the session's lock guards: publishers on any event loop enqueue, the connection's
    /// event loop takes messages off and tracks acknowledgements.
    struct Outbound {
        var connection: ConnectionHandle?
        var queue = CircularBuffer<Outgoing>(initialCapacity: 1)  // most sessions hold nothing most of the time
        var inflight: [UInt16: Outgoing] = [:]
        var inflightOrder: [UInt16] = []
        var nextPacketID: UInt16 = 1
        var drainScheduled = false
        var window = 100
        var authorizer: Authorizer?
        /// Bumped on every attach, so that a timer of an older connection does nothing.
        var generation = 0
        /// Publishers told to stop reading until the queue has drained (see ``enqueue``).
        var heldPublishers: [ObjectIdentifier: ConnectionHandle] = [:]
        /// When the connection last took messages off the queue: a session that has taken nothing
        /// for ``stallTime`` is stalled, and holds no publisher back.
        var lastTaken = NIODeadline.now()

        mutating func freePacketID() -> UInt16 {
            while true {
                let id = nextPacketID
                nextPacketID = nextPacketID == .max ? 1 : nextPacketID + 1
                if inflight[id] == nil { return id }
            }
        }

        /// Empties the held publishers.
        mutating func takeHeldPublishers() -> [ConnectionHandle] {
            guard !heldPublishers.isEmpty else { return [] }
            defer { heldPublishers.removeAll() }
            return Array(heldPublishers.values)
        }
    }

    private let outbound = Mutex(Outbound())
    private let maximumQueued: Int
    /// (Long enough for a slow reader behind megabytes of kernel socket buffers, which the
    /// broker sees as writable again only in bursts.)
    static let stallTime = TimeAmount.seconds(5)

    init(key: String, tenant: String, clientID: String, maximumQueued: Int) {
        self.key = key
        self.tenant = tenant
        self.clientID = clientID
        self.maximumQueued = maximumQueued
    }

    var authorizer: Authorizer? { outbound.withLock { $0.authorizer } }

    /// Puts new policies in force for the connection (after a policy change).
    func replaceAuthorizer(_ authorizer: Authorizer) { outbound.withLock { $0.authorizer = authorizer } }

    /// How many connections the session has had: a timer set by one connection checks it is still current.
    var generation: Int { outbound.withLock { $0.generation } }

    /// Whether the session has had no connection since `generation`.
    func isAway(since generation: Int) -> Bool { outbound.withLock { $0.generation == generation && $0.connection == nil } }

    /// Attaches a connection; returns the one it replaced, if any.
    func attach(_ handle: ConnectionHandle, authorizer: Authorizer, window: Int) -> ConnectionHandle? {
        outbound.withLock { state in
            state.generation += 1
            let previous = state.connection
            state.connection = handle
            state.authorizer = authorizer
            state.window = window
            state.drainScheduled = false
            state.lastTaken = .now()
            return previous
        }
    }

    /// Detaches a connection if it is still the session's; false if another connection took the
    /// session over meanwhile.
    @discardableResult
    func detach(_ id: ObjectIdentifier) -> Bool {
        let (detached, held): (Bool, [ConnectionHandle]) = outbound.withLock { state in
            guard state.connection?.id == id else { return (false, []) }
            state.connection = nil
            state.drainScheduled = false
            return (true, state.takeHeldPublishers())
        }
        for publisher in held { publisher.resumeReading() }
        return detached
    }

    var isConnected: Bool { outbound.withLock { $0.connection != nil } }
    var liveConnection: ConnectionHandle? { outbound.withLock { $0.connection } }

    /// Queues a message for the client and wakes its connection. QoS 0 messages for a session
    /// without a connection are dropped (MQTT 5.0 §4.1); past the queue bound, new messages are.
    ///
    /// Flow control: once the queue of a connected session is half full, the publisher is asked to
    /// stop reading (the return value is true, and the publisher is woken when the queue is down to
    /// an eighth), so a subscriber that reads slowly slows its publishers down instead of losing
    /// messages. A subscriber that has taken nothing for ``stallTime`` holds no one back: its
    /// messages are dropped past the bound instead.
    @discardableResult
    func enqueue(_ message: BrokerMessage, qos: QoS, retain: Bool, subscriptionIDs: [UInt32], publisher: ConnectionHandle? = nil) -> Bool {
        let maximumQueued = self.maximumQueued
        let (wake, hold): (ConnectionHandle?, Bool) = outbound.withLock { state in
            if state.connection == nil && qos == .atMostOnce { return (nil, false) }
            if state.queue.count < maximumQueued {
                state.queue.append(Outgoing(message: message, qos: qos, retain: retain, subscriptionIDs: subscriptionIDs))
            }
            guard let connection = state.connection else { return (nil, false) }
            var hold = false
            // A client is never held back by its own session: it must go on reading its acknowledgements.
            if let publisher, publisher.id != connection.id, state.queue.count >= maximumQueued / 2,
               NIODeadline.now() - state.lastTaken < Self.stallTime {
                state.heldPublishers[publisher.id] = publisher
                hold = true
            }
            guard !state.drainScheduled else { return (nil, hold) }
            state.drainScheduled = true
            return (connection, hold)
        }
        wake?.drain()
        return hold
    }

    /// Takes up to `limit` messages to send now, honouring the in-flight window; assigns packet ids.
    func takeForDelivery(limit: Int, now: NIODeadline) -> [PublishPacket] {
        let maximumQueued = self.maximumQueued
        let (out, held): ([PublishPacket], [ConnectionHandle]) = outbound.withLock { state in
            state.drainScheduled = false
            var out: [PublishPacket] = []
            while out.count < limit, let first = state.queue.first {
                if first.qos != .atMostOnce && state.inflight.count >= state.window { break }
                var item = state.queue.removeFirst()
                if item.message.isExpired(now) { continue }
                if item.qos != .atMostOnce {
                    item.packetID = state.freePacketID()
                    state.inflight[item.packetID] = item
                    state.inflightOrder.append(item.packetID)
                }
                out.append(item.message.packet(
                    qos: item.qos, retain: item.retain, packetID: item.qos == .atMostOnce ? nil : item.packetID,
                    subscriptionIDs: item.subscriptionIDs, dup: false, now: now))
            }
            if !out.isEmpty { state.lastTaken = now }
            let drained = !state.heldPublishers.isEmpty && state.queue.count <= maximumQueued / 8
            return (out, drained ? state.takeHeldPublishers() : [])
        }
        for publisher in held { publisher.resumeReading() }
        return out
    }

    enum AckOutcome { case done, sendRelease, unknown }

    /// Handles PUBACK, PUBREC or PUBCOMP from the client.
    func acknowledge(_ id: UInt16, _ ack: OutboundAck) -> AckOutcome {
        outbound.withLock { state in
            guard var item = state.inflight[id] else { return .unknown }
            switch ack {
            case .pubrec:
                guard item.qos == .exactlyOnce else { return .unknown }
                item.released = true
                state.inflight[id] = item
                return .sendRelease
            case .puback where item.qos == .atLeastOnce, .pubcomp where item.qos == .exactlyOnce && item.released,
                 .pubrecRefused where item.qos == .exactlyOnce && !item.released:
                state.inflight[id] = nil
                state.inflightOrder.removeAll { $0 == id }
                return .done
            case .puback, .pubcomp, .pubrecRefused:
                return .unknown
            }
        }
    }

    /// Forgets an in-flight message that will not be sent (too large for the client).
    func discard(_ id: UInt16) {
        outbound.withLock { state in
            state.inflight[id] = nil
            state.inflightOrder.removeAll { $0 == id }
        }
    }

    /// What to send again to a client resuming the session: unacknowledged PUBLISHes with DUP set,
    /// and PUBRELs for QoS 2 messages already received (MQTT 5.0 §4.4).
    func retransmissions(now: NIODeadline) -> [Packet] {
        outbound.withLock { state in
            state.inflightOrder.compactMap { id in
                guard let item = state.inflight[id] else { return nil }
                if item.released { return .pubrel(AckPacket(packetID: id)) }
                return .publish(item.message.packet(
                    qos: item.qos, retain: item.retain, packetID: id, subscriptionIDs: item.subscriptionIDs, dup: true, now: now))
            }
        }
    }

    /// Forgets everything queued (a clean start).
    func reset() {
        let held = outbound.withLock { state in
            state.queue.removeAll()
            state.inflight.removeAll()
            state.inflightOrder.removeAll()
            return state.takeHeldPublishers()
        }
        for publisher in held { publisher.resumeReading() }
    }
}
