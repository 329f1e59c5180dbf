import HallmarkCore
import HallmarkMetrics
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Ends HTTPS connections that hold the listener without making progress. From accept, a client
/// has the handshake timeout to finish TLS and send a request head; a request must then be whole
/// (head to end of body) within the request timeout; once its response is written, a keep-alive
/// connection may stay quiet for the idle timeout. No deadline runs while a request is answered,
/// however long its response takes to send (a firmware download on a slow link). Trickled headers (slowloris), handshakes that stop halfway and
/// connections that never speak are closed when their deadline passes, whatever bytes they send.
///
/// The connection's place among its address's pending connections is given back at its first
/// request head.
final class RequestDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum Phase: String {
        case handshake = "handshake_timeout", request = "request_timeout", idle = "idle_timeout"
    }

    let limits: ConnectionLimits
    let metrics: FleetMetrics?
    var pendingPlace: ConnectionHold?
    private var deadline: Scheduled<Void>?
    /// Requests whose head has come and whose response has not been written yet (pipelining).
    private var unanswered = 0

    init(limits: ConnectionLimits, pendingPlace: ConnectionHold?, metrics: FleetMetrics?) {
        self.limits = limits
        self.pendingPlace = pendingPlace
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(.handshake, seconds: limits.handshakeTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            pendingPlace?.release()
            pendingPlace = nil
            arm(.request, seconds: limits.requestTimeout, context: context)
        case .body:
            break
        case .end:
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            let idle = limits.idleTimeout
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenComplete { [weak self] result in
                if let self {
                    self.unanswered = max(0, self.unanswered - 1)
                    if self.unanswered == 0 { self.arm(.idle, seconds: idle, context: context) }
                }
                promise?.completeWith(result)
            }
            context.write(data, promise: written)
            return
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    private func arm(_ phase: Phase, seconds: Int, context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(seconds))) { [metrics] in
            metrics?.connectionDropped(listener: "https", reason: phase.rawValue)
            context.close(promise: nil)
        }
    }
}
