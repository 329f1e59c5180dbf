import HallmarkCore
import HallmarkMetrics
import HallmarkServices
import HallmarkStore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import X509

import Foundation

/// Hallmark's HTTPS listener: EST, health, and (later) the admin API, with optional TLS client
/// certificates (required by `simplereenroll` only).
public enum HTTPSServer {
    /// Listener settings.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var limits: ConnectionLimits
        /// The process's connections across its listeners (nil: no limit).
        public var budget: ConnectionBudget?
        public init(host: String = "0.0.0.0", port: Int = 8443, limits: ConnectionLimits = .init(), budget: ConnectionBudget? = nil) {
            self.host = host
            self.port = port
            self.limits = limits
            self.budget = budget
        }
    }

    /// Builds the Hummingbird application.
    /// - Parameters:
    ///   - onRunning: Called with the bound port once listening (useful with port 0).
    public static func makeApplication(
        configuration: Configuration, enrollment: EnrollmentService, registry: any FleetStore & ManifestStore,
        serverChain: [Certificate], serverKey: Certificate.PrivateKey, logger: Logger, log: TransparencyLogService? = nil,
        firmware: (delivery: FirmwareDelivery, registry: Registry)? = nil, metrics: FleetMetrics? = nil,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router(context: HallmarkRequestContext.self)
        router.get("/healthz") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}\n")))
        }
        try ESTRoutes(enrollment: enrollment, metrics: metrics).register(on: router)
        AdminRoutes(registry: registry, clock: { Date() }).register(on: router)
        if let log { LogRoutes(log: log).register(on: router) }
        if let firmware { FirmwareRoutes(delivery: firmware.delivery, registry: firmware.registry).register(on: router) }

        return Application(
            router: router,
            server: try server(serverChain: serverChain, serverKey: serverKey, limits: configuration.limits, metrics: metrics, budget: configuration.budget),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Hallmark"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// The listener: HTTP/1.1 over TLS 1.2 or later, client certificates optional (see
    /// ``ClientCertificateTLSChannel``).
    public static func server(
        serverChain: [Certificate], serverKey: Certificate.PrivateKey, limits: ConnectionLimits = .init(), metrics: FleetMetrics? = nil,
        budget: ConnectionBudget? = nil
    ) throws -> HTTPServerBuilder {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try serverChain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes(), format: .der)) },
            privateKey: .privateKey(
                try NIOSSLPrivateKey(bytes: Array(serverKey.serializeAsPEM().pemString.utf8), format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .optionalVerification
        let sslContext = try NIOSSLContext(configuration: tls)
        return HTTPServerBuilder { responder in
            ClientCertificateTLSChannel(sslContext: sslContext, responder: responder, limits: limits, metrics: metrics, budget: budget)
        }
    }
}
