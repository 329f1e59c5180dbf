import Hummingbird
import NIOCore
import NIOSSL
import X509

/// The request context of Hallmark's HTTPS listener: it keeps the connection's channel so a
/// handler can read the TLS client certificate and the peer address.
public struct HallmarkRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The peer address, for the event log.
    public var remoteAddress: String? {
        guard let address = channel.remoteAddress else { return nil }
        return address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? address.description
    }

    /// The client certificate presented in the TLS handshake, if any. It is not yet validated:
    /// the TLS layer only proved the client holds its key.
    public func clientCertificate() throws -> Certificate? {
        guard let peer = PresentedCertificates.shared.certificate(of: channel) else { return nil }
        return try Certificate(derEncoded: try peer.toDERBytes())
    }
}
