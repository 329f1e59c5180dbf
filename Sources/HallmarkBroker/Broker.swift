import HallmarkCore
import HallmarkStore
import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore

import Foundation

/// The broker's shared state: sessions, subscriptions and retained messages, each kept per tenant
/// so that one tenant's clients never see another's topics or client ids.
final class Broker: Sendable {
    struct State {
        var sessions: [String: Session] = [:]
        var trees: [String: SubscriptionTree<SubscriptionEntry>] = [:]
        var retained: [String: [String: BrokerMessage]] = [:]
    }

    let configuration: BrokerConfiguration
    let registry: Registry
    let trust: TrustStore
    let telemetry: TelemetryRecorder?
    let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let identities = NIOLockedValueBox<[String: ConnectionIdentity]>([:])

    init(configuration: BrokerConfiguration, registry: Registry, trust: TrustStore, telemetry: TelemetryRecorder?, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.trust = trust
        self.telemetry = telemetry
        self.logger = logger
    }

    static func sessionKey(tenant: String, clientID: String) -> String { tenant + "\u{0}" + clientID }

    // MARK: Identities

    /// The registry's view of a certificate, cached until the registry changes.
    func identity(fingerprint: String) throws -> ConnectionIdentity? {
        if let known = identities.withLockedValue({ $0[fingerprint] }) { return known }
        guard let identity = try registry.connectionIdentity(fingerprint: fingerprint) else { return nil }
        identities.withLockedValue {
            if $0.count > 100_000 { $0.removeAll(keepingCapacity: true) }
            $0[fingerprint] = identity
        }
        return identity
    }

    func forgetIdentities() { identities.withLockedValue { $0.removeAll(keepingCapacity: true) } }

    // MARK: Sessions

    /// Opens or resumes the session of a client id, attaching a connection. A connection already
    /// attached to the session is returned so that it can be closed (session take-over).
    func openSession(
        tenant: String, clientID: String, cleanStart: Bool, handle: ConnectionHandle, authorizer: Authorizer, window: Int
    ) -> (session: Session, present: Bool, previous: ConnectionHandle?) {
        let key = Self.sessionKey(tenant: tenant, clientID: clientID)
        let (session, present): (Session, Bool) = state.withLockedValue { state in
            if let existing = state.sessions[key] {
                if !cleanStart { return (existing, true) }
                for filter in existing.subscriptions.keys { state.trees[tenant]?.remove(filter: filter, key: key) }
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
        state.withLockedValue { state in
            guard state.sessions[session.key] === session else { return }
            for filter in session.subscriptions.keys { state.trees[session.tenant]?.remove(filter: filter, key: session.key) }
            session.subscriptions.removeAll()
            state.sessions[session.key] = nil
        }
    }

    /// Removes a session when its expiry timer fires, unless a connection came back meanwhile.
    func expireSession(_ session: Session, generation: Int) {
        if session.isAway(since: generation) { removeSession(session) }
    }

    /// Every session with a live connection.
    func connectedSessions() -> [Session] {
        state.withLockedValue { Array($0.sessions.values) }.filter(\.isConnected)
    }

    // MARK: Subscriptions

    /// Adds subscriptions; returns, per subscription, whether it is new, and queues the retained
    /// messages its retain handling asks for.
    func subscribe(_ session: Session, _ subscriptions: [Subscription], identifier: UInt32?, now: NIODeadline) {
        var retainedToSend: [(BrokerMessage, Subscription)] = []
        state.withLockedValue { state in
            for subscription in subscriptions {
                let entry = SubscriptionEntry(options: subscription, identifier: identifier)
                let isNew = session.subscriptions.updateValue(entry, forKey: subscription.filter) == nil
                state.trees[session.tenant, default: SubscriptionTree()].insert(filter: subscription.filter, key: session.key, value: entry)
                let send = switch subscription.retainHandling {
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
        state.withLockedValue { state in
            filters.map { filter in
                guard session.subscriptions.removeValue(forKey: filter) != nil else { return false }
                state.trees[session.tenant]?.remove(filter: filter, key: session.key)
                return true
            }
        }
    }

    // MARK: Publishing

    /// Routes a message to every matching session of the tenant and keeps it if retained.
    /// Returns how many sessions it was queued for.
    @discardableResult
    func publish(_ message: BrokerMessage, tenant: String) -> Int {
        struct Target {
            var session: Session
            var qos: QoS
            var retainAsPublished: Bool
            var identifiers: [UInt32]
        }
        var targets: [String: Target] = [:]
        state.withLockedValue { state in
            if message.retain {
                if message.payload.readableBytes == 0 {
                    state.retained[tenant]?[message.topic] = nil
                } else {
                    var kept = message
                    kept.publisher = nil
                    state.retained[tenant, default: [:]][message.topic] = kept
                }
            }
            state.trees[tenant]?.forEachMatch(topic: message.topic) { key, entry in
                if entry.options.noLocal && key == message.publisher { return }
                guard let session = state.sessions[key] else { return }
                if var target = targets[key] {
                    target.qos = max(target.qos, entry.options.qos)
                    target.retainAsPublished = target.retainAsPublished || entry.options.retainAsPublished
                    if let id = entry.identifier { target.identifiers.append(id) }
                    targets[key] = target
                } else {
                    targets[key] = Target(
                        session: session, qos: entry.options.qos, retainAsPublished: entry.options.retainAsPublished,
                        identifiers: entry.identifier.map { [$0] } ?? [])
                }
            }
        }
        var delivered = 0
        for target in targets.values {
            // iot:Receive is checked per message, as AWS IoT does; a denied message is skipped.
            guard target.session.authorizer?.decide(.receive, message.topic).isAllowed ?? false else { continue }
            target.session.enqueue(
                message, qos: min(message.qos, target.qos), retain: message.retain && target.retainAsPublished,
                subscriptionIDs: target.identifiers)
            delivered += 1
        }
        return delivered
    }

    // MARK: Events

    /// Writes an event to the registry's log without holding up the caller.
    func record(_ event: AuditEvent) {
        let registry = self.registry
        let logger = self.logger
        Task {
            do { try await registry.append(event) } catch { logger.error("event not written: \(error)") }
        }
    }
}
