import HallmarkCore
import HallmarkHTTP
import HallmarkStore
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

import Foundation

/// The composition root: opens the registry, unlocks the CA, and runs every service in one
/// `ServiceGroup` that shuts down gracefully on SIGINT and SIGTERM.
public struct HallmarkServer: Sendable {
    public let configuration: ServerConfiguration
    public let registry: Registry
    public let authority: IssuingAuthority
    let passphrase: Passphrase
    let logger: Logger

    /// Prepares a server from a data directory that `hallmark ca init` has set up.
    public init(configuration: ServerConfiguration, passphrase: Passphrase, logger: Logger? = nil) throws {
        self.configuration = configuration
        self.passphrase = passphrase
        var logger = logger ?? Logger(label: "hallmark")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        self.logger = logger
        let dataDirectory = URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true)
        let files = AuthorityFiles(dataDirectory: dataDirectory)
        self.authority = try files.loadIssuingAuthority(passphrase: passphrase)
        self.registry = try Registry(path: dataDirectory.appendingPathComponent("registry.sqlite").path)
    }

    /// Builds the services and the group that runs them.
    /// - Parameters:
    ///   - signals: Signals that start a graceful shutdown (none for an in-process server).
    ///   - onHTTPSRunning: Called with the bound HTTPS port.
    public func makeServiceGroup(
        signals: [UnixSignal] = [.sigterm, .sigint], onHTTPSRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> ServiceGroup {
        let files = AuthorityFiles(dataDirectory: URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true))
        let identity = try files.serverIdentity(
            authority: authority, hostNames: configuration.serverCertificateNames, passphrase: passphrase, now: Date())
        let enrollment = EnrollmentService(registry: registry, authority: authority)
        let https = try HTTPSServer.makeApplication(
            configuration: .init(host: configuration.httpsHost, port: configuration.httpsPort),
            enrollment: enrollment, registry: registry, serverChain: identity.chain, serverKey: identity.key,
            logger: logger, onRunning: onHTTPSRunning)
        return ServiceGroup(
            configuration: .init(
                services: [.init(service: https)], gracefulShutdownSignals: signals, cancellationSignals: [],
                logger: logger))
    }
}
