import HallmarkCore
import HallmarkStore
import Logging
import MQTTCore
import NIOCore
import NIOSSL

import Foundation

/// What the TLS layer learnt about the client, filled in by the certificate check during the
/// handshake and read when CONNECT arrives.
final class PeerBox: @unchecked Sendable {
    var peer: TrustStore.VerifiedPeer?
}

/// One client connection: the CONNECT handshake, authorisation of every action, and delivery of
/// the session's messages. Everything here runs on the connection's event loop.
final class MQTTConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Packet
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Listener { case tls, plain }

    /// `authenticating` while the registry is read for the certificate, or a certificate of a
    /// registered CA is being recorded (JITR/JITP), off the event loop; the client's packets wait
    /// for the outcome.
    enum State { case awaitingConnect, authenticating, connected, closed }

    let broker: Broker
    let peerBox: PeerBox
    let listener: Listener
    let plainAuthorizerPolicies: [Policy]
    var state = State.awaitingConnect
    var context: ChannelHandlerContext?
    var version = MQTTVersion.v311
    var session: Session?
    /// This connection as its session (and the sessions it publishes to) know it.
    var handle: ConnectionHandle?
    /// Reading held back by a congested subscriber (flow control), and whether a read waits.
    var readsPaused = false
    var readHeld = false
    var pauseCount = 0
    /// Packets read before the pause took effect, handled in order once reading resumes.
    var pausedPackets = CircularBuffer<Packet>(initialCapacity: 1)  // grows only for a paused publisher
    var authorizer: Authorizer?
    var identity: ConnectionIdentity?
    var clientID = ""
    var will: Will?
    var willDelay: UInt32 = 0
    var sessionExpiry: UInt32 = 0
    var topicAliases: [UInt16: String] = [:]
    /// Aliases this connection set toward its client, and how many the client allows (MQTT 5).
    var outboundAliases: [String: UInt16] = [:]
    var clientTopicAliasMaximum: UInt16 = 0
    var awaitingRelease: Set<UInt16> = []
    var clientMaximumPacketSize = Int.max
    var remoteAddress = "?"
    var lastDenialLogged: NIODeadline?
    var heldPackets: [Packet] = []
    var outbound: ByteBuffer?
    /// Acknowledgements made room in the in-flight window during this read.
    var drainAfterRead = false
    static let outboundChunk = 16 * 1024
    var deniedSinceLogged = 0

    init(broker: Broker, peerBox: PeerBox, listener: Listener, plainPolicies: [Policy]) {
        self.broker = broker
        self.peerBox = peerBox
        self.listener = listener
        self.plainAuthorizerPolicies = plainPolicies
    }

    /// The session and topic space of clients on the plain listener.
    static let plainListenerSpace = "\u{0}plain-listener"

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteAddress = context.channel.remoteAddress?.description ?? "?"
        // A client has ten seconds to send CONNECT.
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { [weak self] in
            guard let self, self.state == .awaitingConnect else { return }
            self.context?.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        switch state {
        case .awaitingConnect:
            guard case .connect(let connect) = packet else { return fail(.protocolError, "the first packet must be CONNECT") }
            handleConnect(connect)
        case .authenticating:
            guard heldPackets.count < 1000 else { return fail(.receiveMaximumExceeded, "too many packets before CONNACK") }
            heldPackets.append(packet)
        case .connected:
            if (readsPaused || !pausedPackets.isEmpty) && !packet.bypassesFlowControl {
                pausedPackets.append(packet)
            } else {
                handle(packet)
            }
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if drainAfterRead {
            drainAfterRead = false
            drain(flush: false)
        }
        flushOutbound()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, state == .connected {
            closeWithReason(.keepAliveTimeout, "no packet within 1.5 times the keep-alive")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? MQTTProtocolError {
            if state == .awaitingConnect, error.reason == .unsupportedProtocolVersion {
                // A 3.1.1-format CONNACK with return code 1 is what any client version understands.
                var buffer = context.channel.allocator.buffer(capacity: 4)
                Packet.connack(ConnAckPacket(reason: .unsupportedProtocolVersion)).encode(version: .v311, into: &buffer)
                context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                state = .closed
                return
            }
            fail(error.reason, error.message)
            return
        }
        // TLS failures and resets: the certificate check has already logged its own refusal.
        broker.logger.debug("connection \(remoteAddress) ended: \(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasConnected = state == .connected
        state = .closed
        if let identity { broker.clones.disconnected(fingerprint: identity.fingerprint, connection: ObjectIdentifier(self)) }
        guard wasConnected, let session else { return }
        let stillOurs = session.detach(ObjectIdentifier(self))
        if let will { scheduleWill(will, session: session) }
        // A session taken over belongs to the new connection: its life is no longer ours to end.
        guard stillOurs else {
            context.fireChannelInactive()
            return
        }
        if sessionExpiry == 0 {
            broker.removeSession(session)
        } else if sessionExpiry != .max {
            let generation = session.generation
            let broker = self.broker
            context.eventLoop.scheduleTask(in: .seconds(Int64(sessionExpiry))) {
                broker.expireSession(session, generation: generation)
            }
        }
        context.fireChannelInactive()
    }

    private func scheduleWill(_ will: Will, session: Session) {
        let broker = self.broker
        let tenant = session.tenant
        let message = BrokerMessage(will: will, publisher: session.key, now: .now())
        // MQTT 5 will delay: held back while the session lives; a client resuming in time cancels it.
        let delay = min(willDelay, sessionExpiry)
        guard delay > 0, let context else {
            broker.publish(message, tenant: tenant)
            return
        }
        let generation = session.generation
        context.eventLoop.scheduleTask(in: .seconds(Int64(delay))) {
            if session.isAway(since: generation) { broker.publish(message, tenant: tenant) }
        }
    }

    // MARK: Sending

    /// Encodes a packet into the outbound buffer; ``flushOutbound()`` writes it. Packets sent in one
    /// turn of the event loop leave in one write, so in as few TLS records as their size allows.
    func send(_ packet: Packet) {
        guard let context else { return }
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 1024) }
        packet.encode(version: version, into: &outbound!)
    }

    /// Writes what ``send(_:)`` encoded, and flushes.
    func flushOutbound() {
        guard let context else { return }
        if let buffer = outbound, buffer.readableBytes > 0 {
            outbound = nil
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        context.flush()
    }

    /// Writes the session's queued messages, as many as the client's window and the socket allow.
    func drain(flush: Bool = true) {
        guard state == .connected, let context, let session else { return }
        let now = NIODeadline.now()
        var wrote = false
        while context.channel.isWritable {
            let batch = session.takeForDelivery(limit: 256, now: now)
            if batch.isEmpty { break }
            for publish in batch {
                if clientMaximumPacketSize != .max,
                   Packet.publish(publish).encodedSize(version: version) > clientMaximumPacketSize {
                    // MQTT 5.0 §3.1.2.11.4: a message too large for the client is discarded.
                    if let id = publish.packetID { session.discard(id) }
                    continue
                }
                send(.publish(clientTopicAliasMaximum > 0 ? aliased(publish) : publish))
                wrote = true
                if outbound?.readableBytes ?? 0 >= Self.outboundChunk { flushOutbound() }
            }
        }
        if wrote && flush { flushOutbound() }
    }

    /// A PUBLISH with the topic alias of its topic toward this client (MQTT 5.0 §3.3.2.3.4): the
    /// first message of a topic names it and sets an alias, later ones send the alias alone, as
    /// long as the client's Topic Alias Maximum leaves aliases to set.
    private func aliased(_ publish: PublishPacket) -> PublishPacket {
        var publish = publish
        if let alias = outboundAliases[publish.topic] {
            publish.topic = ""
            publish.properties.topicAlias = alias
        } else if outboundAliases.count < Int(clientTopicAliasMaximum) {
            let alias = UInt16(outboundAliases.count + 1)
            outboundAliases[publish.topic] = alias
            publish.properties.topicAlias = alias
        }
        return publish
    }

    /// Ends the connection on the broker's initiative (take-over, revocation).
    func closeByBroker(reason: ReasonCode, message: String) {
        guard state == .connected else { return }
        closeWithReason(reason, message)
    }

    /// Sends DISCONNECT with a reason (MQTT 5) and closes. The will is published.
    /// - Parameter linger: Close this side first and the connection a second later, so that a
    ///   client still writing (acknowledging what it was sent) reads the DISCONNECT and its reason
    ///   rather than failing on a broken pipe. What it sends meanwhile is read and discarded.
    func closeWithReason(_ reason: ReasonCode, _ message: String, linger: Bool = false) {
        guard let context, state != .closed else { return }
        if version == .v5 && state == .connected {
            var properties = Properties()
            properties.reasonString = message
            send(.disconnect(ReasonPacket(reason: reason, properties: properties)))
        }
        flushOutbound()
        guard linger else { return context.close(promise: nil) }
        let channel = context.channel
        channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    /// A protocol violation: log it, tell an MQTT 5 client why, close.
    func fail(_ reason: ReasonCode, _ message: String) {
        broker.record(AuditEvent(
            at: Date(), tenant: identity?.tenant ?? Registry.defaultTenant, action: .mqttProtocol, decision: .refuse,
            code: HallmarkError.Code.protocolViolation.rawValue, udid: identity?.udid, thing: identity?.thingName,
            serial: identity?.serial, source: remoteAddress, detail: "\(message) (reason \(reason))"))
        closeWithReason(reason, message, linger: true)
        state = .closed
    }

    // MARK: CONNECT

    private func handleConnect(_ connect: ConnectPacket) {
        version = connect.version
        if connect.properties.authenticationMethod != nil {
            return refuseConnect(.badAuthenticationMethod, HallmarkError(
                .notAuthorized, "Enhanced authentication (AUTH) is not used by Hallmark.",
                remedy: "Connect without an authentication method; the client certificate is the credential."))
        }
        var clientID = connect.clientID
        var assigned: String?
        if clientID.isEmpty {
            guard connect.cleanStart else {
                return refuseConnect(.clientIdentifierNotValid, HallmarkError(
                    .notAuthorized, "An empty client id needs a clean session.", remedy: "Connect with the thing's name as client id."))
            }
            clientID = "hallmark-" + UUID().uuidString.lowercased()
            assigned = clientID
        }
        self.clientID = clientID
        guard listener == .tls else {
            let authorizer = Authorizer(
                policies: plainAuthorizerPolicies, context: Policy.Context(thingName: nil, clientID: clientID, certificateCommonName: nil))
            return finishConnect(connect, assigned: assigned, authorizer: authorizer)
        }
        guard let peer = peerBox.peer else {
            return refuseConnect(.notAuthorized, HallmarkError(
                .clientCertificateRequired, "No verified client certificate.", remedy: "Connect with the device certificate."))
        }
        if let known = broker.cachedIdentity(fingerprint: peer.fingerprint) {
            return admit(connect, assigned: assigned, identity: known, peer: peer)
        }
        // The registry is read off the event loop; the client's packets wait meanwhile.
        guard let context else { return }
        state = .authenticating
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let broker = self.broker
        Task {
            let found = Result { try broker.identity(fingerprint: peer.fingerprint) }
            loop.execute { handler.value.identityResolved(found, connect: connect, assigned: assigned, peer: peer) }
        }
    }

    /// The registry's answer for a CONNECT's certificate, back on the event loop.
    private func identityResolved(
        _ found: Result<ConnectionIdentity?, any Error>, connect: ConnectPacket, assigned: String?, peer: TrustStore.VerifiedPeer
    ) {
        // The client may have gone while the registry was read.
        guard state == .authenticating else { return }
        switch found {
        case .success(let identity?):
            admit(connect, assigned: assigned, identity: identity, peer: peer)
        case .success(nil) where TrustStore.isHallmark(peer.caID):
            refuseConnect(.notAuthorized, HallmarkError(
                .certificateUnknown, "Certificate \(peer.serial) is not in the registry.",
                remedy: "Connect with the certificate Hallmark issued to this device."))
        case .success(nil):
            autoRegister(connect, assigned: assigned, peer: peer)
        case .failure(let error):
            broker.logger.error("registry read failed: \(error)")
            refuseConnect(.serverUnavailable, HallmarkError(
                .internalError, "The registry could not be read.", remedy: "Try again later.", underlying: error))
        }
    }

    /// Decides on a known certificate and, when it may connect, opens the session.
    func admit(_ connect: ConnectPacket, assigned: String?, identity: ConnectionIdentity, peer: TrustStore.VerifiedPeer) {
        self.identity = identity
        switch ConnectDecision.decide(identity: identity, clientID: clientID, peer: peer) {
        case .success(let authorizer): finishConnect(connect, assigned: assigned, authorizer: authorizer)
        case .failure(let error): refuseConnect(.notAuthorized, error)
        }
    }

    /// Opens the session of an authorised client and answers CONNACK.
    private func finishConnect(_ connect: ConnectPacket, assigned: String?, authorizer: Authorizer) {
        let clientID = self.clientID
        self.authorizer = authorizer
        if let will = connect.will, !authorizer.decide(.publish, will.topic).isAllowed || ReservedTopics.refusesPublish(will.topic) {
            return refuseConnect(.notAuthorized, HallmarkError(
                .notAuthorized, "The will topic \(will.topic) is not one this thing may publish to.",
                remedy: "Use a will topic inside the thing's own topics."))
        }

        will = connect.will
        willDelay = connect.will?.properties.willDelayInterval ?? 0
        if connect.version == .v5 {
            sessionExpiry = connect.properties.sessionExpiryInterval ?? 0
            clientMaximumPacketSize = connect.properties.maximumPacketSize.map(Int.init) ?? .max
        } else {
            sessionExpiry = connect.cleanStart ? 0 : .max
        }
        let window = connect.version == .v5
            ? Int(connect.properties.receiveMaximum ?? 65535) : broker.configuration.maximumInflight311

        guard let context else { return }
        let connection = ConnectionHandle(
            eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop), id: ObjectIdentifier(self))
        // Plain-listener clients get a topic space of their own: they never see devices' traffic.
        let tenant = identity?.tenant ?? (listener == .plain ? Self.plainListenerSpace : Registry.defaultTenant)
        let (session, present, previous) = broker.openSession(
            tenant: tenant, clientID: clientID, cleanStart: connect.cleanStart, handle: connection, authorizer: authorizer, window: window)
        // Recorded before the old connection is closed, so the identity is never seen as gone between the two.
        if let identity,
            let suspicion = broker.clones.connected(
                fingerprint: identity.fingerprint, connection: ObjectIdentifier(self), clientID: clientID, source: remoteAddress,
                tookOver: previous != nil)
        {
            broker.suspectClone(identity, suspicion)
        }
        previous?.close(reason: .sessionTakenOver, message: "another connection took over client id \(clientID)")
        self.session = session
        self.handle = connection
        state = .connected

        // Held to the configured bounds; MQTT 5 clients are told of a changed value.
        let keepAlive = broker.configuration.keepAlive(requested: connect.keepAlive)
        let timeout = TimeAmount.milliseconds(Int64(keepAlive) * 1500)
        try? context.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: timeout), position: .before(self))
        var properties = Properties()
        if connect.version == .v5 {
            if keepAlive != connect.keepAlive { properties.serverKeepAlive = keepAlive }
            clientTopicAliasMaximum = connect.properties.topicAliasMaximum ?? 0
            properties.assignedClientIdentifier = assigned
            properties.maximumPacketSize = UInt32(broker.configuration.maximumPacketSize)
            properties.topicAliasMaximum = UInt16(broker.configuration.topicAliasMaximum)
            properties.receiveMaximum = UInt16(clamping: broker.configuration.receiveMaximum)
            properties.retainAvailable = 1
            properties.wildcardSubscriptionAvailable = 1
            properties.subscriptionIdentifierAvailable = 1
            properties.sharedSubscriptionAvailable = 1
        }
        send(.connack(ConnAckPacket(sessionPresent: present, reason: .success, properties: properties)))
        if present {
            for packet in session.retransmissions(now: .now()) { send(packet) }
        }
        flushOutbound()
        broker.record(AuditEvent(
            at: Date(), tenant: identity?.tenant ?? Registry.defaultTenant, action: .mqttConnect, decision: .allow, code: "connected",
            udid: identity?.udid, thing: identity?.thingName, serial: identity?.serial, source: remoteAddress,
            detail: "client id \(clientID), MQTT \(connect.version == .v5 ? "5" : "3.1.1"), session \(present ? "resumed" : "new")"))
        let held = heldPackets
        heldPackets = []
        for packet in held where state == .connected { handle(packet) }
        drain()
        flushOutbound()
    }

    func refuseConnect(_ reason: ReasonCode, _ error: HallmarkError) {
        let peer = peerBox.peer
        broker.record(AuditEvent(
            at: Date(), tenant: identity?.tenant ?? Registry.defaultTenant, action: .mqttConnect, decision: .refuse,
            code: error.code.rawValue, udid: identity?.udid, thing: identity?.thingName, serial: identity?.serial ?? peer?.serial,
            source: remoteAddress, detail: "\(error.reason) (client id \(clientID))"))
        var properties = Properties()
        if version == .v5 { properties.reasonString = "\(error.code): \(error.reason) \(error.remedy)" }
        send(.connack(ConnAckPacket(reason: reason, properties: properties)))
        flushOutbound()
        context?.close(promise: nil)
        state = .closed
    }
}
