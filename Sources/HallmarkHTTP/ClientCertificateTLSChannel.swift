import HallmarkCore
import HallmarkMetrics
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// TLS for Hallmark's HTTPS listener: HummingbirdTLS's `TLSChannel`, plus a record of the client
/// certificate each connection presented in its handshake.
///
/// A request handler runs on Swift's thread pool, not on its connection's event loop. Asking the
/// TLS handler for the peer certificate would mean a trip to that loop and back on every request
/// (`bench enroll` counted about 2 % of the server's CPU for it, most in thread wake-ups). Here a
/// handler after the TLS handler records the peer certificate when the handshake completes,
/// before any request is read, and a request handler reads it under a lock. It is read from the
/// TLS handler then, not taken from the verification callback: a resumed session presents no
/// certificate to verify, yet has the one it was first established with.
///
/// The verification callback accepts every chain: client certificates are optional at the TLS
/// layer and validated by the handler that needs one, so a bad certificate gets a clear EST error
/// instead of a bare TLS alert. The handshake still proves the client holds the certificate's key.
struct ClientCertificateTLSChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let sslContext: NIOSSLContext
    let base: HTTP1Channel
    let limits: ConnectionLimits
    let admission: ListenerAdmission
    let metrics: FleetMetrics?

    init(
        sslContext: NIOSSLContext, responder: @escaping HTTPChannelHandler.Responder, limits: ConnectionLimits, metrics: FleetMetrics?,
        budget: ConnectionBudget?
    ) {
        self.sslContext = sslContext
        self.base = HTTP1Channel(responder: responder)
        self.limits = limits
        self.admission = ListenerAdmission(budget: budget, pending: PendingConnections(limit: limits.maximumPendingPerAddress))
        self.metrics = metrics
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Forgotten when the connection closes, however its setup ends.
        channel.closeFuture.whenComplete { _ in PresentedCertificates.shared.close(channel) }
        let admitted: ListenerAdmission.Admitted
        switch admission.admit(channel.remoteAddress?.ipAddress ?? "?") {
        case .failure(let refusal):
            metrics?.connectionDropped(listener: "https", reason: refusal.rawValue)
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(refusal)
        case .success(let taken):
            admitted = taken
        }
        channel.closeFuture.whenComplete { _ in admitted.release() }
        // Per connection: its deadlines hold its place.
        let connection = HTTP1Channel(
            responder: base.responder,
            configuration: .init(
                additionalChannelHandlers: [RequestDeadlines(limits: limits, pendingPlace: admitted.place, metrics: metrics)],
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: limits.maximumHeaderSize, maxHeaderListSize: limits.maximumHeaderSize, maxHeaderFieldCount: 100)))
        return channel.eventLoop.makeCompletedFuture {
            let tls = NIOSSLServerHandler(
                context: sslContext,
                customVerificationCallback: { _, promise in promise.succeed(.certificateVerified) },
                configuration: .init())
            try channel.pipeline.syncOperations.addHandlers([tls, PeerCertificateRecorder(tls: tls)])
        }.flatMap {
            connection.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }

    var responder: HTTPChannelHandler.Responder { base.responder }
}

/// Records the peer certificate when the TLS handshake completes (on the connection's event loop),
/// then leaves the pipeline.
private final class PeerCertificateRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let tls: NIOSSLServerHandler

    init(tls: NIOSSLServerHandler) {
        self.tls = tls
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Recorded before the event goes on, and before the TLS handler passes on any request.
        PresentedCertificates.shared.record(tls.peerCertificate, for: context.channel)
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// The client certificate of each open HTTPS connection, by connection: recorded when its
/// handshake completes, forgotten when it closes.
final class PresentedCertificates: Sendable {
    static let shared = PresentedCertificates()

    private let certificates = Mutex<[ObjectIdentifier: NIOSSLCertificate]>([:])

    /// Records what a connection presented (nothing, if `certificate` is nil).
    func record(_ certificate: NIOSSLCertificate?, for channel: any Channel) {
        certificates.withLock { $0[ObjectIdentifier(channel)] = certificate }
    }

    /// Forgets a closed connection (before its channel can be freed and its identity reused).
    func close(_ channel: any Channel) {
        _ = certificates.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// The certificate the connection presented; nil if it presented none, or if the connection
    /// was not set up by ``ClientCertificateTLSChannel``.
    func certificate(of channel: any Channel) -> NIOSSLCertificate? {
        certificates.withLock { $0[ObjectIdentifier(channel)] }
    }
}
