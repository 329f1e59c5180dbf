import HallmarkCore
import HallmarkStore
import MQTTCore
import NIOCore

import Foundation

/// A connected client's packets, its deliveries and its flow control.
extension MQTTConnectionStateMachine {
    /// A connected client's data (changed in place), nil in the other states.
    private var current: Connected? {
        guard case .connected(let connected) = state else { return nil }
        return connected
    }

    mutating func connectedPacketReceived(_ packet: Packet, now: NIODeadline) -> Action {
        guard let connected = current else { return .none }
        if (connected.flow.paused || !connected.flow.pending.isEmpty) && !packet.bypassesFlowControl {
            connected.flow.pending.append(packet)
            return .none
        }
        return handle(packet, connected, now: now)
    }

    /// The next packet held (before CONNACK, or while reading was paused), unless reading is paused.
    mutating func nextPending(now: NIODeadline) -> Action? {
        guard let connected = current, !connected.flow.paused, !connected.flow.pending.isEmpty else { return nil }
        return handle(connected.flow.pending.removeFirst(), connected, now: now)
    }

    private mutating func handle(_ packet: Packet, _ connected: Connected, now: NIODeadline) -> Action {
        switch packet {
        case .publish(let publish):
            if let wait = throttle(connected, now: now) {
                // Held, in order, until the bucket has a token again: nothing is dropped, the
                // client's socket fills instead.
                connected.flow.pending.prepend(packet)
                return .throttle(pauseReads(connected), for: wait)
            }
            return self.publish(publish, connected, now: now)
        case .puback(let ack):
            return acknowledge(ack.packetID, .puback, connected)
        case .pubrec(let ack):
            return acknowledge(ack.packetID, ack.reason.isFailure ? .pubrecRefused : .pubrec, connected)
        case .pubcomp(let ack):
            return acknowledge(ack.packetID, .pubcomp, connected)
        case .pubrel(let ack):
            let known = connected.awaitingRelease.remove(ack.packetID) != nil
            return .send(.pubcomp(AckPacket(packetID: ack.packetID, reason: known ? .success : .packetIdentifierNotFound)))
        case .subscribe(let subscribe):
            return self.subscribe(subscribe, connected, now: now)
        case .unsubscribe(let unsubscribe):
            return .unsubscribe(filters: unsubscribe.filters, packetID: unsubscribe.packetID)
        case .pingreq:
            return .send(.pingresp)
        case .disconnect(let disconnect):
            return self.disconnect(disconnect, connected)
        case .auth:
            return protocolViolation(.protocolError, "AUTH without enhanced authentication")
        case .connect:
            return protocolViolation(.protocolError, "second CONNECT on a connection")
        case .connack, .suback, .unsuback, .pingresp:
            return protocolViolation(.protocolError, "a server-to-client packet sent by the client")
        }
    }

    private func acknowledge(_ id: UInt16, _ ack: OutboundAck, _ connected: Connected) -> Action {
        switch connected.session.acknowledge(id, ack) {
        case .sendRelease: .send(.pubrel(AckPacket(packetID: id)))
        // The window has room again; the session drains once this read is done, in one write.
        case .done: .drainAfterRead
        case .unknown where ack == .pubrec: .send(.pubrel(AckPacket(packetID: id, reason: .packetIdentifierNotFound)))
        case .unknown: .none
        }
    }

    private mutating func publish(_ publish: PublishPacket, _ connected: Connected, now: NIODeadline) -> Action {
        var topic = publish.topic
        if version == .v5, let alias = publish.properties.topicAlias {
            guard alias > 0, Int(alias) <= configuration.topicAliasMaximum else {
                return protocolViolation(.topicAliasInvalid, "topic alias \(alias) outside 1...\(configuration.topicAliasMaximum)")
            }
            if topic.isEmpty {
                guard let known = connected.inboundAliases[alias] else { return protocolViolation(.protocolError, "topic alias \(alias) was never set") }
                topic = known
            } else {
                connected.inboundAliases[alias] = topic
            }
        }
        if publish.qos == .exactlyOnce, let id = publish.packetID, connected.awaitingRelease.contains(id) {
            // A retransmission of a QoS 2 message already routed: acknowledge, do not route again.
            return .send(.pubrec(AckPacket(packetID: id)))
        }
        if publish.qos == .exactlyOnce, connected.awaitingRelease.count >= configuration.receiveMaximum {
            // MQTT 5.0 §3.3.4: more unreleased QoS 2 messages than the Receive Maximum announced.
            return protocolViolation(.receiveMaximumExceeded, "more than \(configuration.receiveMaximum) QoS 2 messages awaiting PUBREL")
        }
        if ReservedTopics.refusesPublish(topic) || !connected.authorizer.decide(.publish, topic).isAllowed {
            let event = denial(.mqttPublish, topic, connected, now: now)
            guard version == .v5 else {
                // MQTT 3.1.1 has no way to refuse one PUBLISH; as AWS IoT does, the connection ends.
                return closeWithReason(.notAuthorized, "publish to \(topic) not authorised", event: event)
            }
            var properties = Properties()
            properties.reasonString = "not authorised to publish to \(topic)"
            let ack = publish.packetID.map { id in
                let ack = AckPacket(packetID: id, reason: .notAuthorized, properties: properties)
                return publish.qos == .atLeastOnce ? Packet.puback(ack) : .pubrec(ack)
            }
            return .refusePublish(ack: ack, event: event)
        }
        // The services' APIs live under `$`: most messages are devices' own topics and skip them.
        if topic.utf8.first == UInt8(ascii: "$"), let identity = connected.identity {
            if let action = serviceRequest(publish, topic: topic, identity: identity, connected) { return action }
        }
        if publish.qos == .exactlyOnce, let id = publish.packetID { connected.awaitingRelease.insert(id) }
        let message = BrokerMessage(publish: publish, topic: topic, publisher: connected.session.key, now: now)
        return .route(
            message, RouteAck(qos: publish.qos, packetID: publish.packetID),
            telemetry: configuration.recordTelemetry ? connected.identity.map { ($0.tenant, $0.thingName) } : nil)
    }

    /// A request to one of the services Hallmark answers on the broker (AWS IoT Jobs, fleet
    /// provisioning, Device Defender), or nil for a topic that is none of theirs.
    private func serviceRequest(_ publish: PublishPacket, topic: String, identity: ConnectionIdentity, _ connected: Connected) -> Action? {
        if let jobs = try? JobsTopic(parsing: topic) {
            return .jobs(
                JobsCall(
                    topic: jobs, payload: Array(buffer: publish.payload), tenant: identity.tenant, thing: identity.thingName, qos: publish.qos,
                    source: remoteAddress),
                ack: Self.serviceAck(publish, connected))
        }
        if let request = ProvisioningTopic(parsing: topic) {
            return .provisioning(
                FleetProvisioningRequest(
                    topic: request, payload: Array(buffer: publish.payload), tenant: identity.tenant, claimID: identity.claim?.id,
                    clientID: connected.clientID, source: remoteAddress),
                qos: publish.qos, ack: Self.serviceAck(publish, connected))
        }
        if identity.claim == nil, let report = DefenderTopic(parsing: topic) {
            return .defender(
                DefenderSubmission(
                    topic: report, payload: Array(buffer: publish.payload), tenant: identity.tenant, thing: identity.thingName,
                    fingerprint: identity.fingerprint, source: remoteAddress),
                qos: publish.qos, ack: Self.serviceAck(publish, connected))
        }
        return nil
    }

    /// The acknowledgement of a request a Hallmark service answers (it is not routed).
    private static func serviceAck(_ publish: PublishPacket, _ connected: Connected) -> Packet? {
        if publish.qos == .exactlyOnce, let id = publish.packetID { connected.awaitingRelease.insert(id) }
        return switch (publish.qos, publish.packetID) {
        case (.atLeastOnce, let id?): .puback(AckPacket(packetID: id))
        case (.exactlyOnce, let id?): .pubrec(AckPacket(packetID: id))
        default: nil
        }
    }

    /// The publish rate limit, a token bucket of `maximumPublishRate` a second holding a second's
    /// worth: nil when this publish may go now (a token is taken), else how long until one is there.
    private func throttle(_ connected: Connected, now: NIODeadline) -> TimeAmount? {
        let rate = Double(configuration.maximumPublishRate)
        guard rate > 0 else { return nil }
        let flow = connected.flow
        if let filled = flow.filled {
            let elapsed = Double((now - filled).nanoseconds) / 1e9
            connected.flow.tokens = min(rate, flow.tokens + elapsed * rate)
        } else {
            connected.flow.tokens = rate
        }
        connected.flow.filled = now
        if connected.flow.tokens >= 1 {
            connected.flow.tokens -= 1
            return nil
        }
        return .nanoseconds(Int64((1 - connected.flow.tokens) / rate * 1e9) + 1)
    }

    /// A routed PUBLISH is acknowledged (MQTT 5 says whether anyone subscribed); a publisher whose
    /// messages fill a subscriber's queue stops reading.
    mutating func routed(_ delivery: Broker.Delivery, ack: RouteAck) -> Action {
        let reason: ReasonCode = version == .v5 && delivery.sessions == 0 ? .noMatchingSubscribers : .success
        let packet: Packet? = switch (ack.qos, ack.packetID) {
        case (.atLeastOnce, let id?): .puback(AckPacket(packetID: id, reason: reason))
        case (.exactlyOnce, let id?): .pubrec(AckPacket(packetID: id, reason: reason))
        default: nil
        }
        guard delivery.holdPublisher else { return packet.map(Action.send) ?? .none }
        guard let connected = current, !connected.flow.paused else {
            return packet.map(Action.send) ?? .none
        }
        return .pauseReading(pauseReads(connected), then: packet)
    }

    /// Stops the connection's reads: the number of this pause, which its ``timerFired(.pauseEnded)`` names.
    private func pauseReads(_ connected: Connected) -> Int {
        connected.flow.paused = true
        connected.flow.pauseCount += 1
        return connected.flow.pauseCount
    }

    private func subscribe(_ subscribe: SubscribePacket, _ connected: Connected, now: NIODeadline) -> Action {
        var reasons: [ReasonCode] = []
        var accepted: [Subscription] = []
        var event: AuditEvent?
        for subscription in subscribe.subscriptions {
            // A shared subscription is authorised as the filter it shares: `$share/g/things/a/#`
            // needs what `things/a/#` needs.
            let shared = Topic.sharedSubscription(subscription.filter)
            let filter = shared?.filter ?? subscription.filter
            if !Topic.isValidFilter(subscription.filter) || (subscription.filter.hasPrefix("$share/") && shared == nil) {
                reasons.append(.topicFilterInvalid)
            } else if !connected.authorizer.decide(.subscribe, filter).isAllowed {
                event = denial(.mqttSubscribe, filter, connected, now: now) ?? event
                reasons.append(.notAuthorized)
            } else {
                reasons.append(ReasonCode(rawValue: subscription.qos.rawValue))
                accepted.append(subscription)
            }
        }
        return .subscribe(
            suback: .suback(SubAckPacket(packetID: subscribe.packetID, reasons: reasons)), accepted: accepted,
            identifier: subscribe.properties.subscriptionIdentifiers.first, event: event)
    }

    /// Which of the filters of an UNSUBSCRIBE were subscribed to.
    func unsubscribed(packetID: UInt16, existed: [Bool]) -> Action {
        .send(.unsuback(SubAckPacket(packetID: packetID, reasons: existed.map { $0 ? .success : .noSubscriptionExisted })))
    }

    private mutating func disconnect(_ disconnect: ReasonPacket, _ connected: Connected) -> Action {
        if version == .v5, let expiry = disconnect.properties.sessionExpiryInterval {
            guard connected.sessionExpiry != 0 || expiry == 0 else {
                return protocolViolation(.protocolError, "session expiry set at DISCONNECT after CONNECT asked for none")
            }
            connected.sessionExpiry = expiry
        }
        // A normal DISCONNECT discards the will; MQTT 5 reason 0x04 asks for it to be sent.
        if disconnect.reason != .disconnectWithWill { connected.will = nil }
        return .close(Close(packet: nil, version: version))
    }

    /// The event of a refused action, unless one was recorded less than a second ago (then counted).
    private func denial(_ action: EventAction, _ resource: String, _ connected: Connected, now: NIODeadline) -> AuditEvent? {
        connected.denials.sinceLogged += 1
        connected.uncountedDenials += 1
        if let last = connected.denials.lastLogged, now - last < .seconds(1) { return nil }
        connected.denials.lastLogged = now
        let count = connected.denials.sinceLogged
        connected.denials.sinceLogged = 0
        return event(
            action, .refuse, code: HallmarkError.Code.notAuthorized.rawValue, identity: connected.identity,
            detail: "\(action == .mqttPublish ? "publish" : "subscribe") \(resource) denied by policy (client id \(connected.clientID))"
                + (count > 1 ? "; \(count) denials since the last event" : ""))
    }

    // MARK: Deliveries

    /// Up to `limit` of the session's queued messages to send now, as the in-flight window allows,
    /// each with the topic alias of its topic toward the client; those too large for the client go.
    /// The refusals not yet counted for cloud-side metrics, and the connection's identity.
    mutating func takeDenials() -> (count: Int, identity: ConnectionIdentity)? {
        guard let connected = current, connected.uncountedDenials > 0, let identity = connected.identity, identity.claim == nil else { return nil }
        defer { connected.uncountedDenials = 0 }
        return (connected.uncountedDenials, identity)
    }

    mutating func nextDeliveries(limit: Int, now: NIODeadline) -> [PublishPacket] {
        guard let connected = current else { return [] }
        let batch = connected.session.takeForDelivery(limit: limit, now: now)
        if batch.isEmpty || (connected.clientMaximumPacketSize == .max && connected.clientTopicAliasMaximum == 0) { return batch }
        var out: [PublishPacket] = []
        out.reserveCapacity(batch.count)
        for publish in batch {
            if connected.clientMaximumPacketSize != .max,
               Packet.publish(publish).encodedSize(version: version) > connected.clientMaximumPacketSize {
                // MQTT 5.0 §3.1.2.11.4: a message too large for the client is discarded.
                if let id = publish.packetID { connected.session.discard(id) }
                continue
            }
            out.append(connected.clientTopicAliasMaximum > 0 ? Self.aliased(publish, connected) : publish)
        }
        return out
    }

    /// A PUBLISH with the topic alias of its topic toward this client (MQTT 5.0 §3.3.2.3.4): the
    /// first message of a topic names it and sets an alias, later ones send the alias alone, as
    /// long as the client's Topic Alias Maximum leaves aliases to set.
    private static func aliased(_ publish: PublishPacket, _ connected: Connected) -> PublishPacket {
        var publish = publish
        if let alias = connected.outboundAliases[publish.topic] {
            publish.topic = ""
            publish.properties.topicAlias = alias
        } else if connected.outboundAliases.count < Int(connected.clientTopicAliasMaximum) {
            let alias = UInt16(connected.outboundAliases.count + 1)
            connected.outboundAliases[publish.topic] = alias
            publish.properties.topicAlias = alias
        }
        return publish
    }

    // MARK: Flow control

    /// Whether the channel's request to read goes on now (not while paused: it waits for the resume).
    mutating func readRequested() -> Bool {
        guard let connected = current, connected.flow.paused else { return true }
        connected.flow.readHeld = true
        return false
    }

    /// A congested subscriber caught up, or the longest pause passed: the held packets are handled
    /// (until a new pause, if one comes).
    mutating func resumeReading() -> Action {
        guard let connected = current, connected.flow.paused else { return .none }
        connected.flow.paused = false
        return .processPending
    }

    /// After the held packets: whether a read the pause held back goes on now.
    mutating func readAfterPending() -> Bool {
        guard let connected = current, !connected.flow.paused, connected.flow.readHeld else { return false }
        connected.flow.readHeld = false
        return true
    }

    // MARK: Registry changes

    /// Decides again whether this connection may go on, after the registry changed (a certificate
    /// revoked or deactivated, a thing deactivated, a device quarantined, a policy changed). A
    /// connection no longer allowed is closed at once; one that is gets its new policies.
    /// - Parameters:
    ///   - found: The certificate's registry record, read off the event loop after the change.
    ///   - trusted: Whether the certificate's CA is still registered and active.
    mutating func registryChanged(_ found: Result<ConnectionIdentity?, any Error>, trusted: Bool) -> Action {
        guard case .connected(let connected) = state, listener == .tls, let peer = connected.peer else { return .none }
        let decision: Result<Authorizer, HallmarkError>
        switch found {
        case _ where !trusted:
            decision = .failure(HallmarkError(.certificateUntrusted, "The CA of certificate \(peer.serial) is no longer registered and active.",
                                              remedy: "Reactivate the CA, or move the device to a trusted CA."))
        case .success(let identity?):
            connected.identity = identity
            decision = ConnectDecision.decide(identity: identity, clientID: connected.clientID, peer: peer)
        case .success(nil):
            decision = .failure(HallmarkError(.certificateUnknown, "Certificate \(peer.serial) left the registry.", remedy: "Enrol again."))
        case .failure:
            return .none  // the registry could not be read; the next change checks again
        }
        switch decision {
        case .success(let authorizer):
            connected.authorizer = authorizer
            return .replaceAuthorizer(authorizer)
        case .failure(let error):
            let ended = event(
                .mqttSession, .refuse, code: error.code.rawValue, identity: connected.identity,
                detail: "live session of client id \(connected.clientID) ended: \(error.reason)")
            return closeWithReason(.administrativeAction, "\(error.code): \(error.reason)", event: ended)
        }
    }

    /// Whether a registry event concerns this connection, by its action's declared scope.
    func isAffected(by event: AuditEvent) -> Bool {
        guard isConnected, let identity, event.tenant == identity.tenant, let scope = event.action.liveEffect.sessions else { return false }
        switch scope {
        case .tenant:
            return true
        case .tenantsRegisteredCAs:
            return !TrustStore.isHallmark(identity.caID)
        case .subject:
            if let thing = event.thing, thing == identity.thingName { return true }
            if let serial = event.serial, serial == identity.serial { return true }
            if let udid = event.udid, udid == identity.udid { return true }
            return false
        }
    }
}

extension Packet {
    /// Packets handled even while the connection's reads are paused: they never publish.
    var bypassesFlowControl: Bool {
        switch self {
        case .puback, .pubrec, .pubcomp, .pingreq: true
        default: false
        }
    }
}

/// The payload AWS IoT publishes when just-in-time registration records a certificate.
struct CertificateRegisteredEvent: Codable, Sendable {
    var certificateId: String
    var caCertificateId: String
    var timestamp: Int64
    var certificateStatus: String
    var awsAccountId: String
    var certificateRegistrationTimestamp: Int64

    /// AWS IoT's JITR event (the same JSON fields; `awsAccountId` carries the tenant).
    static func message(identity: ConnectionIdentity, caID: String, now: Date) -> (message: BrokerMessage, tenant: String)? {
        let milliseconds = Int64(now.timeIntervalSince1970 * 1000)
        let event = CertificateRegisteredEvent(
            certificateId: identity.fingerprint, caCertificateId: caID, timestamp: milliseconds,
            certificateStatus: "PENDING_ACTIVATION", awsAccountId: identity.tenant, certificateRegistrationTimestamp: milliseconds)
        guard let json = try? JSONEncoder().encode(event) else { return nil }
        let message = BrokerMessage(
            topic: "$aws/events/certificates/registered/\(caID)", payload: ByteBuffer(bytes: json), qos: .atLeastOnce)
        return (message, identity.tenant)
    }
}
