import NIOCore

extension Packet {
    /// Decodes one packet's body, given its fixed-header type and flags.
    /// - Parameter version: The connection's protocol level; nil until CONNECT has been read
    ///   (CONNECT carries its own).
    public static func decode(
        type: UInt8, flags: UInt8, body: inout ByteBuffer, version: MQTTVersion?
    ) throws(MQTTProtocolError) -> Packet {
        if type == 1 { return .connect(try decodeConnect(flags: flags, body: &body)) }
        guard let version else { throw .protocolError("the first packet must be CONNECT") }
        let v5 = version == .v5
        func requireFlags(_ expected: UInt8) throws(MQTTProtocolError) {
            guard flags == expected else { throw .malformed("reserved fixed-header flags of packet type \(type)") }
        }
        let packet: Packet
        switch type {
        case 2:
            try requireFlags(0)
            let ackFlags = try body.readMQTTByte()
            guard ackFlags & 0xFE == 0 else { throw .malformed("CONNACK reserved flags") }
            let code = try body.readMQTTByte()
            let properties = v5 ? try Properties.read(from: &body) : Properties()
            let reason: ReasonCode
            if v5 {
                reason = ReasonCode(rawValue: code)
            } else {
                reason = switch code {
                case 0: .success
                case 1: .unsupportedProtocolVersion
                case 2: .clientIdentifierNotValid
                case 3: .serverUnavailable
                case 4: .badUserNameOrPassword
                default: .notAuthorized
                }
            }
            packet = .connack(ConnAckPacket(sessionPresent: ackFlags & 1 == 1, reason: reason, properties: properties))
        case 3:
            packet = .publish(try decodePublish(flags: flags, body: &body, v5: v5))
        case 4, 5, 6, 7:
            try requireFlags(type == 6 ? 0b0010 : 0)
            let id = try body.readMQTTUInt16()
            var reason = ReasonCode.success
            var properties = Properties()
            if v5, body.readableBytes > 0 {
                reason = ReasonCode(rawValue: try body.readMQTTByte())
                if body.readableBytes > 0 { properties = try Properties.read(from: &body) }
            }
            let ack = AckPacket(packetID: id, reason: reason, properties: properties)
            packet = switch type {
            case 4: .puback(ack)
            case 5: .pubrec(ack)
            case 6: .pubrel(ack)
            default: .pubcomp(ack)
            }
        case 8:
            try requireFlags(0b0010)
            let id = try body.readMQTTUInt16()
            guard id != 0 else { throw .protocolError("SUBSCRIBE packet identifier 0") }
            let properties = v5 ? try Properties.read(from: &body) : Properties()
            var subscriptions: [Subscription] = []
            while body.readableBytes > 0 {
                let filter = try body.readMQTTString()
                let options = try body.readMQTTByte()
                guard let qos = QoS(rawValue: options & 0x03) else { throw .malformed("subscription QoS 3") }
                if v5 {
                    guard options & 0xC0 == 0 else { throw .malformed("subscription options reserved bits") }
                    guard let handling = RetainHandling(rawValue: (options >> 4) & 0x03) else {
                        throw .protocolError("retain handling 3")
                    }
                    subscriptions.append(
                        Subscription(
                            filter: filter, qos: qos, noLocal: options & 0x04 != 0,
                            retainAsPublished: options & 0x08 != 0, retainHandling: handling))
                } else {
                    guard options & 0xFC == 0 else { throw .malformed("subscription options reserved bits") }
                    subscriptions.append(Subscription(filter: filter, qos: qos))
                }
            }
            guard !subscriptions.isEmpty else { throw .protocolError("SUBSCRIBE without a topic filter") }
            packet = .subscribe(SubscribePacket(packetID: id, subscriptions: subscriptions, properties: properties))
        case 9, 11:
            try requireFlags(0)
            let id = try body.readMQTTUInt16()
            let properties = v5 ? try Properties.read(from: &body) : Properties()
            var reasons: [ReasonCode] = []
            while body.readableBytes > 0 { reasons.append(ReasonCode(rawValue: try body.readMQTTByte())) }
            if !v5 {
                // 3.1.1: a SUBACK's return codes are 0, 1, 2 or 0x80 (§3.9.3); an UNSUBACK has none (§3.11.1).
                guard type == 9 || reasons.isEmpty else { throw .malformed("UNSUBACK with a payload in MQTT 3.1.1") }
                guard reasons.allSatisfy({ $0.rawValue <= 2 || $0.rawValue == 0x80 }) else {
                    throw .malformed("SUBACK return code other than 0, 1, 2 or 0x80 in MQTT 3.1.1")
                }
            }
            let ack = SubAckPacket(packetID: id, reasons: reasons, properties: properties)
            packet = type == 9 ? .suback(ack) : .unsuback(ack)
        case 10:
            try requireFlags(0b0010)
            let id = try body.readMQTTUInt16()
            guard id != 0 else { throw .protocolError("UNSUBSCRIBE packet identifier 0") }
            let properties = v5 ? try Properties.read(from: &body) : Properties()
            var filters: [String] = []
            while body.readableBytes > 0 { filters.append(try body.readMQTTString()) }
            guard !filters.isEmpty else { throw .protocolError("UNSUBSCRIBE without a topic filter") }
            packet = .unsubscribe(UnsubscribePacket(packetID: id, filters: filters, properties: properties))
        case 12, 13:
            try requireFlags(0)
            packet = type == 12 ? .pingreq : .pingresp
        case 14, 15:
            try requireFlags(0)
            guard v5 || type == 14 else { throw .malformed("AUTH in MQTT 3.1.1") }
            var reason = ReasonCode.success
            var properties = Properties()
            if v5, body.readableBytes > 0 {
                reason = ReasonCode(rawValue: try body.readMQTTByte())
                if body.readableBytes > 0 { properties = try Properties.read(from: &body) }
            }
            let value = ReasonPacket(reason: reason, properties: properties)
            packet = type == 14 ? .disconnect(value) : .auth(value)
        default:
            throw .malformed("reserved packet type \(type)")
        }
        guard body.readableBytes == 0 else { throw .malformed("bytes after the end of packet type \(type)") }
        return packet
    }

    private static func decodePublish(flags: UInt8, body: inout ByteBuffer, v5: Bool) throws(MQTTProtocolError) -> PublishPacket {
        guard let qos = QoS(rawValue: (flags >> 1) & 0x03) else { throw .malformed("PUBLISH with QoS 3") }
        let dup = flags & 0x08 != 0
        guard qos != .atMostOnce || !dup else { throw .malformed("DUP set on a QoS 0 PUBLISH") }
        let topic = try body.readMQTTString()
        guard !topic.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }) else {
            throw .init(.topicNameInvalid, "wildcard in a PUBLISH topic")
        }
        var packetID: UInt16?
        if qos != .atMostOnce {
            packetID = try body.readMQTTUInt16()
            guard packetID != 0 else { throw .protocolError("PUBLISH packet identifier 0") }
        }
        let properties = v5 ? try Properties.read(from: &body) : Properties()
        if topic.isEmpty && properties.topicAlias == nil { throw .init(.topicNameInvalid, "empty PUBLISH topic") }
        let payload = body.readSlice(length: body.readableBytes)!
        return PublishPacket(
            topic: topic, payload: payload, qos: qos, retain: flags & 1 != 0, dup: dup, packetID: packetID,
            properties: properties)
    }

    private static func decodeConnect(flags: UInt8, body: inout ByteBuffer) throws(MQTTProtocolError) -> ConnectPacket {
        guard flags == 0 else { throw .malformed("CONNECT fixed-header flags") }
        let name = try body.readMQTTString()
        let level = try body.readMQTTByte()
        guard name == "MQTT" || name == "MQIsdp" else { throw .protocolError("protocol name \(name)") }
        guard name == "MQTT", let version = MQTTVersion(rawValue: level) else {
            throw .init(.unsupportedProtocolVersion, "protocol level \(level) (Hallmark speaks 4 = 3.1.1 and 5)")
        }
        let connectFlags = try body.readMQTTByte()
        guard connectFlags & 0x01 == 0 else { throw .malformed("CONNECT reserved flag set") }
        let keepAlive = try body.readMQTTUInt16()
        let properties = version == .v5 ? try Properties.read(from: &body) : Properties()
        let clientID = try body.readMQTTString()
        var will: Will?
        let willFlag = connectFlags & 0x04 != 0
        let willQoSBits = (connectFlags >> 3) & 0x03
        let willRetain = connectFlags & 0x20 != 0
        if willFlag {
            guard let qos = QoS(rawValue: willQoSBits) else { throw .malformed("will QoS 3") }
            let willProperties = version == .v5 ? try Properties.read(from: &body) : Properties()
            let topic = try body.readMQTTString()
            guard !topic.isEmpty, !topic.contains("+"), !topic.contains("#") else {
                throw .init(.topicNameInvalid, "will topic is empty or has a wildcard")
            }
            let payload = try body.readMQTTBinary()
            will = Will(
                topic: topic, payload: ByteBuffer(bytes: payload), qos: qos, retain: willRetain,
                properties: willProperties)
        } else if willQoSBits != 0 || willRetain {
            throw .malformed("will QoS or retain set without a will")
        }
        let hasUser = connectFlags & 0x80 != 0
        let hasPassword = connectFlags & 0x40 != 0
        if version == .v311 && hasPassword && !hasUser { throw .malformed("password without user name") }
        let username = hasUser ? try body.readMQTTString() : nil
        let password = hasPassword ? try body.readMQTTBinary() : nil
        guard body.readableBytes == 0 else { throw .malformed("bytes after the end of CONNECT") }
        return ConnectPacket(
            version: version, clientID: clientID, cleanStart: connectFlags & 0x02 != 0, keepAlive: keepAlive,
            username: username, password: password, will: will, properties: properties)
    }
}
