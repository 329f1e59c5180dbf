import Foundation
@testable import HallmarkBroker
import HallmarkCore
@testable import HallmarkStore
import MQTTCore
import NIOCore
import Testing

/// The MQTT connection's protocol, event by event, without a socket: what each event does to the
/// state and which action the channel handler is asked to carry out.
@Suite struct MQTTConnectionStateMachineTests {
    typealias Machine = MQTTConnectionStateMachine

    static let ownTopics = """
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/${iot:Connection.Thing.ThingName}"},
          {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "topic/things/${iot:Connection.Thing.ThingName}/*"},
          {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "topicfilter/things/${iot:Connection.Thing.ThingName}/*"}]}
        """
    static let peer = TrustStore.VerifiedPeer(
        fingerprint: "ab", caID: TrustStore.hallmarkCA, serial: "01", commonName: "DEV-1", notAfter: .distantFuture, der: [])
    static let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func identity(_ status: CertificateStatus = .active) -> ConnectionIdentity {
        ConnectionIdentity(
            tenant: "default", thingName: "DEV-1", udid: "DEV-1", serial: "01", fingerprint: "ab", caID: TrustStore.hallmarkCA,
            certificateStatus: status, thingStatus: .active, deviceStatus: .enrolled, policyDocuments: [ownTopics])
    }

    static func machine(_ configure: (inout BrokerConfiguration) -> Void = { _ in }) -> Machine {
        var configuration = BrokerConfiguration()
        configure(&configuration)
        return Machine(listener: .tls, configuration: configuration, plainPolicies: [], remoteAddress: "192.0.2.1:5000")
    }

    static func session() -> Session { Session(key: "default\u{0}DEV-1", tenant: "default", clientID: "DEV-1", maximumQueued: 100) }

    static func connect(_ version: MQTTVersion, cleanStart: Bool = true, will: Will? = nil, properties: Properties = .init()) -> ConnectPacket {
        ConnectPacket(version: version, clientID: "DEV-1", cleanStart: cleanStart, keepAlive: 60, will: will, properties: properties)
    }

    static func publish(_ topic: String, qos: QoS, id: UInt16? = nil, properties: Properties = .init()) -> Packet {
        .publish(PublishPacket(topic: topic, payload: ByteBuffer(string: "x"), qos: qos, retain: false, packetID: id, properties: properties))
    }

    /// A machine connected through the TLS listener, with the session it opened.
    static func connected(
        _ version: MQTTVersion = .v5, connect: ConnectPacket? = nil, session: Session = session(), present: Bool = false,
        _ configure: (inout BrokerConfiguration) -> Void = { _ in }
    ) -> (Machine, Session, Machine.Accepted?) {
        var machine = machine(configure)
        _ = machine.connectReceived(connect ?? Self.connect(version), peer: peer)
        _ = machine.identityResolved(.success(identity()), stale: false)
        let accepted = machine.sessionOpened(session, present: present, now: now)
        return (machine, session, accepted)
    }

    // MARK: CONNECT

    @Test func theFirstPacketMustBeConnect() {
        var machine = Self.machine()
        guard case .close(let close) = machine.packetReceived(.pingreq, peer: Self.peer, now: Self.now) else {
            Issue.record("not closed"); return
        }
        #expect(close.packet == nil)  // no DISCONNECT before CONNACK
        #expect(close.linger)
        #expect(close.event?.code == "protocol_violation")
        let readWhileClosing = machine.packetReceived(.pingreq, peer: Self.peer, now: Self.now)
        #expect(readWhileClosing.isNone)  // closing: read and discarded
        let ended = machine.channelInactive()
        #expect(ended.isNone)  // nothing was opened
    }

    @Test func packetsSentBeforeConnackWaitForTheRegistryAndAreHandledInOrder() {
        var machine = Self.machine()
        guard case .resolveIdentity("ab") = machine.connectReceived(Self.connect(.v5), peer: Self.peer) else {
            Issue.record("no registry read"); return
        }
        let pingHeld = machine.packetReceived(.pingreq, peer: nil, now: Self.now)
        #expect(pingHeld.isNone)
        let publishHeld = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .atLeastOnce, id: 1), peer: nil, now: Self.now)
        #expect(publishHeld.isNone)
        guard case .openSession(let request) = machine.identityResolved(.success(Self.identity()), stale: false) else {
            Issue.record("no session opened"); return
        }
        #expect(request.tenant == "default" && request.clientID == "DEV-1" && request.window == 65535)
        let accepted = machine.sessionOpened(Self.session(), present: false, now: Self.now)
        guard case .connack(let connack)? = accepted?.connack else { Issue.record("no CONNACK"); return }
        #expect(connack.reason == .success)
        #expect(connack.properties.receiveMaximum == 100)
        #expect(accepted?.keepAliveTimeout == .seconds(90))
        guard case .send(.pingresp)? = machine.nextPending(now: Self.now) else { Issue.record("PINGREQ not first"); return }
        guard case .route(let message, let ack, _)? = machine.nextPending(now: Self.now) else { Issue.record("PUBLISH not next"); return }
        #expect(message.topic == "things/DEV-1/a" && ack.packetID == 1)
        let nothingMore = machine.nextPending(now: Self.now)
        #expect(nothingMore == nil)
    }

    @Test func tooManyPacketsBeforeConnackEndTheConnection() {
        var machine = Self.machine()
        _ = machine.connectReceived(Self.connect(.v5), peer: Self.peer)
        for _ in 0..<Machine.maximumHeldPackets { _ = machine.packetReceived(.pingreq, peer: nil, now: Self.now) }
        guard case .close(let close) = machine.packetReceived(.pingreq, peer: nil, now: Self.now) else { Issue.record("not closed"); return }
        #expect(close.event?.detail.contains("too many packets before CONNACK") == true)
    }

    @Test func aRegistryChangeWhileTheIdentityIsReadHasItReadAgain() {
        var machine = Self.machine()
        _ = machine.connectReceived(Self.connect(.v5), peer: Self.peer)
        // Read as active, but the change feed moved on meanwhile (it may be the revocation).
        guard case .resolveIdentity("ab") = machine.identityResolved(.success(Self.identity()), stale: true) else {
            Issue.record("a stale record was used"); return
        }
        guard case .refuseConnect(let refusal) = machine.identityResolved(.success(Self.identity(.revoked)), stale: false) else {
            Issue.record("a revoked certificate connected"); return
        }
        #expect(refusal.event.code == "certificate_revoked")
        guard case .connack(let connack) = refusal.connack else { Issue.record("no CONNACK"); return }
        #expect(connack.reason == .notAuthorized)
        #expect(connack.properties.reasonString?.hasPrefix("certificate_revoked") == true)
    }

    @Test func anAnswerForAConnectionAlreadyGoneIsIgnored() {
        var machine = Self.machine()
        _ = machine.connectReceived(Self.connect(.v5), peer: Self.peer)
        _ = machine.channelInactive()
        let lateAnswer = machine.identityResolved(.success(Self.identity()), stale: false)
        #expect(lateAnswer.isNone)
    }

    @Test func anUnknownCertificateOfARegisteredCAIsRegisteredAndAnnounced() {
        var machine = Self.machine()
        var peer = Self.peer
        peer.caID = "0123abcd"
        _ = machine.connectReceived(Self.connect(.v311), peer: peer)
        guard case .autoRegister(let registering) = machine.identityResolved(.success(nil), stale: false) else {
            Issue.record("not registered"); return
        }
        #expect(registering.caID == "0123abcd")
        var pending = Self.identity(.pendingActivation)
        pending.caID = "0123abcd"
        guard case .refuseConnect(let refusal) = machine.registrationFinished(.success(.registered(pending)), now: Date()) else {
            Issue.record("a pending certificate connected"); return
        }
        #expect(refusal.event.code == "certificate_pending_activation")
        #expect(refusal.announcement?.message.topic == "$aws/events/certificates/registered/0123abcd")
    }

    @Test func anUnknownCertificateOfHallmarkIsRefused() {
        var machine = Self.machine()
        _ = machine.connectReceived(Self.connect(.v5), peer: Self.peer)
        guard case .refuseConnect(let refusal) = machine.identityResolved(.success(nil), stale: false) else {
            Issue.record("admitted"); return
        }
        #expect(refusal.event.code == "certificate_unknown")
    }

    @Test func aWillOutsideTheThingsTopicsIsRefused() {
        var machine = Self.machine()
        let will = Will(topic: "things/DEV-2/lost", payload: ByteBuffer(string: "gone"), qos: .atMostOnce, retain: false)
        _ = machine.connectReceived(Self.connect(.v5, will: will), peer: Self.peer)
        guard case .refuseConnect(let refusal) = machine.identityResolved(.success(Self.identity()), stale: false) else {
            Issue.record("admitted"); return
        }
        #expect(refusal.event.code == "not_authorized")
    }

    @Test func anUnsupportedVersionGetsA311Connack() {
        var machine = Self.machine()
        guard case .close(let close) = machine.decodingFailed(MQTTProtocolError(.unsupportedProtocolVersion, "level 3")) else {
            Issue.record("not closed"); return
        }
        #expect(close.version == .v311)
        guard case .connack(let connack)? = close.packet else { Issue.record("no CONNACK"); return }
        #expect(connack.reason == .unsupportedProtocolVersion)
    }

    @Test func theConnectDeadlineClosesOnlyAConnectionWithoutConnect() {
        var waiting = Self.machine()
        guard case .close = waiting.timerFired(.connectDeadline) else { Issue.record("not closed"); return }
        var (connected, _, _) = Self.connected()
        let deadlineWhenConnected = connected.timerFired(.connectDeadline)
        #expect(deadlineWhenConnected.isNone)
    }

    // MARK: Take-over, will, expiry

    @Test func aSessionTakenOverIsToldWhyAndItsWillPublished() {
        let will = Will(topic: "things/DEV-1/lost", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce, retain: false)
        var (machine, session, _) = Self.connected(connect: Self.connect(.v5, will: will))
        guard case .close(let close) = machine.closeRequested(.sessionTakenOver, "another connection took over") else {
            Issue.record("not closed"); return
        }
        guard case .disconnect(let disconnect)? = close.packet else { Issue.record("no DISCONNECT"); return }
        #expect(disconnect.reason == .sessionTakenOver)
        let secondClose = machine.closeRequested(.sessionTakenOver, "again")
        #expect(secondClose.isNone)
        guard case .ended(let ending) = machine.channelInactive() else { Issue.record("the session was not ended"); return }
        #expect(ending.session === session)
        #expect(ending.will?.message.topic == "things/DEV-1/lost" && ending.willDelay == 0)
        #expect(ending.expiry == .now)
    }

    @Test func theWillWaitsForTheShorterOfItsDelayAndTheSessionExpiry() {
        var willProperties = Properties()
        willProperties.willDelayInterval = 30
        let will = Will(topic: "things/DEV-1/lost", payload: ByteBuffer(string: "gone"), qos: .atMostOnce, retain: false, properties: willProperties)
        var properties = Properties()
        properties.sessionExpiryInterval = 10
        var (machine, _, _) = Self.connected(connect: Self.connect(.v5, will: will, properties: properties))
        guard case .ended(let ending) = machine.channelInactive() else { Issue.record("not ended"); return }
        #expect(ending.willDelay == 10)
        #expect(ending.expiry == .after(10))
    }

    @Test func aNormalDisconnectDiscardsTheWillAndReason4KeepsIt() {
        let will = Will(topic: "things/DEV-1/lost", payload: ByteBuffer(string: "gone"), qos: .atMostOnce, retain: false)
        for (reason, kept) in [(ReasonCode.success, false), (.disconnectWithWill, true)] {
            var (machine, _, _) = Self.connected(connect: Self.connect(.v5, will: will))
            guard case .close = machine.packetReceived(.disconnect(ReasonPacket(reason: reason)), peer: nil, now: Self.now) else {
                Issue.record("not closed"); return
            }
            guard case .ended(let ending) = machine.channelInactive() else { Issue.record("not ended"); return }
            #expect((ending.will != nil) == kept)
        }
    }

    @Test func aPersistent311SessionNeverExpiresAndExpiryCannotBeSetAtDisconnectAfterNone() {
        var (persistent, _, _) = Self.connected(.v311, connect: Self.connect(.v311, cleanStart: false))
        guard case .ended(let ending) = persistent.channelInactive() else { Issue.record("not ended"); return }
        #expect(ending.expiry == .never)

        var (machine, _, _) = Self.connected()
        var properties = Properties()
        properties.sessionExpiryInterval = 60
        guard case .close(let close) = machine.packetReceived(.disconnect(ReasonPacket(properties: properties)), peer: nil, now: Self.now)
        else { Issue.record("accepted"); return }
        guard case .disconnect(let disconnect)? = close.packet else { Issue.record("no DISCONNECT"); return }
        #expect(disconnect.reason == .protocolError)
    }

    @Test func aConnectionClosedForAViolationStillEndsItsSession() {
        var (machine, session, _) = Self.connected()
        guard case .close = machine.packetReceived(.connack(ConnAckPacket()), peer: nil, now: Self.now) else {
            Issue.record("not closed"); return
        }
        guard case .ended(let ending) = machine.channelInactive() else { Issue.record("the session was left attached"); return }
        #expect(ending.session === session)
    }

    // MARK: QoS 1 and 2

    @Test func inboundQoS2IsRoutedOnceAndReleased() {
        var (machine, _, _) = Self.connected()
        guard case .route(_, let ack, _) = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .exactlyOnce, id: 7), peer: nil, now: Self.now)
        else { Issue.record("not routed"); return }
        guard case .send(.pubrec(let pubrec)) = machine.routed(Broker.Delivery(sessions: 1), ack: ack) else { Issue.record("no PUBREC"); return }
        #expect(pubrec.packetID == 7 && pubrec.reason == .success)
        // The client sends it again (DUP): acknowledged, not routed again.
        guard case .send(.pubrec) = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .exactlyOnce, id: 7), peer: nil, now: Self.now)
        else { Issue.record("routed twice"); return }
        guard case .send(.pubcomp(let pubcomp)) = machine.packetReceived(.pubrel(AckPacket(packetID: 7)), peer: nil, now: Self.now)
        else { Issue.record("no PUBCOMP"); return }
        #expect(pubcomp.reason == .success)
        guard case .send(.pubcomp(let again)) = machine.packetReceived(.pubrel(AckPacket(packetID: 7)), peer: nil, now: Self.now)
        else { Issue.record("no PUBCOMP"); return }
        #expect(again.reason == .packetIdentifierNotFound)
    }

    @Test func aPublishNobodySubscribedToIsSaidSoInMQTT5() {
        var (machine, _, _) = Self.connected()
        guard case .route(_, let ack, _) = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .atLeastOnce, id: 3), peer: nil, now: Self.now)
        else { Issue.record("not routed"); return }
        guard case .send(.puback(let puback)) = machine.routed(Broker.Delivery(sessions: 0), ack: ack) else { Issue.record("no PUBACK"); return }
        #expect(puback.reason == .noMatchingSubscribers)
    }

    @Test func moreUnreleasedQoS2MessagesThanTheReceiveMaximumEndTheConnection() {
        var (machine, _, _) = Self.connected { $0.receiveMaximum = 2 }
        for id: UInt16 in 1...2 {
            guard case .route(_, let ack, _) = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .exactlyOnce, id: id), peer: nil, now: Self.now)
            else { Issue.record("not routed"); return }
            _ = machine.routed(Broker.Delivery(sessions: 1), ack: ack)
        }
        guard case .close(let close) = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .exactlyOnce, id: 3), peer: nil, now: Self.now),
              case .disconnect(let disconnect)? = close.packet
        else { Issue.record("a third was accepted"); return }
        #expect(disconnect.reason == .receiveMaximumExceeded)
    }

    @Test func outboundQoS1IsRetransmittedWithDupToAResumedSessionUntilAcknowledged() {
        let session = Self.session()
        var (first, _, _) = Self.connected(.v311, connect: Self.connect(.v311, cleanStart: false), session: session)
        session.enqueue(BrokerMessage(topic: "things/DEV-1/in", payload: ByteBuffer(string: "m"), qos: .atLeastOnce), qos: .atLeastOnce, retain: false, subscriptionIDs: [])
        let sent = first.nextDeliveries(limit: 10, now: Self.now)
        #expect(sent.count == 1 && sent[0].dup == false)
        _ = first.channelInactive()  // gone before PUBACK

        let (resumed, _, accepted) = Self.connected(.v311, connect: Self.connect(.v311, cleanStart: false), session: session, present: true)
        _ = resumed
        guard case .publish(let again)? = accepted?.retransmissions.first else { Issue.record("not retransmitted"); return }
        #expect(again.dup && again.packetID == sent[0].packetID)
        var machine = resumed
        guard case .drainAfterRead = machine.packetReceived(.puback(AckPacket(packetID: again.packetID!)), peer: nil, now: Self.now) else {
            Issue.record("PUBACK not taken"); return
        }
        let duplicateAck = machine.packetReceived(.puback(AckPacket(packetID: again.packetID!)), peer: nil, now: Self.now)
        #expect(duplicateAck.isNone)  // a duplicate
        #expect(session.retransmissions(now: Self.now).isEmpty)
    }

    @Test func outboundQoS2IsReleasedOnPubrecAndARefusedPubrecEndsIt() {
        var (machine, session, _) = Self.connected()
        for _ in 0..<2 {
            session.enqueue(BrokerMessage(topic: "things/DEV-1/in", payload: ByteBuffer(string: "m"), qos: .exactlyOnce), qos: .exactlyOnce, retain: false, subscriptionIDs: [])
        }
        let sent = machine.nextDeliveries(limit: 10, now: Self.now).compactMap(\.packetID)
        #expect(sent.count == 2)
        guard case .send(.pubrel(let pubrel)) = machine.packetReceived(.pubrec(AckPacket(packetID: sent[0])), peer: nil, now: Self.now) else {
            Issue.record("no PUBREL"); return
        }
        #expect(pubrel.packetID == sent[0])
        guard case .drainAfterRead = machine.packetReceived(.pubcomp(AckPacket(packetID: sent[0])), peer: nil, now: Self.now) else {
            Issue.record("PUBCOMP not taken"); return
        }
        guard case .drainAfterRead = machine.packetReceived(.pubrec(AckPacket(packetID: sent[1], reason: .unspecifiedError)), peer: nil, now: Self.now)
        else { Issue.record("a refused PUBREC left the message in flight"); return }
        #expect(session.retransmissions(now: Self.now).isEmpty)
        // A PUBREC for no message in flight gets a PUBREL saying so.
        guard case .send(.pubrel(let unknown)) = machine.packetReceived(.pubrec(AckPacket(packetID: 999)), peer: nil, now: Self.now) else {
            Issue.record("no PUBREL"); return
        }
        #expect(unknown.reason == .packetIdentifierNotFound)
    }

    // MARK: Aliases

    @Test func inboundTopicAliasesAreSetUsedAndBounded() {
        var (machine, _, _) = Self.connected { $0.topicAliasMaximum = 4 }
        func aliased(_ topic: String, _ alias: UInt16) -> Packet {
            var properties = Properties()
            properties.topicAlias = alias
            return Self.publish(topic, qos: .atMostOnce, properties: properties)
        }
        guard case .route(let set, _, _) = machine.packetReceived(aliased("things/DEV-1/a", 2), peer: nil, now: Self.now) else {
            Issue.record("not routed"); return
        }
        #expect(set.topic == "things/DEV-1/a")
        guard case .route(let used, _, _) = machine.packetReceived(aliased("", 2), peer: nil, now: Self.now) else {
            Issue.record("not routed"); return
        }
        #expect(used.topic == "things/DEV-1/a")
        var unset = machine
        guard case .close(let never) = unset.packetReceived(aliased("", 3), peer: nil, now: Self.now), case .disconnect(let d1)? = never.packet else {
            Issue.record("an unset alias was used"); return
        }
        #expect(d1.reason == .protocolError)
        guard case .close(let beyond) = machine.packetReceived(aliased("things/DEV-1/b", 5), peer: nil, now: Self.now),
              case .disconnect(let d2)? = beyond.packet
        else { Issue.record("an alias beyond the maximum was set"); return }
        #expect(d2.reason == .topicAliasInvalid)
    }

    @Test func outboundAliasesStayWithinWhatTheClientAllows() {
        var properties = Properties()
        properties.topicAliasMaximum = 1
        var (machine, session, _) = Self.connected(connect: Self.connect(.v5, properties: properties))
        for topic in ["things/DEV-1/a", "things/DEV-1/a", "things/DEV-1/b"] {
            session.enqueue(BrokerMessage(topic: topic, payload: ByteBuffer(string: "m"), qos: .atLeastOnce), qos: .atLeastOnce, retain: false, subscriptionIDs: [])
        }
        let sent = machine.nextDeliveries(limit: 10, now: Self.now)
        #expect(sent.map(\.topic) == ["things/DEV-1/a", "", "things/DEV-1/b"])
        #expect(sent.map(\.properties.topicAlias) == [1, 1, nil])
    }

    @Test func aMessageTooLargeForTheClientIsDiscarded() {
        var properties = Properties()
        properties.maximumPacketSize = 64
        var (machine, session, _) = Self.connected(connect: Self.connect(.v5, properties: properties))
        session.enqueue(BrokerMessage(topic: "things/DEV-1/big", payload: ByteBuffer(repeating: 0, count: 100), qos: .atLeastOnce), qos: .atLeastOnce, retain: false, subscriptionIDs: [])
        session.enqueue(BrokerMessage(topic: "things/DEV-1/small", payload: ByteBuffer(string: "m"), qos: .atLeastOnce), qos: .atLeastOnce, retain: false, subscriptionIDs: [])
        #expect(machine.nextDeliveries(limit: 10, now: Self.now).map(\.topic) == ["things/DEV-1/small"])
        #expect(session.retransmissions(now: Self.now).count == 1)  // only the small one is in flight
    }

    // MARK: Flow control

    @Test func aHeldBackPublisherStopsReadingAndGoesOnInOrder() {
        var (machine, _, _) = Self.connected()
        guard case .route(_, let ack, _) = machine.packetReceived(Self.publish("things/DEV-1/a", qos: .atLeastOnce, id: 1), peer: nil, now: Self.now)
        else { Issue.record("not routed"); return }
        guard case .pauseReading(let pause, then: .puback?) = machine.routed(Broker.Delivery(sessions: 1, holdPublisher: true), ack: ack) else {
            Issue.record("not paused"); return
        }
        // Another message of the same read into the same full queue: acknowledged, no second pause.
        guard case .send(.puback) = machine.routed(Broker.Delivery(sessions: 1, holdPublisher: true), ack: ack) else {
            Issue.record("paused twice"); return
        }
        #expect(machine.isConnected)
        let reads = machine.readRequested()
        #expect(reads == false)
        // Read before the pause took effect: it waits; a PINGREQ does not.
        let publishWhilePaused = machine.packetReceived(Self.publish("things/DEV-1/b", qos: .atMostOnce), peer: nil, now: Self.now)
        #expect(publishWhilePaused.isNone)
        guard case .send(.pingresp) = machine.packetReceived(.pingreq, peer: nil, now: Self.now) else { Issue.record("ping held"); return }
        let pendingWhilePaused = machine.nextPending(now: Self.now)
        #expect(pendingWhilePaused == nil)  // still paused
        let olderTimer = machine.timerFired(.pauseEnded(pause - 1))
        #expect(olderTimer.isNone)  // an older pause's timer
        guard case .processPending = machine.timerFired(.pauseEnded(pause)) else { Issue.record("not resumed"); return }
        guard case .route(let next, _, _)? = machine.nextPending(now: Self.now) else { Issue.record("held publish lost"); return }
        #expect(next.topic == "things/DEV-1/b")
        let readsAgain = machine.readAfterPending()
        #expect(readsAgain)
        let readsNow = machine.readRequested()
        #expect(readsNow)
    }

    @Test func aPublisherFasterThanTheRateLimitIsHeldNotDropped() {
        var (machine, _, _) = Self.connected { $0.maximumPublishRate = 2 }
        // A second's worth (2) goes at once; the third waits half a second, in order.
        for name in ["a", "b"] {
            guard case .route = machine.packetReceived(Self.publish("things/DEV-1/" + name, qos: .atMostOnce), peer: nil, now: Self.now)
            else { Issue.record("\(name) not routed"); return }
        }
        guard case .throttle(let pause, for: let wait) = machine.packetReceived(Self.publish("things/DEV-1/c", qos: .atMostOnce), peer: nil, now: Self.now)
        else { Issue.record("not throttled"); return }
        #expect(wait > .milliseconds(490) && wait <= .milliseconds(501))
        #expect(machine.readRequested() == false)
        let held = machine.packetReceived(Self.publish("things/DEV-1/d", qos: .atMostOnce), peer: nil, now: Self.now)
        #expect(held.isNone)  // read before the pause took effect: held behind c
        guard case .processPending = machine.timerFired(.pauseEnded(pause)) else { Issue.record("not resumed"); return }
        let later = Self.now + .milliseconds(500)
        guard case .route(let c, _, _)? = machine.nextPending(now: later) else { Issue.record("c lost"); return }
        #expect(c.topic == "things/DEV-1/c")
        // d has no token yet: throttled again, still first in line.
        guard case .throttle? = machine.nextPending(now: later) else { Issue.record("d not throttled"); return }
        guard case .processPending = machine.timerFired(.pauseEnded(pause + 1)) else { Issue.record("not resumed"); return }
        guard case .route(let d, _, _)? = machine.nextPending(now: later + .milliseconds(500)) else { Issue.record("d lost"); return }
        #expect(d.topic == "things/DEV-1/d")
        // No limit: as fast as the client sends.
        var (unlimited, _, _) = Self.connected { $0.maximumPublishRate = 0 }
        for _ in 0..<1000 {
            guard case .route = unlimited.packetReceived(Self.publish("things/DEV-1/x", qos: .atMostOnce), peer: nil, now: Self.now)
            else { Issue.record("throttled without a limit"); return }
        }
    }

    // MARK: Authorisation

    @Test func aRefusedPublishIsAcknowledgedInMQTT5AndEndsA311Connection() {
        var (v5, _, _) = Self.connected()
        guard case .refusePublish(let ack, let event) = v5.packetReceived(Self.publish("things/DEV-2/a", qos: .atLeastOnce, id: 4), peer: nil, now: Self.now),
              case .puback(let puback)? = ack
        else { Issue.record("not refused"); return }
        #expect(puback.reason == .notAuthorized)
        #expect(event?.code == "not_authorized")
        // Within a second: refused again, but not recorded again.
        guard case .refusePublish(_, let second) = v5.packetReceived(Self.publish("things/DEV-2/a", qos: .atLeastOnce, id: 5), peer: nil, now: Self.now + .milliseconds(10))
        else { Issue.record("not refused"); return }
        #expect(second == nil)

        var (v311, _, _) = Self.connected(.v311)
        guard case .close(let close) = v311.packetReceived(Self.publish("things/DEV-2/a", qos: .atLeastOnce, id: 4), peer: nil, now: Self.now) else {
            Issue.record("not closed"); return
        }
        #expect(close.packet == nil && close.event?.action == .mqttPublish)
    }

    @Test func aSubscriptionOutsideThePolicyIsRefusedAndAnInvalidFilterSaidSo() {
        var (machine, _, _) = Self.connected()
        let subscribe = SubscribePacket(packetID: 9, subscriptions: [
            Subscription(filter: "things/DEV-1/#", qos: .atLeastOnce), Subscription(filter: "things/DEV-2/#", qos: .atLeastOnce),
            Subscription(filter: "things/+x", qos: .atMostOnce)])
        guard case .subscribe(.suback(let suback), let accepted, _, let event) = machine.packetReceived(.subscribe(subscribe), peer: nil, now: Self.now)
        else { Issue.record("no SUBACK"); return }
        #expect(suback.reasons == [.grantedQoS1, .notAuthorized, .topicFilterInvalid])
        #expect(accepted.map(\.filter) == ["things/DEV-1/#"])
        #expect(event?.action == .mqttSubscribe)
    }

    @Test func aRegistryChangeEndsARevokedSessionAndGivesALiveOneItsNewPolicies() {
        var (machine, _, _) = Self.connected()
        #expect(machine.isAffected(by: AuditEvent(at: Date(), tenant: "default", action: .certificateStatus, decision: .allow, code: "x", serial: "01", detail: "")))
        #expect(!machine.isAffected(by: AuditEvent(at: Date(), tenant: "other", action: .certificateStatus, decision: .allow, code: "x", serial: "01", detail: "")))
        guard case .replaceAuthorizer = machine.registryChanged(.success(Self.identity()), trusted: true) else {
            Issue.record("policies not replaced"); return
        }
        guard case .close(let close) = machine.registryChanged(.success(Self.identity(.revoked)), trusted: true),
              case .disconnect(let disconnect)? = close.packet
        else { Issue.record("a revoked session went on"); return }
        #expect(disconnect.reason == .administrativeAction)
        #expect(close.event?.code == "certificate_revoked" && close.event?.action == .mqttSession)

        var (untrusted, _, _) = Self.connected()
        guard case .close(let closed) = untrusted.registryChanged(.success(Self.identity()), trusted: false) else {
            Issue.record("a session of an untrusted CA went on"); return
        }
        #expect(closed.event?.code == "certificate_untrusted")
    }

    @Test func theKeepAliveTimerEndsASilentClient() {
        var (machine, _, _) = Self.connected()
        guard case .close(let close) = machine.timerFired(.keepAlive), case .disconnect(let disconnect)? = close.packet else {
            Issue.record("not closed"); return
        }
        #expect(disconnect.reason == .keepAliveTimeout)
    }
}

extension MQTTConnectionStateMachine.Action {
    var isNone: Bool { if case .none = self { true } else { false } }
}
