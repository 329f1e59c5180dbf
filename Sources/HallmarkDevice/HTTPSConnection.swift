import HallmarkCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import X509

/// One keep-alive HTTPS/1.1 connection, used for requests one after another.
///
/// Hallmark's device side needs only this much HTTP: EST is a handful of small requests. The
/// server is verified against the trust roots given (host name or IP against its SAN).
public final class HTTPSConnection {
    /// A response: status, headers and the whole body.
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    /// TLS settings for a client, built once and shared by many connections.
    public struct ClientTLS: Sendable {
        public let context: NIOSSLContext

        /// - Parameters:
        ///   - trustRoots: The CA certificates the server must chain to.
        ///   - identity: A client certificate chain and key, for mutual TLS.
        ///   Nil trusts the system's roots.
        public init(trustRoots: [Certificate]?, identity: (chain: [Certificate], key: Certificate.PrivateKey)? = nil) throws {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let trustRoots {
                configuration.trustRoots = .certificates(try trustRoots.map { try NIOSSLCertificate(bytes: $0.derBytes(), format: .der) })
            }
            configuration.certificateVerification = .fullVerification
            if let identity {
                configuration.certificateChain = try identity.chain.map {
                    .certificate(try NIOSSLCertificate(bytes: $0.derBytes(), format: .der))
                }
                configuration.privateKey = .privateKey(
                    try NIOSSLPrivateKey(bytes: Array(identity.key.serializeAsPEM().pemString.utf8), format: .pem))
            }
            self.context = try NIOSSLContext(configuration: configuration)
        }
    }

    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private let host: String

    private init(
        inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, host: String
    ) {
        self.inbound = inbound
        self.outbound = outbound
        self.host = host
    }

    /// Opens a connection, runs `body` with it, and closes it.
    public static func with<Result>(
        host: String, port: Int, tls: ClientTLS, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (HTTPSConnection) async throws -> Result
    ) async throws -> Result {
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: port)) != nil
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: isIPAddress ? nil : host)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = HTTPSConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound, host: host)
            return try await body(connection)
        }
    }

    /// Sends a GET and hands the body to `onBody` as it arrives (a download written to disk as
    /// it comes, so a cut connection keeps what it had).
    /// - Returns: the status and headers.
    public func stream(
        _ path: String, headers extra: [(String, String)] = [], onBody: (ByteBuffer) throws -> Void
    ) async throws -> (status: Int, headers: HTTPHeaders) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        for (name, value) in extra { headers.add(name: name, value: value) }
        try await outbound.write(contentsOf: [.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)), .end(nil)])
        var head: (Int, HTTPHeaders) = (0, [:])
        while let part = try await inbound.next() {
            switch part {
            case .head(let response): head = (Int(response.status.code), response.headers)
            case .body(let buffer): if (200..<300).contains(head.0) { try onBody(buffer) }
            case .end: return head
            }
        }
        throw HallmarkError(.internalError, "The server closed the connection before the download ended.", remedy: "Retry: the download resumes.")
    }

    /// Sends one request and reads the whole response.
    public func request(
        _ method: HTTPMethod, _ path: String, headers extra: [(String, String)] = [], body: [UInt8] = []
    ) async throws -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Length", value: String(body.count))
        for (name, value) in extra { headers.add(name: name, value: value) }
        // One write of the three parts: one flush, so one TLS record and one segment, not three.
        var parts: [HTTPClientRequestPart] = [.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers))]
        if !body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)

        var response = Response(status: 0, headers: [:], body: [])
        while let part = try await inbound.next() {
            switch part {
            case .head(let head):
                response.status = Int(head.status.code)
                response.headers = head.headers
            case .body(let buffer):
                response.body.append(contentsOf: buffer.readableBytesView)
            case .end:
                return response
            }
        }
        throw HallmarkError(
            .internalError, "The server closed the connection before answering.", remedy: "Retry later.")
    }
}
