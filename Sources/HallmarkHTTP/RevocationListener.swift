import HallmarkCore
import HallmarkServices
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Revocation
import ServiceLifecycle

import Foundation

/// The revocation listener: plain HTTP, as RFC 5280 and RFC 6960 expect of CRL distribution
/// points and OCSP responders (what it serves is signed). `GET /crl/<name>.crl` is a CA's CRL in
/// DER; `POST /ocsp` and `GET /ocsp/<base64 request>` answer OCSP. It is bound when made, so that
/// its address is known before the first certificate naming it is issued.
public enum RevocationListener {
    /// Binds the listener (port 0 picks a free one).
    public static func bind(
        host: String, port: Int, service: RevocationService, group: any EventLoopGroup, budget: ConnectionBudget? = nil, logger: Logger
    ) async throws -> PlainHTTPListener {
        try await PlainHTTPListener.bind(host: host, port: port, backlog: 256, group: group, budget: budget) {
            RevocationHTTPHandler(service: service, logger: logger)
        }
    }
}

/// One connection's requests, answered in order.
final class RevocationHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The largest body read: OCSP requests are small; a larger one is answered `malformedRequest`.
    static let maximumBody = OCSPRequest.maximumSize

    let service: RevocationService
    let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(service: RevocationService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
            tooLarge = false
        case .body(var buffer):
            guard !tooLarge else { return }
            if body.count + buffer.readableBytes > Self.maximumBody {
                tooLarge = true
                body.removeAll()
            } else {
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let keepAlive = head.isKeepAlive && !tooLarge
        if path.hasPrefix("/crl/") {
            guard head.method == .GET || head.method == .HEAD else { return send(.methodNotAllowed, text: "GET a CRL.", keepAlive, context) }
            let name = String(path.dropFirst("/crl/".count))
            guard name.hasSuffix(".crl"), let crl = service.crl(named: String(name.dropLast(4))) else {
                return send(.notFound, text: "No CRL is published under \(path.prefix(80)).", keepAlive, context)
            }
            let maxAge = max(0, Int(crl.nextUpdate.timeIntervalSinceNow / 2))
            return send(
                .ok, body: crl.der, type: "application/pkix-crl", keepAlive, context,
                headers: [("Cache-Control", "public, max-age=\(min(maxAge, 60))")], headOnly: head.method == .HEAD)
        }
        guard path == "/ocsp" || path == "/ocsp/" || path.hasPrefix("/ocsp/") else {
            return send(.notFound, text: "Revocation lives at /crl/<name>.crl and /ocsp.", keepAlive, context)
        }
        let request: [UInt8]
        switch head.method {
        case .POST where path == "/ocsp" || path == "/ocsp/":
            request = tooLarge ? [] : body
        case .GET where path.count > "/ocsp/".count:
            // RFC 6960 appendix A.1: the base64 of the DER, URL-encoded, as the path's last part.
            let encoded = String(path.dropFirst("/ocsp/".count))
            let text = (encoded.removingPercentEncoding ?? encoded)
                .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            let padded = text + String(repeating: "=", count: (4 - text.count % 4) % 4)
            request = Data(base64Encoded: padded).map(Array.init) ?? []
        default:
            return send(.methodNotAllowed, text: "POST an OCSP request to /ocsp, or GET /ocsp/<base64>.", keepAlive, context)
        }
        if let hit = service.cachedAnswer(request) {
            return send(.ok, body: hit, type: "application/ocsp-response", keepAlive, context)
        }
        let source = context.channel.remoteAddress?.ipAddress
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let service = self.service
        let promise = loop.makePromise(of: [UInt8].self)
        promise.completeWithTask { await service.answer(request, source: source) }
        promise.futureResult.whenSuccess { der in
            let (handler, context) = bound.value
            handler.send(.ok, body: der, type: "application/ocsp-response", keepAlive, context)
        }
    }

    private func send(_ status: HTTPResponseStatus, text: String, _ keepAlive: Bool, _ context: ChannelHandlerContext) {
        send(status, body: Array((text + "\n").utf8), type: "text/plain; charset=utf-8", keepAlive, context)
    }

    private func send(
        _ status: HTTPResponseStatus, body: [UInt8], type: String, _ keepAlive: Bool, _ context: ChannelHandlerContext,
        headers extra: [(String, String)] = [], headOnly: Bool = false
    ) {
        PlainHTTPListener.send(status, body: body, type: type, keepAlive: keepAlive, context: context, headers: extra, headOnly: headOnly)
    }
}
