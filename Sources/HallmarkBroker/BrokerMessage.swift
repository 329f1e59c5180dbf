import MQTTCore
import NIOCore

/// An application message on its way through the broker.
struct BrokerMessage: Sendable {
    var topic: String
    var payload: ByteBuffer
    var qos: QoS
    var retain: Bool
    /// The properties forwarded to subscribers (MQTT 5.0 §3.3.2.3): payload format, content
    /// type, response topic, correlation data and user properties. Expiry is kept in ``expiresAt``.
    var properties: Properties
    /// The publishing session's key (for no-local), nil for wills and the broker's own messages.
    var publisher: String?
    var expiresAt: NIODeadline?

    init(publish: PublishPacket, topic: String, publisher: String?, now: NIODeadline) {
        self.topic = topic
        self.payload = publish.payload
        self.qos = publish.qos
        self.retain = publish.retain
        self.properties = publish.properties.forwardedToSubscribers
        self.publisher = publisher
        self.expiresAt = publish.properties.messageExpiryInterval.map { now + .seconds(Int64($0)) }
    }

    init(will: Will, publisher: String?, now: NIODeadline) {
        self.init(
            publish: PublishPacket(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: will.properties),
            topic: will.topic, publisher: publisher, now: now)
    }

    init(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = Properties()
        self.publisher = nil
        self.expiresAt = nil
    }

    func isExpired(_ now: NIODeadline) -> Bool { expiresAt.map { $0 <= now } ?? false }

    /// The PUBLISH a subscriber receives.
    func packet(qos: QoS, retain: Bool, packetID: UInt16?, subscriptionIDs: [UInt32], dup: Bool, now: NIODeadline) -> PublishPacket {
        var properties = self.properties
        if !subscriptionIDs.isEmpty { properties.subscriptionIdentifiers = subscriptionIDs }
        if let expiresAt {
            let remaining = max(0, (expiresAt - now).nanoseconds / 1_000_000_000)
            properties.messageExpiryInterval = UInt32(clamping: remaining)
        }
        return PublishPacket(topic: topic, payload: payload, qos: qos, retain: retain, dup: dup, packetID: packetID, properties: properties)
    }
}

/// A subscription as the broker keeps it.
struct SubscriptionEntry: Sendable {
    /// The subscription as the client sent it (its filter, for a shared one, `$share/{group}/…`).
    var options: Subscription
    var identifier: UInt32?
    /// The session that subscribed.
    var sessionKey: String
    /// For a shared subscription, its group and the filter it shares; nil for an ordinary one.
    var shared: (group: String, filter: String)?

    init(options: Subscription, identifier: UInt32?, sessionKey: String) {
        self.options = options
        self.identifier = identifier
        self.sessionKey = sessionKey
        self.shared = Topic.sharedSubscription(options.filter)
    }

    /// Where the subscription sits in the tenant's subscription tree: under the filter it matches
    /// with, keyed by its session (a shared one by its group too, so that a session may hold both
    /// `f` and `$share/g/f`).
    var treeFilter: String { shared?.filter ?? options.filter }
    var treeKey: String { shared.map { "$share/\($0.group)\u{0}" + sessionKey } ?? sessionKey }
}
