import Synchronization
import HallmarkCore
import HallmarkMetrics
import HallmarkStore
import Logging
import MQTTCore
import NIOCore
import NIOPosix

import Foundation

/// The broker's shared state: sessions, subscriptions and retained messages, each kept per tenant
/// so that one tenant's clients never see another's topics or client ids.
final class Broker: Sendable {
    struct State {
        var sessions: [String: Session] = [:]
        var trees: [String: SubscriptionTree<SubscriptionEntry>] = [:]
        var retained: [String: [String: BrokerMessage]] = [:]
        /// Per tenant, the subscriptions matching a topic, as found in the tree: most devices publish
        /// to the same few topics again and again. Dropped for a tenant whenever its subscriptions change.
        var routes: [String: [String: [Route]]] = [:]

        mutating func subscriptionsChanged(tenant: String) { routes[tenant] = nil }
    }

    /// A subscription matching a topic.
    struct Route {
        var session: Session
        var entry: SubscriptionEntry
    }

    static let routeCacheLimit = 10_000

    let configuration: BrokerConfiguration
    let registry: any BrokerStore
    let trust: TrustStore
    let telemetry: TelemetryRecorder?
    let clones = CloneWatch()
    let events: EventWriter
    let logger: Logger
    /// The AWS IoT Jobs device API.
    let jobs: JobsResponder
    /// AWS IoT's fleet provisioning API, for claims' connections.
    let provisioning: ProvisioningResponder
    /// Device Defender: reports, security events, cloud-side metrics.
    let monitor: (any SecurityMonitor)?
    let defender: DefenderResponder
    /// Prometheus counters, when `hallmark serve` exports them.
    let metrics: FleetMetrics?
    private let state = Mutex(State())
    private let identities = Mutex<[String: ConnectionIdentity]>([:])
    private let generation = Atomic<UInt64>(0)
    /// Counts messages routed to shared subscriptions, to take each group's members in turn.
    private let shareTurn = Mutex<UInt64>(0)

    init(
        configuration: BrokerConfiguration, registry: any BrokerStore, trust: TrustStore, telemetry: TelemetryRecorder?,
        provisioner: (any FleetProvisioner)? = nil, monitor: (any SecurityMonitor)? = nil, metrics: FleetMetrics? = nil, logger: Logger
    ) {
        self.metrics = metrics
        self.configuration = configuration
        self.registry = registry
        self.trust = trust
        self.telemetry = telemetry
        self.logger = logger
        self.events = EventWriter(registry: registry, logger: logger)
        self.jobs = JobsResponder(registry: registry, logger: logger)
        self.provisioning = ProvisioningResponder(provisioner: provisioner)
        self.monitor = monitor
        self.defender = DefenderResponder(monitor: monitor)
    }

    static func sessionKey(tenant: String, clientID: String) -> String { tenant + "\u{0}" + clientID }

    // MARK: Identities

    /// The registry's view of a certificate if it is cached (no I/O: for the event loops).
    func cachedIdentity(fingerprint: String) -> ConnectionIdentity? {
        identities.withLock { $0[fingerprint] }
    }

    /// The registry's view of a certificate, read from the registry unless cached (until the
    /// registry changes). It reads SQLite: never call it on an event loop.
    func identity(fingerprint: String) throws -> ConnectionIdentity? {
        if let known = cachedIdentity(fingerprint: fingerprint) { return known }
        assert(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a registry read on an event loop")
        guard let identity = try registry.connectionIdentity(fingerprint: fingerprint) else { return nil }
        identities.withLock {
            if $0.count > 100_000 { $0.removeAll(keepingCapacity: true) }
            $0[fingerprint] = identity
        }
        return identity
    }

    /// How many times the registry's change feed has told of changes: a certificate's record read
    /// while it moved on may predate a change, and is read again.
    var registryGeneration: UInt64 { generation.load(ordering: .acquiring) }

    /// The registry changed: records read before are forgotten (bumped first, so that a read in
    /// flight is seen as stale).
    func registryChanged() {
        generation.add(1, ordering: .releasing)
        identities.withLock { $0.removeAll(keepingCapacity: true) }
    }

    // MARK: Sessions

    /// Opens or resumes the session of a client id, attaching a connection. A connection already
    /// attached to the session is returned so that it can be closed (session take-over).
    func openSession(
        tenant: String, clientID: String, cleanStart: Bool, handle: ConnectionHandle, authorizer: Authorizer, window: Int
    ) -> (session: Session, present: Bool, previous: ConnectionHandle?) {
        let key = Self.sessionKey(tenant: tenant, clientID: clientID)
        let (session, present): (Session, Bool) = state.withLock { state in
            if let existing = state.sessions[key] {
                if !cleanStart { return (existing, true) }
                for entry in existing.subscriptions.values { state.trees[tenant]?.remove(filter: entry.treeFilter, key: entry.treeKey) }
                state.subscriptionsChanged(tenant: tenant)
                existing.subscriptions.removeAll()
                existing.reset()
                return (existing, false)
            }
            let session = Session(key: key, tenant: tenant, clientID: clientID, maximumQueued: configuration.maximumQueuedMessages)
            state.sessions[key] = session
            return (session, false)
        }
        let previous = session.attach(handle, authorizer: authorizer, window: window)
        return (session, present, previous)
    }

    /// Ends a session for good: its subscriptions and queued messages go.
    func removeSession(_ session: Session) {
        state.withLock { state in
            guard state.sessions[session.key] === session else { return }
            for entry in session.subscriptions.values { state.trees[session.tenant]?.remove(filter: entry.treeFilter, key: entry.treeKey) }
            session.subscriptions.removeAll()
            state.sessions[session.key] = nil
            state.subscriptionsChanged(tenant: session.tenant)
        }
    }

    /// Removes a session when its expiry timer fires, unless a connection came back meanwhile.
    func expireSession(_ session: Session, generation: Int) {
        if session.isAway(since: generation) { removeSession(session) }
    }

    /// Every session with a live connection.
    func connectedSessions() -> [Session] {
        state.withLock { Array($0.sessions.values) }.filter(\.isConnected)
    }

    // MARK: Subscriptions

    /// Adds subscriptions; returns, per subscription, whether it is new, and queues the retained
    /// messages its retain handling asks for.
    func subscribe(_ session: Session, _ subscriptions: [Subscription], identifier: UInt32?, now: NIODeadline) {
        var retainedToSend: [(BrokerMessage, Subscription)] = []
        state.withLock { state in
            state.subscriptionsChanged(tenant: session.tenant)
            for subscription in subscriptions {
                let entry = SubscriptionEntry(options: subscription, identifier: identifier, sessionKey: session.key)
                let isNew = session.subscriptions.updateValue(entry, forKey: subscription.filter) == nil
                state.trees[session.tenant, default: SubscriptionTree()].insert(filter: entry.treeFilter, key: entry.treeKey, value: entry)
                // A shared subscription gets no retained messages (MQTT 5.0 §4.8.2).
                let send = switch subscription.retainHandling {
                case _ where entry.shared != nil: false
                case .sendOnSubscribe: true
                case .sendOnNewSubscription: isNew
                case .doNotSend: false
                }
                guard send, let retained = state.retained[session.tenant] else { continue }
                for (topic, message) in retained where Topic.matches(filter: subscription.filter, topic: topic) {
                    retainedToSend.append((message, subscription))
                }
            }
        }
        let authorizer = session.authorizer
        for (message, subscription) in retainedToSend where !message.isExpired(now) {
            guard authorizer?.decide(.receive, message.topic).isAllowed ?? false else { continue }
            session.enqueue(
                message, qos: min(message.qos, subscription.qos), retain: true,
                subscriptionIDs: identifier.map { [$0] } ?? [])
        }
    }

    /// Removes subscriptions; returns, per filter, whether it existed.
    func unsubscribe(_ session: Session, _ filters: [String]) -> [Bool] {
        state.withLock { state in
            state.subscriptionsChanged(tenant: session.tenant)
            return filters.map { filter in
                guard let entry = session.subscriptions.removeValue(forKey: filter) else { return false }
                state.trees[session.tenant]?.remove(filter: entry.treeFilter, key: entry.treeKey)
                return true
            }
        }
    }

    // MARK: Publishing

    /// What became of a published message.
    struct Delivery {
        /// How many sessions it was queued for.
        var sessions = 0
        /// Whether a subscriber's queue is filling up: the publisher should stop reading until it
        /// is woken (see ``Session/enqueue(_:qos:retain:subscriptionIDs:publisher:)``).
        var holdPublisher = false
    }

    /// Routes a message to every matching session of the tenant and keeps it if retained.
    /// - Parameter publisher: The publishing connection, held back by a congested subscriber.
    @discardableResult
    func publish(_ message: BrokerMessage, tenant: String, from publisher: ConnectionHandle? = nil) -> Delivery {
        var routes: [Route] = state.withLock { state in
            if message.retain {
                if message.payload.readableBytes == 0 {
                    state.retained[tenant]?[message.topic] = nil
                } else {
                    var kept = message
                    kept.publisher = nil
                    state.retained[tenant, default: [:]][message.topic] = kept
                }
            }
            if let known = state.routes[tenant]?[message.topic] { return known }
            var found: [Route] = []
            state.trees[tenant]?.forEachMatch(topic: message.topic) { _, entry in
                if let session = state.sessions[entry.sessionKey] { found.append(Route(session: session, entry: entry)) }
            }
            if state.routes[tenant]?.count ?? 0 >= Self.routeCacheLimit { state.routes[tenant] = nil }
            state.routes[tenant, default: [:]][message.topic] = found
            return found
        }
        if routes.contains(where: { $0.entry.shared != nil }) { routes = choosingOnePerShareGroup(routes) }
        if routes.count == 1, let route = routes.first {
            // The common case: one subscription matches.
            var delivery = Delivery()
            guard !(route.entry.options.noLocal && route.session.key == message.publisher) else { return delivery }
            deliver(message, to: route.session, qos: route.entry.options.qos, retainAsPublished: route.entry.options.retainAsPublished,
                    identifiers: route.entry.identifier.map { [$0] } ?? [], publisher: publisher, into: &delivery)
            return delivery
        }
        // A session with several matching subscriptions gets the message once, at the highest QoS,
        // with every subscription identifier (MQTT 5.0 §3.3.4).
        struct Target {
            var session: Session
            var qos: QoS
            var retainAsPublished: Bool
            var identifiers: [UInt32]
        }
        var targets: [ObjectIdentifier: Target] = [:]
        for route in routes {
            let options = route.entry.options
            if options.noLocal && route.session.key == message.publisher { continue }
            let id = ObjectIdentifier(route.session)
            if var target = targets[id] {
                target.qos = max(target.qos, options.qos)
                target.retainAsPublished = target.retainAsPublished || options.retainAsPublished
                if let identifier = route.entry.identifier { target.identifiers.append(identifier) }
                targets[id] = target
            } else {
                targets[id] = Target(
                    session: route.session, qos: options.qos, retainAsPublished: options.retainAsPublished,
                    identifiers: route.entry.identifier.map { [$0] } ?? [])
            }
        }
        var delivery = Delivery()
        for target in targets.values {
            deliver(message, to: target.session, qos: target.qos, retainAsPublished: target.retainAsPublished,
                    identifiers: target.identifiers, publisher: publisher, into: &delivery)
        }
        return delivery
    }

    /// The routes with each shared subscription's group reduced to one member: the next connected
    /// one in turn, or, when none is connected, the next in turn (its session queues the message).
    private func choosingOnePerShareGroup(_ routes: [Route]) -> [Route] {
        var chosen: [Route] = []
        var groups: [String: [Route]] = [:]
        for route in routes {
            if let shared = route.entry.shared {
                groups[shared.group + "\u{0}" + shared.filter, default: []].append(route)
            } else {
                chosen.append(route)
            }
        }
        let turn = shareTurn.withLock { turn in
            defer { turn &+= 1 }
            return turn
        }
        for members in groups.values {
            let start = Int(turn % UInt64(members.count))
            let order = members[start...] + members[..<start]
            chosen.append(order.first(where: { $0.session.isConnected }) ?? order.first!)
        }
        return chosen
    }

    /// Queues a message for one session, if the session's policies let it receive the topic
    /// (`iot:Receive` is checked per message, as AWS IoT does; a denied message is skipped).
    private func deliver(
        _ message: BrokerMessage, to session: Session, qos: QoS, retainAsPublished: Bool, identifiers: [UInt32],
        publisher: ConnectionHandle?, into delivery: inout Delivery
    ) {
        guard session.authorizer?.decide(.receive, message.topic).isAllowed ?? false else { return }
        let hold = session.enqueue(
            message, qos: min(message.qos, qos), retain: message.retain && retainAsPublished, subscriptionIDs: identifiers,
            publisher: publisher)
        delivery.sessions += 1
        delivery.holdPublisher = delivery.holdPublisher || hold
    }

    // MARK: Events

    /// Writes an event to the registry's log without holding up the caller (see ``EventWriter``),
    /// and counts, for Device Defender's cloud-side metrics, the connections and refused connections it tells of.
    func record(_ event: AuditEvent) {
        if let metrics, event.action == .mqttConnect {
            if event.decision == .allow { metrics.mqttConnectionsAccepted.increment() } else { metrics.refused(.mqttConnection, code: event.code) }
        }
        if let monitor, let thing = event.thing {
            switch (event.action, event.decision) {
            case (.mqttConnect, .allow):
                monitor.observe(tenant: event.tenant, thing: thing, .connectionAttempt(source: event.source))
            case (.mqttConnect, .refuse):
                monitor.observe(tenant: event.tenant, thing: thing, .connectionAttempt(source: event.source))
                monitor.observe(tenant: event.tenant, thing: thing, .authorizationFailure)
            default:
                break
            }
        }
        events.record(event)
    }

    /// Raises `clone_suspected` for a connection's identity; the registry applies the product's
    /// response (quarantine ends every session of the device within a second, through the
    /// registry watcher).
    func suspectClone(_ identity: ConnectionIdentity, _ suspicion: CloneWatch.Suspicion) {
        let registry = self.registry
        let logger = self.logger
        logger.warning("clone suspected", metadata: ["thing": "\(identity.thingName)", "tenant": "\(identity.tenant)"])
        Task {
            do {
                try await registry.reportSuspectedClone(
                    tenant: identity.tenant, udid: identity.udid, thing: identity.thingName, serial: identity.serial,
                    detail: suspicion.detail, now: Date())
            } catch {
                logger.error("clone alarm not written: \(error)")
            }
        }
    }
}

extension Broker: AlarmPublisher {
    /// Alarms go to the tenant's subscribers of `$hallmark/alarms/…` (QoS 1, not retained).
    func publishAlarm(tenant: String, topic: String, payload: [UInt8]) {
        publish(BrokerMessage(topic: topic, payload: ByteBuffer(bytes: payload), qos: .atLeastOnce), tenant: tenant)
    }
}
