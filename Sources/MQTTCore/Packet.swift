import NIOCore

/// The protocol level a client speaks.
public enum MQTTVersion: UInt8, Sendable, Hashable {
    case v311 = 4
    case v5 = 5
}

/// Quality of service of a message.
public enum QoS: UInt8, Sendable, Hashable, Comparable {
    case atMostOnce = 0, atLeastOnce = 1, exactlyOnce = 2
    public static func < (a: QoS, b: QoS) -> Bool { a.rawValue < b.rawValue }
}

/// A will message, published by the server when a connection ends without DISCONNECT.
public struct Will: Sendable, Hashable {
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var properties: Properties
    public init(topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: Properties = .init()) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }
}

public struct ConnectPacket: Sendable, Hashable {
    public var version: MQTTVersion
    public var clientID: String
    public var cleanStart: Bool
    public var keepAlive: UInt16
    public var username: String?
    public var password: [UInt8]?
    public var will: Will?
    public var properties: Properties
    public init(
        version: MQTTVersion, clientID: String, cleanStart: Bool = true, keepAlive: UInt16 = 60,
        username: String? = nil, password: [UInt8]? = nil, will: Will? = nil, properties: Properties = .init()
    ) {
        self.version = version
        self.clientID = clientID
        self.cleanStart = cleanStart
        self.keepAlive = keepAlive
        self.username = username
        self.password = password
        self.will = will
        self.properties = properties
    }
}

public struct ConnAckPacket: Sendable, Hashable {
    public var sessionPresent: Bool
    public var reason: ReasonCode
    public var properties: Properties
    public init(sessionPresent: Bool = false, reason: ReasonCode = .success, properties: Properties = .init()) {
        self.sessionPresent = sessionPresent
        self.reason = reason
        self.properties = properties
    }
}

public struct PublishPacket: Sendable, Hashable {
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var dup: Bool
    public var packetID: UInt16?
    public var properties: Properties
    public init(
        topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false, dup: Bool = false,
        packetID: UInt16? = nil, properties: Properties = .init()
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
        self.properties = properties
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP.
public struct AckPacket: Sendable, Hashable {
    public var packetID: UInt16
    public var reason: ReasonCode
    public var properties: Properties
    public init(packetID: UInt16, reason: ReasonCode = .success, properties: Properties = .init()) {
        self.packetID = packetID
        self.reason = reason
        self.properties = properties
    }
}

/// What to do with retained messages when a subscription is made (MQTT 5.0 §3.8.3.1).
public enum RetainHandling: UInt8, Sendable, Hashable {
    case sendOnSubscribe = 0, sendOnNewSubscription = 1, doNotSend = 2
}

public struct Subscription: Sendable, Hashable {
    public var filter: String
    public var qos: QoS
    public var noLocal: Bool
    public var retainAsPublished: Bool
    public var retainHandling: RetainHandling
    public init(
        filter: String, qos: QoS, noLocal: Bool = false, retainAsPublished: Bool = false,
        retainHandling: RetainHandling = .sendOnSubscribe
    ) {
        self.filter = filter
        self.qos = qos
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
    }
}

public struct SubscribePacket: Sendable, Hashable {
    public var packetID: UInt16
    public var subscriptions: [Subscription]
    public var properties: Properties
    public init(packetID: UInt16, subscriptions: [Subscription], properties: Properties = .init()) {
        self.packetID = packetID
        self.subscriptions = subscriptions
        self.properties = properties
    }
}

/// SUBACK and UNSUBACK: one reason per filter.
public struct SubAckPacket: Sendable, Hashable {
    public var packetID: UInt16
    public var reasons: [ReasonCode]
    public var properties: Properties
    public init(packetID: UInt16, reasons: [ReasonCode], properties: Properties = .init()) {
        self.packetID = packetID
        self.reasons = reasons
        self.properties = properties
    }
}

public struct UnsubscribePacket: Sendable, Hashable {
    public var packetID: UInt16
    public var filters: [String]
    public var properties: Properties
    public init(packetID: UInt16, filters: [String], properties: Properties = .init()) {
        self.packetID = packetID
        self.filters = filters
        self.properties = properties
    }
}

/// DISCONNECT and AUTH.
public struct ReasonPacket: Sendable, Hashable {
    public var reason: ReasonCode
    public var properties: Properties
    public init(reason: ReasonCode = .success, properties: Properties = .init()) {
        self.reason = reason
        self.properties = properties
    }
}

/// An MQTT control packet.
public enum Packet: Sendable, Hashable {
    case connect(ConnectPacket)
    case connack(ConnAckPacket)
    case publish(PublishPacket)
    case puback(AckPacket)
    case pubrec(AckPacket)
    case pubrel(AckPacket)
    case pubcomp(AckPacket)
    case subscribe(SubscribePacket)
    case suback(SubAckPacket)
    case unsubscribe(UnsubscribePacket)
    case unsuback(SubAckPacket)
    case pingreq
    case pingresp
    case disconnect(ReasonPacket)
    case auth(ReasonPacket)

    /// The control packet type (MQTT 5.0 §2.1.2).
    public var typeCode: UInt8 {
        switch self {
        case .connect: 1
        case .connack: 2
        case .publish: 3
        case .puback: 4
        case .pubrec: 5
        case .pubrel: 6
        case .pubcomp: 7
        case .subscribe: 8
        case .suback: 9
        case .unsubscribe: 10
        case .unsuback: 11
        case .pingreq: 12
        case .pingresp: 13
        case .disconnect: 14
        case .auth: 15
        }
    }
}
