import NIOCore

extension Packet {
    /// Appends this packet, fixed header included, to `buffer` for a connection at `version`.
    public func encode(version: MQTTVersion, into buffer: inout ByteBuffer) {
        let v5 = version == .v5
        if case .publish(let publish) = self {
            Self.encodePublish(publish, v5: v5, into: &buffer)
            return
        }
        var body = ByteBuffer()
        var flags: UInt8 = 0
        switch self {
        case .connect(let connect):
            body.writeMQTTString("MQTT")
            body.writeInteger(connect.version.rawValue)
            var connectFlags: UInt8 = connect.cleanStart ? 0x02 : 0
            if let will = connect.will {
                connectFlags |= 0x04 | (will.qos.rawValue << 3) | (will.retain ? 0x20 : 0)
            }
            if connect.password != nil { connectFlags |= 0x40 }
            if connect.username != nil { connectFlags |= 0x80 }
            body.writeInteger(connectFlags)
            body.writeInteger(connect.keepAlive)
            if connect.version == .v5 { connect.properties.write(to: &body) }
            body.writeMQTTString(connect.clientID)
            if let will = connect.will {
                if connect.version == .v5 { will.properties.write(to: &body) }
                body.writeMQTTString(will.topic)
                body.writeInteger(UInt16(will.payload.readableBytes))
                body.writeImmutableBuffer(will.payload)
            }
            if let username = connect.username { body.writeMQTTString(username) }
            if let password = connect.password { body.writeMQTTBinary(password) }
        case .connack(let ack):
            body.writeInteger(UInt8(ack.sessionPresent ? 1 : 0))
            body.writeInteger(v5 ? ack.reason.rawValue : ack.reason.connectReturnCode311)
            if v5 { ack.properties.write(to: &body) }
        case .publish:
            preconditionFailure("handled above")
        case .puback(let ack), .pubrec(let ack), .pubrel(let ack), .pubcomp(let ack):
            if case .pubrel = self { flags = 0b0010 }
            body.writeInteger(ack.packetID)
            if v5 && (ack.reason != .success || !ack.properties.isEmpty) {
                body.writeInteger(ack.reason.rawValue)
                if !ack.properties.isEmpty { ack.properties.write(to: &body) }
            }
        case .subscribe(let subscribe):
            flags = 0b0010
            body.writeInteger(subscribe.packetID)
            if v5 { subscribe.properties.write(to: &body) }
            for s in subscribe.subscriptions {
                body.writeMQTTString(s.filter)
                var options = s.qos.rawValue
                if v5 {
                    options |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling.rawValue << 4)
                }
                body.writeInteger(options)
            }
        case .suback(let ack), .unsuback(let ack):
            body.writeInteger(ack.packetID)
            if v5 { ack.properties.write(to: &body) }
            if case .unsuback = self, !v5 { break }
            for reason in ack.reasons {
                // 3.1.1 SUBACK knows 0, 1, 2 and 0x80 only.
                body.writeInteger(v5 || reason.rawValue <= 2 ? reason.rawValue : 0x80)
            }
        case .unsubscribe(let unsubscribe):
            flags = 0b0010
            body.writeInteger(unsubscribe.packetID)
            if v5 { unsubscribe.properties.write(to: &body) }
            for filter in unsubscribe.filters { body.writeMQTTString(filter) }
        case .pingreq, .pingresp:
            break
        case .disconnect(let packet), .auth(let packet):
            if v5 && (packet.reason != .success || !packet.properties.isEmpty) {
                body.writeInteger(packet.reason.rawValue)
                if !packet.properties.isEmpty { packet.properties.write(to: &body) }
            }
        }
        buffer.writeInteger(typeCode << 4 | flags)
        buffer.writeMQTTVariableInteger(UInt32(body.readableBytes))
        buffer.writeBuffer(&body)
    }

    /// The size of the encoded packet, fixed header included (used to honour a peer's maximum
    /// packet size).
    public func encodedSize(version: MQTTVersion) -> Int {
        var buffer = ByteBuffer()
        encode(version: version, into: &buffer)
        return buffer.readableBytes
    }

    private static func encodePublish(_ publish: PublishPacket, v5: Bool, into buffer: inout ByteBuffer) {
        var properties = ByteBuffer()
        if v5 { publish.properties.write(to: &properties) }
        let length =
            2 + publish.topic.utf8.count + (publish.qos == .atMostOnce ? 0 : 2) + properties.readableBytes
            + publish.payload.readableBytes
        let flags = (publish.dup ? 0x08 : 0) | (publish.qos.rawValue << 1) | (publish.retain ? 1 : 0)
        buffer.reserveCapacity(minimumWritableBytes: length + 5)
        buffer.writeInteger(UInt8(0x30) | flags)
        buffer.writeMQTTVariableInteger(UInt32(length))
        buffer.writeMQTTString(publish.topic)
        if publish.qos != .atMostOnce { buffer.writeInteger(publish.packetID ?? 0) }
        buffer.writeBuffer(&properties)
        buffer.writeImmutableBuffer(publish.payload)
    }
}
