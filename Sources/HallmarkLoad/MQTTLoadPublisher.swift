import HallmarkDevice
import MQTTCore
import NIOCore
import NIOPosix
import NIOSSL

/// A publisher for load generators: an `MQTTClient` with a handler behind it that publishes one
/// message again and again with no task switch per message (the broker benchmark's and the flow
/// control tests' load). Not part of any product: the device agent publishes through `MQTTClient`.
public struct MQTTLoadPublisher: Sendable {
    /// The connection, for everything but the load (subscribing, disconnecting).
    public let client: MQTTClient
    private let handler: NIOLoopBound<MQTTLoadHandler>

    /// Connects and waits for CONNACK, as `MQTTClient.connect` does.
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext?, serverHostname: String? = nil, clientID: String,
        version: MQTTVersion = .v5, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> MQTTLoadPublisher {
        let client = try await MQTTClient.connect(
            host: host, port: port, tls: tls, serverHostname: serverHostname, clientID: clientID, version: version,
            keepAlive: 60, cleanStart: true, group: group, onMessage: nil,
            configure: { try $0.addHandler(MQTTLoadHandler(version: version)) })
        let channel = client.channel
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: MQTTLoadHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return MQTTLoadPublisher(client: client, handler: handler)
    }

    /// Publishes one message again and again until `deadline`. At QoS 1 or 2, up to `window` copies
    /// are unacknowledged and each acknowledgement lets the next one go; at QoS 0, copies leave in
    /// bursts of `window`, the next burst once the socket has taken the last. Returns how many were
    /// acknowledged (QoS 0: written).
    /// - Throws: `MQTTClient.Refused` if the broker refuses a copy; an error if the connection ends.
    public func publishRepeatedly(
        topic: String, payload: ByteBuffer, qos: QoS, window: Int, until deadline: NIODeadline
    ) async throws -> Int {
        precondition(window > 0, "a window of at least one message")
        let handler = self.handler
        let packet = PublishPacket(topic: topic, payload: payload, qos: qos)
        return try await client.channel.eventLoop.flatSubmit {
            qos == .atMostOnce
                ? handler.value.burst(packet, size: window, until: deadline)
                : handler.value.stream(packet, window: window, until: deadline)
        }.get()
    }

    /// Sends DISCONNECT and closes.
    public func disconnect() async { await client.disconnect() }
}

/// Streams or bursts one message; sits behind `MQTTClient`'s handler, which passes it the
/// acknowledgements of the publishes it did not send and flushes what it writes at each read's end. Its packet identifiers are the upper half
/// (0x8000 and up), so they never meet the client's own requests' identifiers while both are few.
final class MQTTLoadHandler: ChannelInboundHandler {
    typealias InboundIn = Packet
    typealias OutboundOut = ByteBuffer

    struct ConnectionClosed: Error {}

    /// A message published repeatedly with a window of unacknowledged copies.
    private struct Stream {
        var packet: PublishPacket
        var deadline: NIODeadline
        var inFlight = 0
        var acknowledged = 0
        var promise: EventLoopPromise<Int>
    }

    private let version: MQTTVersion
    private var context: ChannelHandlerContext?
    private var stream: Stream?
    private var nextID: UInt16 = 0x8000

    init(version: MQTTVersion) { self.version = version }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func stream(_ packet: PublishPacket, window: Int, until deadline: NIODeadline) -> EventLoopFuture<Int> {
        guard let context, stream == nil else {
            return MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ConnectionClosed())
        }
        let promise = context.eventLoop.makePromise(of: Int.self)
        stream = Stream(packet: packet, deadline: deadline, promise: promise)
        for _ in 0..<window { sendStreamed() }
        context.flush()
        return promise.futureResult
    }

    func burst(_ packet: PublishPacket, size: Int, until deadline: NIODeadline) -> EventLoopFuture<Int> {
        guard let context else { return MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ConnectionClosed()) }
        var burst = context.channel.allocator.buffer(capacity: size * (16 + packet.topic.utf8.count + packet.payload.readableBytes))
        for _ in 0..<size { Packet.publish(packet).encode(version: version, into: &burst) }
        let promise = context.eventLoop.makePromise(of: Int.self)
        sendBurst(burst, size: size, until: deadline, written: 0, promise: promise)
        return promise.futureResult
    }

    /// Writes one burst; once the socket has taken it, the next, until the deadline.
    private func sendBurst(_ burst: ByteBuffer, size: Int, until deadline: NIODeadline, written: Int, promise: EventLoopPromise<Int>) {
        guard NIODeadline.now() < deadline, let context else { return promise.succeed(written) }
        context.writeAndFlush(wrapOutboundOut(burst)).assumeIsolated().whenComplete { result in
            switch result {
            case .success: self.sendBurst(burst, size: size, until: deadline, written: written + size, promise: promise)
            case .failure(let error): promise.fail(error)
            }
        }
    }

    private func sendStreamed() {
        guard var packet = stream?.packet, let context else { return }
        packet.packetID = nextID
        nextID = nextID == .max ? 0x8000 : nextID + 1
        stream!.inFlight += 1
        var buffer = context.channel.allocator.buffer(capacity: 64 + packet.payload.readableBytes)
        Packet.publish(packet).encode(version: version, into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .puback(let ack), .pubcomp(let ack), .pubrec(let ack):
            streamAcknowledged(ack)
        default:
            break
        }
    }

    /// An acknowledgement of a streamed message: send the next, or finish once past the deadline.
    private func streamAcknowledged(_ ack: AckPacket) {
        guard var current = stream else { return }
        current.inFlight -= 1
        if ack.reason.isFailure {
            stream = nil
            current.promise.fail(MQTTClient.Refused(reason: ack.reason, message: ack.properties.reasonString))
            return
        }
        current.acknowledged += 1
        stream = current
        if NIODeadline.now() < current.deadline {
            sendStreamed()
        } else if current.inFlight == 0 {
            stream = nil
            current.promise.succeed(current.acknowledged)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.promise.fail(ConnectionClosed())
        stream = nil
        context.fireChannelInactive()
    }
}
