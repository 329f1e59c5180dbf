import HallmarkBroker
import HallmarkCore
import HallmarkHTTP
import HallmarkMetrics
import HallmarkServices
import HallmarkStore
import Hummingbird
import Logging
import NIOPosix
import ServiceLifecycle
import UnixSignals

import Foundation

/// The composition root: opens the registry, unlocks the CA, and runs every service in one
/// `ServiceGroup` that shuts down gracefully on SIGINT and SIGTERM.
public struct HallmarkServer: Sendable {
    public let configuration: ServerConfiguration
    public let registry: Registry
    /// The shared issuing CA (`ca init`'s): the default tenant's, and the TLS server certificate's issuer.
    public let authority: IssuingAuthority
    /// Every tenant's issuing CA.
    public let authorities: IssuingAuthorities
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
        let authority = try files.loadIssuingAuthority(passphrase: passphrase)
        let registry = try Registry(path: dataDirectory.appendingPathComponent("registry.sqlite").path)
        self.authority = authority
        self.registry = registry
        self.authorities = IssuingAuthorities(shared: authority, registry: registry) { tenant, certificate in
            try files.loadTenantAuthority(tenant: tenant, certificate: certificate, passphrase: passphrase)
        }
    }

    /// Hallmark's version, as `hallmark_build_info` reports it.
    public static let version = "0.1.0"

    /// The ports the listeners are bound to.
    public struct Ports: Sendable, Hashable {
        public var https: Int
        public var mqtt: Int
        public var mqttPlain: Int?
        /// The revocation listener's (plain HTTP: CRLs, OCSP).
        public var revocation: Int
        /// The Prometheus listener's, when there is one.
        public var metrics: Int? = nil
    }

    /// Builds the services and the group that runs them.
    /// - Parameters:
    ///   - signals: Signals that start a graceful shutdown (none for an in-process server).
    ///   - onRunning: Called once every listener is bound.
    public func makeServiceGroup(
        signals: [UnixSignal] = [.sigterm, .sigint], onRunning: @escaping @Sendable (Ports) async -> Void = { _ in }
    ) async throws -> ServiceGroup {
        let descriptors = FileDescriptors.raise()
        let budget = ConnectionBudget(maximum: configuration.maximumConnections ?? ConnectionBudget.forDescriptors(descriptors))
        logger.notice("connections at most \(budget.maximum), across the listeners (\(descriptors) file descriptors)")
        // The revocation listener is bound first: its address goes into every certificate issued.
        let revocation = RevocationService(store: registry, authorities: authorities, settings: configuration.revocation, logger: logger)
        let revocationListener = try await RevocationListener.bind(
            host: configuration.revocationHost, port: configuration.revocationPort, service: revocation,
            group: MultiThreadedEventLoopGroup.singleton, budget: budget, logger: logger)
        authorities.publishRevocation(at: configuration.revocationBase(boundPort: revocationListener.port))
        try await revocation.prepare()
        let metrics = FleetMetrics(version: HallmarkServer.version)
        let metricsListener: PlainHTTPListener? = if let port = configuration.metricsPort {
            try await MetricsListener.bind(host: configuration.metricsHost, port: port, metrics: metrics, group: MultiThreadedEventLoopGroup.singleton)
        } else {
            nil
        }
        let bound = PortCollector(revocation: revocationListener.port, metrics: metricsListener?.port, onComplete: onRunning)
        let files = AuthorityFiles(dataDirectory: URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true))
        let identity = try files.serverIdentity(
            authority: authority, hostNames: configuration.serverCertificateNames, passphrase: passphrase, now: Date())
        let enrollment = EnrollmentService(registry: registry, authorities: authorities)
        let log = try TransparencyLogService(
            store: registry, signer: try files.logSigner(name: configuration.logOrigin, passphrase: passphrase), logger: logger)
        try await log.catchUp(force: true)
        let https = try HTTPSServer.makeApplication(
            configuration: .init(host: configuration.httpsHost, port: configuration.httpsPort, limits: configuration.broker.limits, budget: budget),
            enrollment: enrollment, registry: registry, serverChain: identity.chain, serverKey: identity.key,
            logger: logger, log: log, firmware: (FirmwareDelivery(registry: registry, passphrase: passphrase), registry), metrics: metrics,
            onRunning: { port in await bound.https(port) })
        let defender = DefenderService(registry: registry, webhook: try configuration.alarmWebhookTarget(), metrics: metrics, logger: logger)
        let audit = AuditService(
            registry: registry, files: files, interval: configuration.auditInterval.map { .seconds($0) }, defender: defender, logger: logger)
        let broker = try BrokerService(
            configuration: configuration.broker,
            registry: registry, serverChain: identity.chain, serverKey: identity.key, hallmarkCA: authority.certificate,
            provisioner: FleetProvisioningService(
                registry: registry, authorities: authorities, hook: PreProvisioningHook(trustRoots: try configuration.provisioningHookRoots()), logger: logger),
            monitor: defender, metrics: metrics, budget: budget, logger: logger, onRunning: { tls, plain in await bound.mqtt(tls, plain) })
        metrics.addSampler { [broker] in [FleetMetrics.Sample(name: "mqtt_sessions_connected", help: "MQTT sessions with a live connection.", value: Double(broker.connectionCount))] }
        metrics.addSampler(RegistrySamples(registry: registry, audit: audit).samples)
        return ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: HTTPS, then the broker, then its background writers.
                services: broker.backgroundServices.map { .init(service: $0) }
                    + [
                        .init(service: log), .init(service: CertificateLifecycle(store: registry, logger: logger)),
                        .init(service: RolloutService(registry: registry, logger: logger)),
                        .init(service: defender),
                        .init(service: audit),
                        .init(service: revocation),
                        .init(service: revocationListener), .init(service: broker), .init(service: https),
                    ] + (metricsListener.map { [.init(service: $0)] } ?? []) + [
                    ],
                gracefulShutdownSignals: signals,
                cancellationSignals: [], logger: logger))
    }
}

/// Waits for every listener's port, then reports them together.
private actor PortCollector {
    let onComplete: @Sendable (HallmarkServer.Ports) async -> Void
    let revocationPort: Int
    let metricsPort: Int?
    var httpsPort: Int?
    var mqttPorts: (Int, Int?)?

    init(revocation: Int, metrics: Int?, onComplete: @escaping @Sendable (HallmarkServer.Ports) async -> Void) {
        self.revocationPort = revocation
        self.metricsPort = metrics
        self.onComplete = onComplete
    }

    func https(_ port: Int) async {
        httpsPort = port
        await report()
    }

    func mqtt(_ tls: Int, _ plain: Int?) async {
        mqttPorts = (tls, plain)
        await report()
    }

    private func report() async {
        guard let httpsPort, let mqttPorts else { return }
        await onComplete(
            HallmarkServer.Ports(https: httpsPort, mqtt: mqttPorts.0, mqttPlain: mqttPorts.1, revocation: revocationPort, metrics: metricsPort))
    }
}
