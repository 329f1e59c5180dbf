import HallmarkMetrics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

import Foundation

/// `GET /metrics` in the Prometheus exposition format, on a plain-HTTP listener of its own
/// (loopback by default: what it tells of the fleet is for the operator's Prometheus, not the world).
public final class MetricsListener: Service, Sendable {
    public let port: Int
    let channel: any Channel

    public static func bind(host: String, port: Int, metrics: FleetMetrics, group: any EventLoopGroup) async throws -> MetricsListener {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsListener(port: channel.localAddress?.port ?? port, channel: channel)
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
}

final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: FleetMetrics
    private var head: HTTPRequestHead?

    init(metrics: FleetMetrics) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let keepAlive = head.isKeepAlive
            guard path == "/metrics" else {
                return send(.notFound, Array("Metrics live at /metrics.\n".utf8), type: "text/plain; charset=utf-8", keepAlive, context)
            }
            guard head.method == .GET || head.method == .HEAD else {
                return send(.methodNotAllowed, Array("GET /metrics.\n".utf8), type: "text/plain; charset=utf-8", keepAlive, context)
            }
            // The samplers read the registry: off the event loop.
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let promise = context.eventLoop.makePromise(of: String.self)
            let metrics = self.metrics
            promise.completeWithTask { metrics.render() }
            promise.futureResult.whenSuccess { text in
                let (handler, context) = bound.value
                handler.send(.ok, Array(text.utf8), type: "text/plain; version=0.0.4; charset=utf-8", keepAlive, context, headOnly: head.method == .HEAD)
            }
        }
    }

    private func send(
        _ status: HTTPResponseStatus, _ body: [UInt8], type: String, _ keepAlive: Bool, _ context: ChannelHandlerContext, headOnly: Bool = false
    ) {
        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(body.count)")])
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !headOnly { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}
