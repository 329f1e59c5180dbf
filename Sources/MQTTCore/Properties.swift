import NIOCore

/// A name/value pair carried in MQTT 5 packets and passed through unchanged.
public struct UserProperty: Hashable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The MQTT 5 properties of a packet (MQTT 5.0 §2.2.2). Absent properties are nil; MQTT 3.1.1
/// packets have none.
@dynamicMemberLookup
public struct Properties: Hashable, Sendable {
    /// The properties themselves; reached as `properties.reasonString` and so on.
    public struct Fields: Hashable, Sendable {
        public var payloadFormatIndicator: UInt8?
        public var messageExpiryInterval: UInt32?
        public var contentType: String?
        public var responseTopic: String?
        public var correlationData: [UInt8]?
        public var subscriptionIdentifiers: [UInt32] = []
        public var sessionExpiryInterval: UInt32?
        public var assignedClientIdentifier: String?
        public var serverKeepAlive: UInt16?
        public var authenticationMethod: String?
        public var authenticationData: [UInt8]?
        public var requestProblemInformation: UInt8?
        public var willDelayInterval: UInt32?
        public var requestResponseInformation: UInt8?
        public var responseInformation: String?
        public var serverReference: String?
        public var reasonString: String?
        public var receiveMaximum: UInt16?
        public var topicAliasMaximum: UInt16?
        public var topicAlias: UInt16?
        public var maximumQoS: UInt8?
        public var retainAvailable: UInt8?
        public var userProperties: [UserProperty] = []
        public var maximumPacketSize: UInt32?
        public var wildcardSubscriptionAvailable: UInt8?
        public var subscriptionIdentifierAvailable: UInt8?
        public var sharedSubscriptionAvailable: UInt8?


        public init() {}
    }

    /// Copy-on-write storage: most packets carry no properties, and a packet without any is then
    /// one nil pointer to copy instead of some thirty fields.
    /// (Inlinable, with the subscript below, so that a property named in the caller compiles to a
    /// field access rather than a key-path projection at run time.)
    @usableFromInline
    final class Storage: @unchecked Sendable {
        @usableFromInline var fields: Fields
        @usableFromInline init(_ fields: Fields) { self.fields = fields }
    }

    @usableFromInline var storage: Storage?
    @usableFromInline static let none = Fields()

    public init() {}

    init(_ fields: Fields) {
        storage = fields == Self.none ? nil : Storage(fields)
    }

    public var fields: Fields { storage?.fields ?? Self.none }

    @inlinable
    public subscript<T>(dynamicMember keyPath: WritableKeyPath<Fields, T>) -> T {
        get { storage?.fields[keyPath: keyPath] ?? Self.none[keyPath: keyPath] }
        set {
            if storage == nil {
                storage = Storage(Self.none)
            } else if !isKnownUniquelyReferenced(&storage) {
                storage = Storage(storage!.fields)
            }
            storage!.fields[keyPath: keyPath] = newValue
        }
    }

    public var isEmpty: Bool { storage.map { $0.fields == Self.none } ?? true }

    /// The properties a broker forwards with an application message to its subscribers
    /// (MQTT 5.0 §3.3.2.3): payload format, content type, response topic, correlation data and
    /// user properties. Message expiry, topic alias and subscription identifiers are the broker's
    /// to set per delivery.
    public var forwardedToSubscribers: Properties {
        guard let fields = storage?.fields else { return Properties() }
        var forwarded = Fields()
        forwarded.payloadFormatIndicator = fields.payloadFormatIndicator
        forwarded.contentType = fields.contentType
        forwarded.responseTopic = fields.responseTopic
        forwarded.correlationData = fields.correlationData
        forwarded.userProperties = fields.userProperties
        return Properties(forwarded)
    }

    public static func == (lhs: Properties, rhs: Properties) -> Bool { lhs.fields == rhs.fields }
    public func hash(into hasher: inout Hasher) { hasher.combine(fields) }
}

extension Properties {
    fileprivate enum ID: UInt8 {
        case payloadFormatIndicator = 0x01, messageExpiryInterval = 0x02, contentType = 0x03
        case responseTopic = 0x08, correlationData = 0x09, subscriptionIdentifier = 0x0B
        case sessionExpiryInterval = 0x11, assignedClientIdentifier = 0x12, serverKeepAlive = 0x13
        case authenticationMethod = 0x15, authenticationData = 0x16, requestProblemInformation = 0x17
        case willDelayInterval = 0x18, requestResponseInformation = 0x19, responseInformation = 0x1A
        case serverReference = 0x1C, reasonString = 0x1F, receiveMaximum = 0x21, topicAliasMaximum = 0x22
        case topicAlias = 0x23, maximumQoS = 0x24, retainAvailable = 0x25, userProperty = 0x26
        case maximumPacketSize = 0x27, wildcardSubscriptionAvailable = 0x28
        case subscriptionIdentifierAvailable = 0x29, sharedSubscriptionAvailable = 0x2A
    }

    /// Reads a property block (length prefix included). Duplicates of single-valued properties,
    /// unknown identifiers and out-of-range values are malformed.
    static func read(from buffer: inout ByteBuffer) throws(MQTTProtocolError) -> Properties {
        let length = try buffer.readMQTTVariableInteger()
        guard var block = buffer.readSlice(length: Int(length)) else { throw .malformed("property length past the packet") }
        var p = Fields()
        var seen: Set<UInt8> = []
        while block.readableBytes > 0 {
            let raw = try block.readMQTTVariableInteger()
            guard raw <= 0x7F, let id = ID(rawValue: UInt8(raw)) else {
                throw .malformed("unknown property identifier \(raw)")
            }
            if id != .userProperty && id != .subscriptionIdentifier {
                guard seen.insert(id.rawValue).inserted else { throw .protocolError("property \(id) given twice") }
            }
            switch id {
            case .payloadFormatIndicator:
                p.payloadFormatIndicator = try block.readMQTTByte()
                guard p.payloadFormatIndicator! <= 1 else { throw .protocolError("payload format indicator > 1") }
            case .messageExpiryInterval: p.messageExpiryInterval = try block.readMQTTUInt32()
            case .contentType: p.contentType = try block.readMQTTString()
            case .responseTopic: p.responseTopic = try block.readMQTTString()
            case .correlationData: p.correlationData = try block.readMQTTBinary()
            case .subscriptionIdentifier:
                let value = try block.readMQTTVariableInteger()
                guard value != 0 else { throw .protocolError("subscription identifier 0") }
                p.subscriptionIdentifiers.append(value)
            case .sessionExpiryInterval: p.sessionExpiryInterval = try block.readMQTTUInt32()
            case .assignedClientIdentifier: p.assignedClientIdentifier = try block.readMQTTString()
            case .serverKeepAlive: p.serverKeepAlive = try block.readMQTTUInt16()
            case .authenticationMethod: p.authenticationMethod = try block.readMQTTString()
            case .authenticationData: p.authenticationData = try block.readMQTTBinary()
            case .requestProblemInformation:
                p.requestProblemInformation = try block.readMQTTByte()
                guard p.requestProblemInformation! <= 1 else { throw .protocolError("request problem information > 1") }
            case .willDelayInterval: p.willDelayInterval = try block.readMQTTUInt32()
            case .requestResponseInformation:
                p.requestResponseInformation = try block.readMQTTByte()
                guard p.requestResponseInformation! <= 1 else { throw .protocolError("request response information > 1") }
            case .responseInformation: p.responseInformation = try block.readMQTTString()
            case .serverReference: p.serverReference = try block.readMQTTString()
            case .reasonString: p.reasonString = try block.readMQTTString()
            case .receiveMaximum:
                p.receiveMaximum = try block.readMQTTUInt16()
                guard p.receiveMaximum! > 0 else { throw .protocolError("receive maximum 0") }
            case .topicAliasMaximum: p.topicAliasMaximum = try block.readMQTTUInt16()
            case .topicAlias: p.topicAlias = try block.readMQTTUInt16()
            case .maximumQoS: p.maximumQoS = try block.readMQTTByte()
            case .retainAvailable: p.retainAvailable = try block.readMQTTByte()
            case .userProperty:
                p.userProperties.append(UserProperty(try block.readMQTTString(), try block.readMQTTString()))
            case .maximumPacketSize:
                p.maximumPacketSize = try block.readMQTTUInt32()
                guard p.maximumPacketSize! > 0 else { throw .protocolError("maximum packet size 0") }
            case .wildcardSubscriptionAvailable: p.wildcardSubscriptionAvailable = try block.readMQTTByte()
            case .subscriptionIdentifierAvailable: p.subscriptionIdentifierAvailable = try block.readMQTTByte()
            case .sharedSubscriptionAvailable: p.sharedSubscriptionAvailable = try block.readMQTTByte()
            }
        }
        return Properties(p)
    }

    /// Writes the property block with its length prefix.
    func write(to buffer: inout ByteBuffer) {
        guard let storage else {
            buffer.writeInteger(UInt8(0))
            return
        }
        storage.fields.write(to: &buffer)
    }
}

extension Properties.Fields {
    fileprivate typealias ID = Properties.ID

    fileprivate func write(to buffer: inout ByteBuffer) {
        var block = ByteBuffer()
        func byte(_ id: ID, _ v: UInt8?) { if let v { block.writeInteger(id.rawValue); block.writeInteger(v) } }
        func u16(_ id: ID, _ v: UInt16?) { if let v { block.writeInteger(id.rawValue); block.writeInteger(v) } }
        func u32(_ id: ID, _ v: UInt32?) { if let v { block.writeInteger(id.rawValue); block.writeInteger(v) } }
        func string(_ id: ID, _ v: String?) { if let v { block.writeInteger(id.rawValue); block.writeMQTTString(v) } }
        func binary(_ id: ID, _ v: [UInt8]?) { if let v { block.writeInteger(id.rawValue); block.writeMQTTBinary(v) } }
        byte(.payloadFormatIndicator, payloadFormatIndicator)
        u32(.messageExpiryInterval, messageExpiryInterval)
        string(.contentType, contentType)
        string(.responseTopic, responseTopic)
        binary(.correlationData, correlationData)
        for id in subscriptionIdentifiers {
            block.writeInteger(ID.subscriptionIdentifier.rawValue)
            block.writeMQTTVariableInteger(id)
        }
        u32(.sessionExpiryInterval, sessionExpiryInterval)
        string(.assignedClientIdentifier, assignedClientIdentifier)
        u16(.serverKeepAlive, serverKeepAlive)
        string(.authenticationMethod, authenticationMethod)
        binary(.authenticationData, authenticationData)
        byte(.requestProblemInformation, requestProblemInformation)
        u32(.willDelayInterval, willDelayInterval)
        byte(.requestResponseInformation, requestResponseInformation)
        string(.responseInformation, responseInformation)
        string(.serverReference, serverReference)
        string(.reasonString, reasonString)
        u16(.receiveMaximum, receiveMaximum)
        u16(.topicAliasMaximum, topicAliasMaximum)
        u16(.topicAlias, topicAlias)
        byte(.maximumQoS, maximumQoS)
        byte(.retainAvailable, retainAvailable)
        for property in userProperties {
            block.writeInteger(ID.userProperty.rawValue)
            block.writeMQTTString(property.name)
            block.writeMQTTString(property.value)
        }
        u32(.maximumPacketSize, maximumPacketSize)
        byte(.wildcardSubscriptionAvailable, wildcardSubscriptionAvailable)
        byte(.subscriptionIdentifierAvailable, subscriptionIdentifierAvailable)
        byte(.sharedSubscriptionAvailable, sharedSubscriptionAvailable)
        buffer.writeMQTTVariableInteger(UInt32(block.readableBytes))
        buffer.writeBuffer(&block)
    }
}
