import HallmarkCore
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A plain-HTTP/1.1 listener on SwiftNIO, each connection answered by a handler of its own: the
/// revocation listener (CRLs, OCSP) and the Prometheus listener. It is bound when made, so that its
/// port is known before anything names it.
public final class PlainHTTPListener: Service, Sendable {
    public let port: Int
    let channel: any Channel

    /// Binds the listener (port 0 picks a free one).
    static func bind(
        host: String, port: Int, backlog: Int32, group: any EventLoopGroup, budget: ConnectionBudget? = nil,
        makeHandler: @escaping @Sendable () -> any ChannelInboundHandler
    ) async throws -> PlainHTTPListener {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if let budget {
                    // Past the process's connection budget: closed at accept.
                    guard let share = budget.admit() else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in share.release() }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .bind(host: host, port: port).get()
        return PlainHTTPListener(port: channel.localAddress?.port ?? port, channel: channel)
    }

    init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.channel.close(promise: nil)
        }
    }

    /// Writes one whole response; without keep-alive the connection closes once it is written.
    static func send(
        _ status: HTTPResponseStatus, body: [UInt8], type: String, keepAlive: Bool, context: ChannelHandlerContext,
        headers extra: [(String, String)] = [], headOnly: Bool = false
    ) {
        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(body.count)")] + extra)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !headOnly {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}
