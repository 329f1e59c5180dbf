import MQTTCore
import NIOCore
import NIOTestUtils
import Testing

@Suite("MQTT codec")
struct CodecTests {
    static func bytes(_ packet: Packet, _ version: MQTTVersion) -> ByteBuffer {
        var buffer = ByteBuffer()
        packet.encode(version: version, into: &buffer)
        return buffer
    }

    static func decodeAll(_ buffer: ByteBuffer, version: MQTTVersion?) throws -> [Packet] {
        var decoder = MQTTFrameDecoder(version: version)
        var input = buffer
        var packets: [Packet] = []
        while let packet = try decoder.decodePacket(from: &input) { packets.append(packet) }
        #expect(input.readableBytes == 0)
        return packets
    }

    static var sampleProperties: Properties {
        var p = Properties()
        p.messageExpiryInterval = 30
        p.contentType = "application/json"
        p.responseTopic = "things/t1/replies"
        p.correlationData = [1, 2, 3]
        p.userProperties = [UserProperty("k", "v"), UserProperty("k", "w")]
        p.subscriptionIdentifiers = [7, 300_000]
        p.topicAlias = 3
        return p
    }

    static let packets: [Packet] = [
        .connack(ConnAckPacket(sessionPresent: true, reason: .success)),
        .publish(PublishPacket(topic: "things/t1/temp", payload: ByteBuffer(string: "21.5"), qos: .atMostOnce)),
        .publish(PublishPacket(topic: "a/b", payload: ByteBuffer(string: "x"), qos: .atLeastOnce, retain: true, dup: true, packetID: 9)),
        .publish(PublishPacket(topic: "a/b", payload: ByteBuffer(), qos: .exactlyOnce, packetID: 65535)),
        .puback(AckPacket(packetID: 1)), .pubrec(AckPacket(packetID: 2)), .pubrel(AckPacket(packetID: 3)),
        .pubcomp(AckPacket(packetID: 4)),
        .subscribe(SubscribePacket(packetID: 5, subscriptions: [Subscription(filter: "a/+/c", qos: .atLeastOnce), Subscription(filter: "#", qos: .exactlyOnce)])),
        .suback(SubAckPacket(packetID: 5, reasons: [.grantedQoS1, .unspecifiedError])),
        .unsubscribe(UnsubscribePacket(packetID: 6, filters: ["a/+/c"])),
        .pingreq, .pingresp, .disconnect(ReasonPacket()),
    ]

    @Test("every packet type survives a round trip in 3.1.1 and 5", arguments: [MQTTVersion.v311, .v5])
    func roundTrip(version: MQTTVersion) throws {
        for packet in Self.packets {
            if version == .v311, case .unsuback = packet { continue }
            let decoded = try Self.decodeAll(Self.bytes(packet, version), version: version)
            #expect(decoded == [packet], "\(packet)")
        }
    }

    @Test("MQTT 5 properties, reasons and subscription options round-trip")
    func v5Details() throws {
        let publish = Packet.publish(PublishPacket(topic: "t", payload: ByteBuffer(string: "p"), qos: .atLeastOnce, packetID: 2, properties: Self.sampleProperties))
        #expect(try Self.decodeAll(Self.bytes(publish, .v5), version: .v5) == [publish])
        let subscribe = Packet.subscribe(SubscribePacket(packetID: 1, subscriptions: [Subscription(filter: "x/#", qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)]))
        #expect(try Self.decodeAll(Self.bytes(subscribe, .v5), version: .v5) == [subscribe])
        let ack = Packet.puback(AckPacket(packetID: 4, reason: .notAuthorized, properties: { var p = Properties(); p.reasonString = "denied"; return p }()))
        #expect(try Self.decodeAll(Self.bytes(ack, .v5), version: .v5) == [ack])
        let disconnect = Packet.disconnect(ReasonPacket(reason: .sessionTakenOver))
        #expect(try Self.decodeAll(Self.bytes(disconnect, .v5), version: .v5) == [disconnect])
    }

    @Test("CONNECT sets the decoder's version; wills and credentials round-trip")
    func connect() throws {
        var willProperties = Properties()
        willProperties.willDelayInterval = 5
        for version in [MQTTVersion.v311, .v5] {
            let connect = Packet.connect(ConnectPacket(
                version: version, clientID: "thing-1", cleanStart: false, keepAlive: 30, username: "u", password: [1, 2],
                will: Will(topic: "things/thing-1/status", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce, retain: true,
                           properties: version == .v5 ? willProperties : Properties()),
                properties: version == .v5 ? { var p = Properties(); p.sessionExpiryInterval = 60; p.receiveMaximum = 10; return p }() : Properties()))
            var stream = Self.bytes(connect, version)
            var ping = Self.bytes(.pingreq, version)
            stream.writeBuffer(&ping)
            #expect(try Self.decodeAll(stream, version: nil) == [connect, .pingreq])
        }
    }

    @Test("the NIO decoder handles any split of the byte stream")
    func verifier() throws {
        var input = ByteBuffer()
        var expected: [Packet] = []
        for packet in Self.packets where packet != .connack(ConnAckPacket(sessionPresent: true)) {
            var b = Self.bytes(packet, .v5)
            input.writeBuffer(&b)
            expected.append(packet)
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(input, expected)], decoderFactory: { MQTTFrameDecoder(version: .v5) })
    }

    static func expectRefusal(_ bytes: [UInt8], version: MQTTVersion? = .v5, _ reason: ReasonCode, sourceLocation: SourceLocation = #_sourceLocation) {
        var decoder = MQTTFrameDecoder(version: version, maximumPacketSize: 1024)
        var buffer = ByteBuffer(bytes: bytes)
        do {
            let packet = try decoder.decodePacket(from: &buffer)
            Issue.record("decoded \(String(describing: packet))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("malformed, truncated inside, and oversize packets are refused with the right reason")
    func refusals() {
        Self.expectRefusal([0x30, 0x80, 0x80, 0x80, 0x80, 0x01], .malformedPacket)  // 5-byte length
        Self.expectRefusal([0x30, 0xFF, 0xFF, 0x7F], .packetTooLarge)  // 2 MB declared, max 1 KiB
        Self.expectRefusal([0x36, 0x03, 0x00, 0x01, 0x61], .malformedPacket)  // QoS 3
        Self.expectRefusal([0x30, 0x05, 0x00, 0x03, 0x61, 0x2F, 0x23], .topicNameInvalid)  // "a/#"
        Self.expectRefusal([0x30, 0x04, 0x00, 0x05, 0x61, 0x62], .malformedPacket)  // string past the end
        Self.expectRefusal([0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00], .malformedPacket)  // bad UTF-8
        Self.expectRefusal([0x30, 0x05, 0x00, 0x02, 0x61, 0x00, 0x00], .malformedPacket)  // U+0000
        Self.expectRefusal([0x80, 0x03, 0x00, 0x01, 0x00], .malformedPacket)  // SUBSCRIBE, wrong flags
        Self.expectRefusal([0x82, 0x03, 0x00, 0x01, 0x00], .protocolError)  // SUBSCRIBE, no filter (v5: props)
        Self.expectRefusal([0xC0, 0x01, 0x00], .malformedPacket)  // PINGREQ with a body
        Self.expectRefusal([0x00, 0x00], .malformedPacket)  // reserved type 0
        Self.expectRefusal([0xC0, 0x00], version: nil, .protocolError)  // first packet not CONNECT
        Self.expectRefusal([0x10, 0x0A, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x03, 0x02, 0x00, 0x3C, 0x00, 0x00],
                           version: nil, .unsupportedProtocolVersion)
        Self.expectRefusal([0x30, 0x06, 0x00, 0x01, 0x61, 0x03, 0x26, 0x00], .malformedPacket)  // property past block
        Self.expectRefusal([0x32, 0x06, 0x00, 0x01, 0x61, 0x00, 0x00, 0x00], .protocolError)  // QoS 1, id 0
    }

    @Test("3.1.1 acknowledgements that 3.1.1 cannot carry are refused, not re-read as others (found by FuzzMQTT)")
    func acknowledgementsOf311() throws {
        Self.expectRefusal([0x90, 0x04, 0x00, 0x31, 0x2F, 0x73], version: .v311, .malformedPacket)  // SUBACK return code 0x2F
        Self.expectRefusal([0xB0, 0x03, 0x00, 0x01, 0x00], version: .v311, .malformedPacket)  // UNSUBACK with a payload
        let suback = try Self.decodeAll(ByteBuffer(bytes: [0x90, 0x05, 0x00, 0x31, 0x00, 0x02, 0x80]), version: .v311)
        #expect(suback == [.suback(SubAckPacket(packetID: 0x31, reasons: [.success, ReasonCode(rawValue: 2), ReasonCode(rawValue: 0x80)]))])
        let v5 = try Self.decodeAll(ByteBuffer(bytes: [0x90, 0x04, 0x00, 0x31, 0x00, 0x97]), version: .v5)
        #expect(v5 == [.suback(SubAckPacket(packetID: 0x31, reasons: [ReasonCode(rawValue: 0x97)]))])
    }
}
