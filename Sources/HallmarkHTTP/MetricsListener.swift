import HallmarkMetrics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

import Foundation

/// `GET /metrics` in the Prometheus exposition format, on a plain-HTTP listener of its own
/// (loopback by default: what it tells of the fleet is for the operator's Prometheus, not the world).
public enum MetricsListener {
    public static func bind(host: String, port: Int, metrics: FleetMetrics, group: any EventLoopGroup) async throws -> PlainHTTPListener {
        try await PlainHTTPListener.bind(host: host, port: port, backlog: 64, group: group) { MetricsHTTPHandler(metrics: metrics) }
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
        PlainHTTPListener.send(status, body: body, type: type, keepAlive: keepAlive, context: context, headOnly: headOnly)
    }
}
