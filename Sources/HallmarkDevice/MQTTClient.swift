import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A small MQTT client over TLS with a client certificate (or plain TCP): what the device agent
/// publishes telemetry with. (Load generators add a handler of their own behind it: `configure`.)
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

    package let channel: any Channel
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
        try await connect(
            host: host, port: port, tls: tls, serverHostname: serverHostname, clientID: clientID, version: version,
            keepAlive: keepAlive, cleanStart: cleanStart, group: group, onMessage: onMessage, configure: nil)
    }

    /// Connects as `connect` does; `configure` adds handlers behind the client's own, on the
    /// connection's event loop. They receive the decoded packets the client does not answer itself:
    /// acknowledgements of publishes it did not send.
    package static func connect(
        host: String, port: Int, tls: NIOSSLContext?, serverHostname: String?, clientID: String,
        version: MQTTVersion, keepAlive: UInt16, cleanStart: Bool, group: any EventLoopGroup,
        onMessage: (@Sendable (PublishPacket) -> Void)?,
        configure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)?
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
                    try configure?(sync)
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
            let handler = self.handler
            try await channel.eventLoop.flatSubmit {
                handler.value.write(.publish(PublishPacket(topic: topic, payload: payload)), flush: true)
            }.get()
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

    private func freeID() -> UInt16 {
        while true {
            let id = nextID
            nextID = nextID == .max ? 1 : nextID + 1
            if pending[id] == nil { return id }
        }
    }

    /// The last acknowledgement of a publish: it answers a request of this client's, or else it
    /// goes on to the handlers behind (a load generator's).
    private func publishEnded(_ ack: AckPacket, _ packet: Packet) {
        if let promise = pending.removeValue(forKey: ack.packetID) {
            promise.succeed(packet)
        } else {
            context?.fireChannelRead(NIOAny(packet))
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

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connack?.fail(ConnectionClosed())
        for promise in pending.values { promise.fail(ConnectionClosed()) }
        pending.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connack?.fail(error)
        connack = nil
        context.close(promise: nil)
    }
}
