import HallmarkCore
import HallmarkMetrics
import HallmarkStore
import Logging
import MQTTCore
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import X509

import Foundation

/// The MQTT broker as a service of `hallmark serve`: the mutual-TLS listener (and the optional
/// loopback plain listener). Its registry watcher, telemetry writer and event writer are services
/// of their own (``backgroundServices``).
public final class BrokerService: Service, Sendable {
    let broker: Broker
    let hallmarkCA: Certificate
    let serverContext: NIOSSLContext
    let plainPolicies: [Policy]
    /// Connections in their handshake, by address (the mutual-TLS listeners).
    let pending: PendingConnections
    /// The process's connections across its listeners (nil: no limit).
    let budget: ConnectionBudget?
    let onRunning: @Sendable (_ tlsPort: Int, _ plainPort: Int?) async -> Void

    /// - Parameters:
    ///   - serverChain: The broker's TLS certificate chain (leaf first) and key.
    ///   - hallmarkCA: Hallmark's issuing CA certificate.
    public init(
        configuration: BrokerConfiguration, registry: any BrokerStore, serverChain: [Certificate], serverKey: Certificate.PrivateKey,
        hallmarkCA: Certificate, provisioner: (any FleetProvisioner)? = nil, monitor: (any SecurityMonitor)? = nil, metrics: FleetMetrics? = nil,
        budget: ConnectionBudget? = nil, logger: Logger,
        onRunning: @escaping @Sendable (_ tlsPort: Int, _ plainPort: Int?) async -> Void = { _, _ in }
    ) throws {
        let trust = TrustStore(authorities: try Self.authorities(hallmarkCA: hallmarkCA, registry: registry)) {
            try Self.authorities(hallmarkCA: hallmarkCA, registry: registry)
        }
        let telemetry = configuration.recordTelemetry ? TelemetryRecorder(registry: registry, logger: logger) : nil
        self.broker = Broker(configuration: configuration, registry: registry, trust: trust, telemetry: telemetry, provisioner: provisioner, monitor: monitor, metrics: metrics,
            logger: logger)
        monitor?.attach(broker)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try serverChain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes(), format: .der)) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(serverKey.serializeAsPEM().pemString.utf8), format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        // A client certificate is required; the check itself is Hallmark's (TrustStore).
        tls.certificateVerification = .noHostnameVerification
        // AWS IoT's ALPN for MQTT over mutual TLS on 443, and the IANA one; a client offering
        // neither (or none) is served all the same.
        tls.applicationProtocols = ["x-amzn-mqtt-ca", "mqtt"]
        self.serverContext = try NIOSSLContext(configuration: tls)
        self.plainPolicies = [try Policy(document: configuration.plainPolicy)]
        self.hallmarkCA = hallmarkCA
        self.pending = PendingConnections(limit: configuration.limits.maximumPendingPerAddress)
        self.budget = budget
        self.onRunning = onRunning
    }

    /// The broker's background work, each a service of its own for the server's `ServiceGroup`:
    /// list them before the broker, so that they shut down after it (the group shuts down in
    /// reverse order) and write what its last connections recorded. The event writer comes first.
    public var backgroundServices: [any Service] {
        [broker.events, RegistryWatcher(broker: broker, hallmarkCA: hallmarkCA), JobsNotifier(broker: broker)] + (broker.telemetry.map { [$0] } ?? [])
    }

    /// How many MQTT connections are live now.
    public var connectionCount: Int { broker.connectedSessions().count }

    /// Hallmark's shared issuing CA, each tenant's own, and the active registered OEM CAs.
    static func authorities(hallmarkCA: Certificate, registry: any BrokerStore) throws -> [TrustStore.Authority] {
        [TrustStore.Authority(id: TrustStore.hallmarkCA, certificate: hallmarkCA)]
            + (try registry.tenantIssuingCAs()).sorted { $0.key < $1.key }.map {
                TrustStore.Authority(id: TrustStore.tenantCA($0.key), certificate: $0.value)
            }
            + (try registry.registeredCAs(tenant: nil)).filter(\.active).map {
                TrustStore.Authority(id: $0.id, certificate: $0.certificate, tenant: $0.tenant)
            }
    }

    public func run() async throws {
        let configuration = broker.configuration
        let group = MultiThreadedEventLoopGroup.singleton
        let tlsChannel = try await bindTLS(host: configuration.host, port: configuration.port, group: group)
        let alpnChannel: (any Channel)? = if let alpnPort = configuration.alpnPort {
            try await bindTLS(host: configuration.host, port: alpnPort, group: group)
        } else {
            nil
        }
        let plainChannel: (any Channel)?
        if let plainPort = configuration.plainPort {
            // One event loop for every plain connection: the local development and conformance
            // listener handles its clients' packets in the order they arrive, as a single-threaded
            // broker does (MQTT orders nothing across connections; test suites often assume it).
            plainChannel = try await ServerBootstrap(group: group.next())
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture { try self.initialise(channel, listener: .plain) }
                }
                .bind(host: "127.0.0.1", port: plainPort).get()
        } else {
            plainChannel = nil
        }
        broker.logger.info("MQTT broker listening", metadata: [
            "tls": "\(tlsChannel.localAddress?.description ?? "?")",
            "plain": "\(plainChannel?.localAddress?.description ?? "off")",
            "alpn": "\(alpnChannel?.localAddress?.description ?? "off")",
        ])
        await onRunning(tlsChannel.localAddress?.port ?? configuration.port, plainChannel?.localAddress?.port)

        try await withGracefulShutdownHandler {
            try await tlsChannel.closeFuture.get()
        } onGracefulShutdown: {
            tlsChannel.close(promise: nil)
            alpnChannel?.close(promise: nil)
            plainChannel?.close(promise: nil)
            for session in self.broker.connectedSessions() {
                session.liveConnection?.close(reason: .serverShuttingDown, message: "Hallmark is shutting down")
            }
        }
    }

    private func bindTLS(host: String, port: Int, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // One read per connection per turn of the event loop: a flooding publisher cannot
            // starve the connections its messages go out on.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.initialise(channel, listener: .tls) }
            }
            .bind(host: host, port: port).get()
    }

    private func initialise(_ channel: any Channel, listener: MQTTConnectionStateMachine.Listener) throws {
        let peerBox = PeerBox()
        let sync = channel.pipeline.syncOperations
        // The plain listener is loopback only: no per-address limit there.
        let admission = ListenerAdmission(budget: budget, pending: listener == .tls ? pending : nil)
        let admitted: ListenerAdmission.Admitted
        switch admission.admit(channel.remoteAddress?.ipAddress ?? "?") {
        case .failure(let refusal):
            broker.metrics?.connectionDropped(listener: "mqtt", reason: refusal.rawValue)
            throw refusal
        case .success(let taken):
            admitted = taken
        }
        channel.closeFuture.whenComplete { _ in admitted.release() }
        if listener == .tls {
            let trust = broker.trust
            let broker = self.broker
            let remote = channel.remoteAddress?.description
            try sync.addHandler(NIOSSLServerHandler(context: serverContext, customVerificationCallback: { certificates, promise in
                guard let leaf = certificates.first, let der = try? leaf.toDERBytes() else {
                    promise.succeed(.failed)
                    return
                }
                @Sendable func conclude(_ result: Result<TrustStore.VerifiedPeer, HallmarkError>) {
                    switch result {
                    case .success(let peer):
                        peerBox.peer = peer
                        promise.succeed(.certificateVerified)
                    case .failure(let error):
                        broker.record(AuditEvent(
                            at: Date(), tenant: trust.tenant(ofIssuerOf: der) ?? Registry.defaultTenant, action: .mqttTLS,
                            decision: .refuse, code: error.code.rawValue, source: remote, detail: error.reason))
                        promise.succeed(.failed)
                    }
                }
                let now = Date()
                let first = trust.verify(leafDER: der, now: now)
                if case .failure = first, trust.wouldReload(leafDER: der, now: now) {
                    // An issuer not known yet: the CAs are read again off the event loop, and the
                    // handshake waits for the answer.
                    Task { conclude(trust.verifyReloadingIfUnknown(leafDER: der, now: now)) }
                } else {
                    conclude(first)
                }
            }))
        }
        try sync.addHandler(ByteToMessageHandler(MQTTFrameDecoder(maximumPacketSize: broker.configuration.maximumPacketSize)))
        try sync.addHandler(MQTTConnectionHandler(
            broker: broker, peerBox: peerBox, listener: listener, plainPolicies: plainPolicies, pendingPlace: admitted.place))
    }
}
