import NIOCore

/// Splits a byte stream into MQTT packets. A packet whose declared size exceeds the maximum is
/// refused as soon as its header is read, before its body is buffered.
public struct MQTTFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Packet

    /// The connection's protocol level: set by the first CONNECT (server side) or given (client side).
    public var version: MQTTVersion?
    /// The largest packet accepted, fixed header included.
    public var maximumPacketSize: Int

    public init(version: MQTTVersion? = nil, maximumPacketSize: Int = 268_435_460) {
        self.version = version
        self.maximumPacketSize = maximumPacketSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let packet = try decodePacket(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(packet))
        return .continue
    }

    /// Decodes one packet from the front of `buffer`, or returns nil (consuming nothing) when the
    /// packet is not complete yet.
    public mutating func decodePacket(from buffer: inout ByteBuffer) throws(MQTTProtocolError) -> Packet? {
        var peek = buffer
        guard let first = peek.readInteger(as: UInt8.self) else { return nil }
        var length: UInt32 = 0
        var complete = false
        for index in 0..<4 {
            guard let byte = peek.readInteger(as: UInt8.self) else { return nil }
            length |= UInt32(byte & 0x7F) << (7 * index)
            if byte & 0x80 == 0 {
                complete = true
                break
            }
        }
        guard complete else { throw .malformed("remaining length longer than 4 bytes") }
        let headerSize = buffer.readableBytes - peek.readableBytes
        guard headerSize + Int(length) <= maximumPacketSize else {
            throw .init(.packetTooLarge, "packet of \(headerSize + Int(length)) bytes exceeds the maximum of \(maximumPacketSize)")
        }
        guard var body = peek.readSlice(length: Int(length)) else { return nil }
        buffer.moveReaderIndex(forwardBy: headerSize + Int(length))
        let packet = try Packet.decode(type: first >> 4, flags: first & 0x0F, body: &body, version: version)
        if case .connect(let connect) = packet {
            guard version == nil else { throw .protocolError("second CONNECT on a connection") }
            version = connect.version
        }
        return packet
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
