import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A small MQTT client over TLS with a client certificate (or plain TCP): what the device agent
/// publishes telemetry with, and what the broker benchmark drives load with.
public final class MQTTClient: Sendable {
    public struct Refused: Error, CustomStringConvertible {
        public var reason: ReasonCode
        public var message: String?
        public init(reason: ReasonCode, message: String?) {
            self.reason = reason
            self.message = message
        }
        public var description: String { "MQTT refused (reason \(reason))" + (message.map { ": \($0)" } ?? "") }
    }

    let channel: any Channel
    let handler: NIOLoopBound<ClientHandler>
    public let version: MQTTVersion

    /// Connects and waits for CONNACK.
    /// - Parameters:
    ///   - tls: The client's TLS context (trust roots, certificate and key); nil for plain TCP.
    ///   - onMessage: Called on the connection's event loop for each message received.
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext?, serverHostname: String? = nil, clientID: String,
        version: MQTTVersion = .v5, keepAlive: UInt16 = 60, cleanStart: Bool = true,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onMessage: (@Sendable (PublishPacket) -> Void)? = nil
    ) async throws -> MQTTClient {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverHostname ?? host))
                    }
                    try sync.addHandler(ByteToMessageHandler(MQTTFrameDecoder(version: version)))
                    try sync.addHandler(ClientHandler(version: version, onMessage: onMessage))
                }
            }
            .connect(host: host, port: port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let client = MQTTClient(channel: channel, handler: handler, version: version)
        let connect = ConnectPacket(version: version, clientID: clientID, cleanStart: cleanStart, keepAlive: keepAlive)
        let reply = try await client.request(.connect(connect), awaiting: .connack)
        if case .connack(let ack) = reply, ack.reason.isFailure {
            channel.close(promise: nil)
            throw Refused(reason: ack.reason, message: ack.properties.reasonString)
        }
        return client
    }

    private init(channel: any Channel, handler: NIOLoopBound<ClientHandler>, version: MQTTVersion) {
        self.channel = channel
        self.handler = handler
        self.version = version
    }

    /// Publishes; for QoS 1 and 2, waits for the broker's acknowledgement and throws if it refused.
    public func publish(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false) async throws {
        guard qos != .atMostOnce else {
            try await publishUnacknowledged(topic: topic, payload: payload, flush: true).get()
            return
        }
        let reply = try await request(
            .publish(PublishPacket(topic: topic, payload: payload, qos: qos, retain: retain)),
            awaiting: qos == .atLeastOnce ? .puback : .pubcomp)
        switch reply {
        case .puback(let ack), .pubcomp(let ack), .pubrec(let ack):
            if ack.reason.isFailure { throw Refused(reason: ack.reason, message: ack.properties.reasonString) }
        default:
            break
        }
    }

    /// Writes a QoS 0 PUBLISH; the future completes when it is written (for pacing a load).
    public func publishUnacknowledged(topic: String, payload: ByteBuffer, flush: Bool) -> EventLoopFuture<Void> {
        let handler = self.handler
        return channel.eventLoop.flatSubmit {
            handler.value.write(.publish(PublishPacket(topic: topic, payload: payload)), flush: flush)
        }
    }

    /// Publishes one message again and again until `deadline`, with no task switch per message
    /// (a device uploading a backlog, or a load generator). At QoS 1 or 2, up to `window` copies are
    /// unacknowledged and each acknowledgement lets the next one go; at QoS 0, copies leave in
    /// bursts of `window`, the next burst once the socket has taken the last. Returns how many were
    /// acknowledged (QoS 0: written); throws if the broker refuses one.
    public func publishRepeatedly(
        topic: String, payload: ByteBuffer, qos: QoS, window: Int, until deadline: NIODeadline
    ) async throws -> Int {
        precondition(window > 0, "a window of at least one message")
        let handler = self.handler
        let packet = PublishPacket(topic: topic, payload: payload, qos: qos)
        return try await channel.eventLoop.flatSubmit {
            qos == .atMostOnce
                ? handler.value.burst(packet, size: window, until: deadline)
                : handler.value.stream(packet, window: window, until: deadline)
        }.get()
    }

    /// Subscribes and returns the broker's reason per subscription.
    public func subscribe(_ subscriptions: [Subscription]) async throws -> [ReasonCode] {
        let reply = try await request(.subscribe(SubscribePacket(packetID: 0, subscriptions: subscriptions)), awaiting: .suback)
        guard case .suback(let ack) = reply else { return [] }
        return ack.reasons
    }

    /// Sends DISCONNECT and closes.
    public func disconnect() async {
        let handler = self.handler
        try? await channel.eventLoop.flatSubmit { handler.value.write(.disconnect(ReasonPacket()), flush: true) }.get()
        try? await channel.close()
    }

    /// Closes the connection without DISCONNECT.
    public func close() { channel.close(promise: nil) }

    /// Completes when the connection ends (for instance when the broker cuts it off).
    public var closed: EventLoopFuture<Void> { channel.closeFuture }

    enum Awaited { case connack, puback, pubcomp, suback }

    private func request(_ packet: Packet, awaiting: Awaited) async throws -> Packet {
        let handler = self.handler
        return try await channel.eventLoop.flatSubmit { handler.value.send(packet, awaiting: awaiting) }.get()
    }
}

/// Encodes outgoing packets, matches replies to requests, acknowledges incoming messages.
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = Packet
    typealias OutboundOut = ByteBuffer

    struct ConnectionClosed: Error {}

    let version: MQTTVersion
    let onMessage: (@Sendable (PublishPacket) -> Void)?
    private var context: ChannelHandlerContext?
    private var connack: EventLoopPromise<Packet>?
    private var pending: [UInt16: EventLoopPromise<Packet>] = [:]
    private var nextID: UInt16 = 1
    private var stream: Stream?

    /// A message published repeatedly with a window of unacknowledged copies.
    private struct Stream {
        var packet: PublishPacket
        var deadline: NIODeadline
        var inFlight = 0
        var acknowledged = 0
        var promise: EventLoopPromise<Int>
    }

    init(version: MQTTVersion, onMessage: (@Sendable (PublishPacket) -> Void)?) {
        self.version = version
        self.onMessage = onMessage
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// What a request gets once the connection has gone.
    private static func closed<T>() -> EventLoopFuture<T> {
        MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ConnectionClosed())
    }

    func write(_ packet: Packet, flush: Bool) -> EventLoopFuture<Void> {
        guard let context else { return Self.closed() }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        packet.encode(version: version, into: &buffer)
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(buffer), promise: promise)
        if flush { context.flush() }
        return promise.futureResult
    }

    func send(_ packet: Packet, awaiting: MQTTClient.Awaited) -> EventLoopFuture<Packet> {
        guard let context else { return Self.closed() }
        let promise = context.eventLoop.makePromise(of: Packet.self)
        var packet = packet
        if awaiting == .connack {
            connack = promise
        } else {
            let id = freeID()
            pending[id] = promise
            switch packet {
            case .publish(var publish):
                publish.packetID = id
                packet = .publish(publish)
            case .subscribe(var subscribe):
                subscribe.packetID = id
                packet = .subscribe(subscribe)
            default:
                break
            }
        }
        write(packet, flush: true).cascadeFailure(to: promise)
        return promise.futureResult
    }

    func stream(_ packet: PublishPacket, window: Int, until deadline: NIODeadline) -> EventLoopFuture<Int> {
        guard let context, stream == nil else {
            return Self.closed()
        }
        stream = Stream(packet: packet, deadline: deadline, promise: context.eventLoop.makePromise())
        let future = stream!.promise.futureResult
        for _ in 0..<window { sendStreamed() }
        context.flush()
        return future
    }

    func burst(_ packet: PublishPacket, size: Int, until deadline: NIODeadline) -> EventLoopFuture<Int> {
        guard let context else { return Self.closed() }
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

    private func freeID() -> UInt16 {
        while true {
            let id = nextID
            nextID = nextID == .max ? 1 : nextID + 1
            if pending[id] == nil { return id }
        }
    }

    private func sendStreamed() {
        guard var packet = stream?.packet, let context else { return }
        packet.packetID = freeID()
        stream!.inFlight += 1
        var buffer = context.channel.allocator.buffer(capacity: 64 + packet.payload.readableBytes)
        Packet.publish(packet).encode(version: version, into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    /// The last acknowledgement of a publish: it answers a single request, or else a streamed copy.
    private func publishEnded(_ ack: AckPacket, _ packet: Packet) {
        if let promise = pending.removeValue(forKey: ack.packetID) {
            promise.succeed(packet)
        } else {
            streamAcknowledged(ack)
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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        switch packet {
        case .connack:
            connack?.succeed(packet)
            connack = nil
        case .puback(let ack), .pubcomp(let ack):
            publishEnded(ack, packet)
        case .suback(let ack):
            pending.removeValue(forKey: ack.packetID)?.succeed(packet)
        case .pubrec(let ack):
            if ack.reason.isFailure {
                publishEnded(ack, packet)
            } else {
                _ = write(.pubrel(AckPacket(packetID: ack.packetID)), flush: true)
            }
        case .publish(let publish):
            onMessage?(publish)
            if let id = publish.packetID {
                _ = write(publish.qos == .atLeastOnce ? .puback(AckPacket(packetID: id)) : .pubrec(AckPacket(packetID: id)), flush: false)
            }
        case .pubrel(let ack):
            _ = write(.pubcomp(AckPacket(packetID: ack.packetID)), flush: false)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        connack?.fail(ConnectionClosed())
        for promise in pending.values { promise.fail(ConnectionClosed()) }
        pending.removeAll()
        stream?.promise.fail(ConnectionClosed())
        stream = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connack?.fail(error)
        connack = nil
        context.close(promise: nil)
    }
}
