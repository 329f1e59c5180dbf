import HallmarkCore
import HallmarkStore
import MQTTCore
import NIOCore

import Foundation

/// One MQTT connection's protocol state, as a value: every event (a packet, the registry's answer,
/// a timer, the channel's end) moves it on and returns the ``Action`` its channel handler carries
/// out. It touches no socket and reads no registry; what it keeps of the client lives in its states.
struct MQTTConnectionStateMachine {
    enum Listener: Sendable { case tls, plain }

    enum State {
        case awaitingConnect
        /// The registry is read for the certificate, or a certificate of a registered CA recorded
        /// (JITR/JITP), off the event loop; the client's packets wait.
        case authenticating(PendingConnect)
        case connected(Connected)
        /// The machine decided to close; what a connected client left is ended when the channel is.
        case closing(Connected?)
        case closed
        /// Only while a state's data is changed in place (no copy of its collections).
        case modifying
    }

    /// A CONNECT received, before its session opens.
    struct PendingConnect {
        enum Stage { case resolvingIdentity, registering, openingSession(Authorizer) }
        var connect: ConnectPacket
        var clientID: String
        /// The client id the broker assigned (MQTT 5, an empty one sent), announced in CONNACK.
        var assigned: String?
        var peer: TrustStore.VerifiedPeer?
        var identity: ConnectionIdentity?
        var stage: Stage
        /// Packets sent before CONNACK, handled in order once the session opens.
        var held: CircularBuffer<Packet> = CircularBuffer(initialCapacity: 1)
    }

    /// A client whose session is open. A class, unlike the other states' data: a connected
    /// client's packets change it in place, without copying its twenty fields out of the state and
    /// back for each packet (as a struct, that copy took the broker's CPU per message under
    /// `hallmark-bench mqtt --loads qos0` from 6.2 to 7.5 µs).
    final class Connected {
        let session: Session
        var authorizer: Authorizer
        var identity: ConnectionIdentity?
        let peer: TrustStore.VerifiedPeer?
        let clientID: String
        var will: Will?
        let willDelay: UInt32
        var sessionExpiry: UInt32
        var inboundAliases: [UInt16: String] = [:]
        /// Publishes and subscriptions refused since the handler last counted them (Device
        /// Defender's `aws:num-authorization-failures`; the events are rate-limited, these are not).
        var uncountedDenials = 0
        /// Aliases set toward the client, and how many it allows (MQTT 5).
        var outboundAliases: [String: UInt16] = [:]
        let clientTopicAliasMaximum: UInt16
        let clientMaximumPacketSize: Int
        /// Inbound QoS 2 messages routed and waiting for PUBREL.
        var awaitingRelease: Set<UInt16> = []
        var flow = FlowControl()
        var denials = DenialLog()

        init(
            session: Session, authorizer: Authorizer, identity: ConnectionIdentity?, peer: TrustStore.VerifiedPeer?, clientID: String,
            will: Will?, willDelay: UInt32, sessionExpiry: UInt32, clientTopicAliasMaximum: UInt16, clientMaximumPacketSize: Int
        ) {
            self.session = session
            self.authorizer = authorizer
            self.identity = identity
            self.peer = peer
            self.clientID = clientID
            self.will = will
            self.willDelay = willDelay
            self.sessionExpiry = sessionExpiry
            self.clientTopicAliasMaximum = clientTopicAliasMaximum
            self.clientMaximumPacketSize = clientMaximumPacketSize
        }
    }

    /// Reading held back by a congested subscriber (see ``Session/enqueue``).
    struct FlowControl {
        var paused = false
        /// Whether the channel asked to read while paused.
        var readHeld = false
        var pauseCount = 0
        /// Packets read before the pause took effect (and those sent before CONNACK), in order.
        var pending = CircularBuffer<Packet>(initialCapacity: 1)
        /// The publish rate limit's bucket: publishes the client may send now, and when it was filled.
        var tokens: Double = 0
        var filled: NIODeadline?
    }

    /// A client that keeps trying what it may not is logged at most once a second, with a count.
    struct DenialLog {
        var lastLogged: NIODeadline?
        var sinceLogged = 0
    }

    /// The session and topic space of clients on the plain listener.
    static let plainListenerSpace = "\u{0}plain-listener"
    /// The prefix of the session space of a tenant's fleet provisioning claims.
    static let claimSpace = "\u{0}claim:"
    /// The most packets a client may send before its CONNACK.
    static let maximumHeldPackets = 1000

    var state = State.awaitingConnect
    /// The protocol version of the CONNECT, in which every later packet is encoded.
    var version = MQTTVersion.v311
    let listener: Listener
    let configuration: BrokerConfiguration
    let plainPolicies: [Policy]
    /// The client's address, for events.
    var remoteAddress: String

    init(listener: Listener, configuration: BrokerConfiguration, plainPolicies: [Policy], remoteAddress: String) {
        self.listener = listener
        self.configuration = configuration
        self.plainPolicies = plainPolicies
        self.remoteAddress = remoteAddress
    }

    var isConnected: Bool { if case .connected = state { true } else { false } }
    /// Still waiting for the client's CONNECT (its TLS handshake may not have finished either).
    var isAwaitingConnect: Bool { if case .awaitingConnect = state { true } else { false } }

    /// The registry's record of the client's certificate, once known.
    var identity: ConnectionIdentity? {
        switch state {
        case .authenticating(let pending): pending.identity
        case .connected(let connected), .closing(let connected?): connected.identity
        default: nil
        }
    }

    var peer: TrustStore.VerifiedPeer? {
        switch state {
        case .authenticating(let pending): pending.peer
        case .connected(let connected): connected.peer
        default: nil
        }
    }

    /// The session of a connected client.
    var session: Session? { if case .connected(let connected) = state { connected.session } else { nil } }

    // MARK: CONNECT

    /// The first packet: decides what is needed before the session opens.
    /// - Parameter peer: The client certificate the TLS handshake verified (nil on the plain listener).
    mutating func connectReceived(_ connect: ConnectPacket, peer: TrustStore.VerifiedPeer?) -> Action {
        guard case .awaitingConnect = state else { return protocolViolation(.protocolError, "second CONNECT on a connection") }
        version = connect.version
        var pending = PendingConnect(connect: connect, clientID: connect.clientID, peer: peer, stage: .resolvingIdentity)
        if connect.properties.authenticationMethod != nil {
            return refuse(pending, .badAuthenticationMethod, HallmarkError(
                .notAuthorized, "Enhanced authentication (AUTH) is not used by Hallmark.",
                remedy: "Connect without an authentication method; the client certificate is the credential."))
        }
        if connect.clientID.isEmpty {
            guard connect.cleanStart else {
                return refuse(pending, .clientIdentifierNotValid, HallmarkError(
                    .notAuthorized, "An empty client id needs a clean session.", remedy: "Connect with the thing's name as client id."))
            }
            pending.clientID = "hallmark-" + UUID().uuidString.lowercased()
            pending.assigned = pending.clientID
        }
        guard listener == .tls else {
            let authorizer = Authorizer(
                policies: plainPolicies, context: Policy.Context(thingName: nil, clientID: pending.clientID, certificateCommonName: nil))
            return openSession(pending, authorizer: authorizer)
        }
        guard let peer else {
            return refuse(pending, .notAuthorized, HallmarkError(
                .clientCertificateRequired, "No verified client certificate.", remedy: "Connect with the device certificate."))
        }
        state = .authenticating(pending)
        return .resolveIdentity(fingerprint: peer.fingerprint)
    }

    /// The registry's record of the CONNECT's certificate.
    /// - Parameter stale: The registry changed while it was read: the record may predate the change.
    mutating func identityResolved(_ found: Result<ConnectionIdentity?, any Error>, stale: Bool) -> Action {
        // The client may have gone while the registry was read.
        guard case .authenticating(var pending) = state, case .resolvingIdentity = pending.stage, let peer = pending.peer else { return .none }
        if stale { return .resolveIdentity(fingerprint: peer.fingerprint) }
        switch found {
        case .success(let identity?):
            pending.identity = identity
            return admit(pending, identity: identity, peer: peer)
        case .success(nil) where TrustStore.isHallmark(peer.caID):
            return refuse(pending, .notAuthorized, HallmarkError(
                .certificateUnknown, "Certificate \(peer.serial) is not in the registry.",
                remedy: "Connect with the certificate Hallmark issued to this device."))
        case .success(nil):
            pending.stage = .registering
            state = .authenticating(pending)
            return .autoRegister(peer)
        case .failure(let error):
            return refuse(pending, .serverUnavailable, HallmarkError(
                .internalError, "The registry could not be read.", remedy: "Try again later.", underlying: error))
        }
    }

    /// The outcome of just-in-time registration: with the CA's provisioning template the thing was
    /// created and this connection goes on (JITP); without, the certificate waits for activation,
    /// the registration is announced, and the connection is refused (JITR).
    mutating func registrationFinished(_ outcome: Result<Registry.AutoRegistration, any Error>, now: Date) -> Action {
        // The client may have gone while the registry worked; what was recorded stays recorded.
        guard case .authenticating(var pending) = state, case .registering = pending.stage, let peer = pending.peer else { return .none }
        switch outcome {
        case .success(.provisioned(let identity)), .success(.existing(let identity)):
            pending.identity = identity
            return admit(pending, identity: identity, peer: peer)
        case .success(.registered(let identity)):
            pending.identity = identity
            return refuse(pending, .notAuthorized, HallmarkError(
                .certificatePendingActivation, "Certificate \(identity.serial) is now registered and waits for activation.",
                remedy: "Activate it with `hallmark cert activate \(identity.fingerprint)` (or from a backend subscribed to "
                    + "$aws/events/certificates/registered/\(peer.caID)), then connect again."),
                announcing: CertificateRegisteredEvent.message(identity: identity, caID: peer.caID, now: now))
        case .failure(let error as HallmarkError):
            return refuse(pending, .notAuthorized, error)
        case .failure(let error):
            return refuse(pending, .serverUnavailable, HallmarkError(
                .internalError, "The certificate could not be registered.", remedy: "Try again later.", underlying: error))
        }
    }

    private mutating func admit(_ pending: PendingConnect, identity: ConnectionIdentity, peer: TrustStore.VerifiedPeer) -> Action {
        switch ConnectDecision.decide(identity: identity, clientID: pending.clientID, peer: peer) {
        case .success(let authorizer): openSession(pending, authorizer: authorizer)
        case .failure(let error): refuse(pending, .notAuthorized, error)
        }
    }

    private mutating func openSession(_ pending: PendingConnect, authorizer: Authorizer) -> Action {
        let connect = pending.connect
        if let will = connect.will, !authorizer.decide(.publish, will.topic).isAllowed || ReservedTopics.refusesPublish(will.topic) {
            return refuse(pending, .notAuthorized, HallmarkError(
                .notAuthorized, "The will topic \(will.topic) is not one this thing may publish to.",
                remedy: "Use a will topic inside the thing's own topics."))
        }
        var pending = pending
        pending.stage = .openingSession(authorizer)
        state = .authenticating(pending)
        // Plain-listener clients get a topic space of their own: they never see devices' traffic.
        // Claims' connections get one too: a claim cannot take over a device's client id.
        let tenant = pending.identity.map { $0.claim == nil ? $0.tenant : Self.claimSpace + $0.tenant }
            ?? (listener == .plain ? Self.plainListenerSpace : Registry.defaultTenant)
        let window = connect.version == .v5 ? Int(connect.properties.receiveMaximum ?? 65535) : configuration.maximumInflight311
        return .openSession(SessionRequest(
            tenant: tenant, clientID: pending.clientID, cleanStart: connect.cleanStart, authorizer: authorizer, window: window,
            identity: pending.identity))
    }

    /// What the CONNACK of an opened session says, and how long the client may stay silent.
    struct Accepted {
        var connack: Packet
        /// PUBLISHes not acknowledged and PUBRELs not completed, of a resumed session.
        var retransmissions: [Packet]
        var keepAliveTimeout: TimeAmount
        var event: AuditEvent
    }

    /// The broker opened (or resumed) the client's session: the client is connected.
    mutating func sessionOpened(_ session: Session, present: Bool, now: NIODeadline) -> Accepted? {
        guard case .authenticating(let pending) = state, case .openingSession(let authorizer) = pending.stage else { return nil }
        let connect = pending.connect
        let connected = Connected(
            session: session, authorizer: authorizer, identity: pending.identity, peer: pending.peer, clientID: pending.clientID,
            will: connect.will, willDelay: connect.will?.properties.willDelayInterval ?? 0,
            sessionExpiry: connect.version == .v5 ? connect.properties.sessionExpiryInterval ?? 0 : connect.cleanStart ? 0 : .max,
            clientTopicAliasMaximum: connect.version == .v5 ? connect.properties.topicAliasMaximum ?? 0 : 0,
            clientMaximumPacketSize: connect.version == .v5 ? connect.properties.maximumPacketSize.map(Int.init) ?? .max : .max)
        connected.flow.pending = pending.held

        // Held to the configured bounds; MQTT 5 clients are told of a changed value.
        let keepAlive = configuration.keepAlive(requested: connect.keepAlive)
        var properties = Properties()
        if connect.version == .v5 {
            if keepAlive != connect.keepAlive { properties.serverKeepAlive = keepAlive }
            properties.assignedClientIdentifier = pending.assigned
            properties.maximumPacketSize = UInt32(configuration.maximumPacketSize)
            properties.topicAliasMaximum = UInt16(configuration.topicAliasMaximum)
            properties.receiveMaximum = UInt16(clamping: configuration.receiveMaximum)
            properties.retainAvailable = 1
            properties.wildcardSubscriptionAvailable = 1
            properties.subscriptionIdentifierAvailable = 1
            properties.sharedSubscriptionAvailable = 1
        }
        state = .connected(connected)
        let identity = pending.identity
        return Accepted(
            connack: .connack(ConnAckPacket(sessionPresent: present, reason: .success, properties: properties)),
            retransmissions: present ? session.retransmissions(now: now) : [],
            keepAliveTimeout: .milliseconds(Int64(keepAlive) * 1500),
            event: event(
                .mqttConnect, .allow, code: "connected", identity: identity,
                detail: "client id \(pending.clientID), MQTT \(connect.version == .v5 ? "5" : "3.1.1"), session \(present ? "resumed" : "new")"))
    }

    private mutating func refuse(
        _ pending: PendingConnect, _ reason: ReasonCode, _ error: HallmarkError,
        announcing announcement: (message: BrokerMessage, tenant: String)? = nil
    ) -> Action {
        state = .closing(nil)
        var properties = Properties()
        if version == .v5 { properties.reasonString = "\(error.code): \(error.reason) \(error.remedy)" }
        return .refuseConnect(Refusal(
            connack: .connack(ConnAckPacket(reason: reason, properties: properties)),
            event: event(
                .mqttConnect, .refuse, code: error.code.rawValue, identity: pending.identity, serial: pending.peer?.serial,
                detail: "\(error.reason) (client id \(pending.clientID))"),
            announcement: announcement))
    }

    // MARK: The connection's life

    /// A packet from the client, in any state.
    mutating func packetReceived(_ packet: Packet, peer: @autoclosure () -> TrustStore.VerifiedPeer?, now: NIODeadline) -> Action {
        switch state {
        case .awaitingConnect:
            guard case .connect(let connect) = packet else { return protocolViolation(.protocolError, "the first packet must be CONNECT") }
            return connectReceived(connect, peer: peer())
        case .authenticating(var pending):
            guard pending.held.count < Self.maximumHeldPackets else {
                return protocolViolation(.receiveMaximumExceeded, "too many packets before CONNACK")
            }
            state = .modifying
            pending.held.append(packet)
            state = .authenticating(pending)
            return .none
        case .connected:
            return connectedPacketReceived(packet, now: now)
        case .closing, .closed:
            return .none  // a lingering close reads and discards
        case .modifying:
            preconditionFailure("re-entered while modifying")
        }
    }

    /// A timer set for this connection fired.
    mutating func timerFired(_ timer: Timer) -> Action {
        switch (timer, state) {
        case (.connectDeadline, .awaitingConnect):
            state = .closing(nil)
            return .close(Close(packet: nil, version: version))
        case (.keepAlive, .connected):
            return closeWithReason(.keepAliveTimeout, "no packet within 1.5 times the keep-alive")
        case (.pauseEnded(let count), .connected(let connected)) where connected.flow.paused && connected.flow.pauseCount == count:
            return resumeReading()
        default:
            return .none
        }
    }

    /// The broker ends the connection (session take-over, revocation).
    mutating func closeRequested(_ reason: ReasonCode, _ message: String) -> Action {
        guard isConnected else { return .none }
        return closeWithReason(reason, message)
    }

    /// A frame the decoder refused.
    mutating func decodingFailed(_ error: MQTTProtocolError) -> Action {
        if case .awaitingConnect = state, error.reason == .unsupportedProtocolVersion {
            // A 3.1.1-format CONNACK with return code 1 is what any client version understands.
            state = .closing(nil)
            return .close(Close(packet: .connack(ConnAckPacket(reason: .unsupportedProtocolVersion)), version: .v311))
        }
        return protocolViolation(error.reason, error.message)
    }

    /// The channel closed: a connected client's session is detached, its will published (or
    /// scheduled), and the session ended unless it was asked to outlive the connection.
    mutating func channelInactive() -> Action {
        let left: Connected?
        switch state {
        case .connected(let connected), .closing(let connected?): left = connected
        default: left = nil
        }
        state = .closed
        guard let left else { return .none }
        let expiry: SessionExpiry = switch left.sessionExpiry {
        case 0: .now
        case .max: .never
        case let seconds: .after(seconds)
        }
        return .ended(Ending(
            session: left.session, fingerprint: left.identity?.fingerprint,
            will: left.will.map { (BrokerMessage(will: $0, publisher: left.session.key, now: .now()), left.session.tenant) },
            // MQTT 5 will delay: held back while the session lives; a client resuming in time cancels it.
            willDelay: min(left.willDelay, left.sessionExpiry), expiry: expiry))
    }

    /// A DISCONNECT with a reason (MQTT 5) and the close; the will is published.
    mutating func closeWithReason(_ reason: ReasonCode, _ message: String, event: AuditEvent? = nil, linger: Bool = false) -> Action {
        let connected: Connected?
        switch state {
        case .closing, .closed: return .none
        case .connected(let c): connected = c
        default: connected = nil
        }
        state = .closing(connected)
        var properties = Properties()
        properties.reasonString = message
        let disconnect = version == .v5 && connected != nil ? Packet.disconnect(ReasonPacket(reason: reason, properties: properties)) : nil
        return .close(Close(packet: disconnect, version: version, event: event, linger: linger))
    }

    /// A protocol violation: recorded, an MQTT 5 client told why, the connection closed.
    mutating func protocolViolation(_ reason: ReasonCode, _ message: String) -> Action {
        let violation = event(
            .mqttProtocol, .refuse, code: HallmarkError.Code.protocolViolation.rawValue, identity: identity,
            detail: "\(message) (reason \(reason))")
        return closeWithReason(reason, message, event: violation, linger: true)
    }

    func event(
        _ action: EventAction, _ decision: AuditEvent.Decision, code: String, identity: ConnectionIdentity?, serial: String? = nil,
        detail: String
    ) -> AuditEvent {
        AuditEvent(
            at: Date(), tenant: identity?.tenant ?? Registry.defaultTenant, action: action, decision: decision, code: code,
            udid: identity?.udid, thing: identity?.thingName, serial: identity?.serial ?? serial, source: remoteAddress, detail: detail)
    }
}
