import HallmarkCore
import HallmarkStore
import MQTTCore
import NIOCore

import Foundation

extension MQTTConnectionHandler {
    /// Handles a packet of a connected client.
    func handle(_ packet: Packet) {
        switch packet {
        case .publish(let publish):
            handlePublish(publish)
        case .puback(let ack):
            acknowledge(ack.packetID, type: 4)
        case .pubrec(let ack):
            if ack.reason.isFailure {
                acknowledge(ack.packetID, type: 4)  // a refused QoS 2 message ends there
                return
            }
            acknowledge(ack.packetID, type: 5)
        case .pubcomp(let ack):
            acknowledge(ack.packetID, type: 7)
        case .pubrel(let ack):
            let known = awaitingRelease.remove(ack.packetID) != nil
            send(.pubcomp(AckPacket(packetID: ack.packetID, reason: known ? .success : .packetIdentifierNotFound)))
        case .subscribe(let subscribe):
            handleSubscribe(subscribe)
        case .unsubscribe(let unsubscribe):
            guard let session else { return }
            let existed = broker.unsubscribe(session, unsubscribe.filters)
            send(.unsuback(SubAckPacket(packetID: unsubscribe.packetID, reasons: existed.map { $0 ? .success : .noSubscriptionExisted })))
        case .pingreq:
            send(.pingresp)
        case .disconnect(let disconnect):
            handleDisconnect(disconnect)
        case .auth:
            fail(.protocolError, "AUTH without enhanced authentication")
        case .connect:
            fail(.protocolError, "second CONNECT on a connection")
        case .connack, .suback, .unsuback, .pingresp:
            fail(.protocolError, "a server-to-client packet sent by the client")
        }
    }

    private func acknowledge(_ id: UInt16, type: UInt8) {
        guard let session else { return }
        switch session.acknowledge(id, type: type) {
        case .sendRelease:
            send(.pubrel(AckPacket(packetID: id)))
        case .done:
            // The window has room again; the session drains once this read is done, in one write.
            drainAfterRead = true
        case .unknown:
            if type == 5 { send(.pubrel(AckPacket(packetID: id, reason: .packetIdentifierNotFound))) }
        }
    }

    private func handlePublish(_ publish: PublishPacket) {
        guard let session, let authorizer else { return }
        var topic = publish.topic
        if version == .v5, let alias = publish.properties.topicAlias {
            guard alias > 0, Int(alias) <= broker.configuration.topicAliasMaximum else {
                return fail(.topicAliasInvalid, "topic alias \(alias) outside 1...\(broker.configuration.topicAliasMaximum)")
            }
            if topic.isEmpty {
                guard let known = topicAliases[alias] else { return fail(.protocolError, "topic alias \(alias) was never set") }
                topic = known
            } else {
                topicAliases[alias] = topic
            }
        }
        if publish.qos == .exactlyOnce, let id = publish.packetID, awaitingRelease.contains(id) {
            // A retransmission of a QoS 2 message already routed: acknowledge, do not route again.
            send(.pubrec(AckPacket(packetID: id)))
            return
        }
        if publish.qos == .exactlyOnce, awaitingRelease.count >= broker.configuration.receiveMaximum {
            // MQTT 5.0 §3.3.4: more unreleased QoS 2 messages than the Receive Maximum announced.
            return fail(.receiveMaximumExceeded, "more than \(broker.configuration.receiveMaximum) QoS 2 messages awaiting PUBREL")
        }
        if ReservedTopics.refusesPublish(topic) || !authorizer.decide(.publish, topic).isAllowed {
            recordDenial(action: .mqttPublish, resource: topic)
            guard version == .v5 else {
                // MQTT 3.1.1 has no way to refuse one PUBLISH; as AWS IoT does, the connection ends.
                return closeWithReason(.notAuthorized, "publish to \(topic) not authorised")
            }
            var properties = Properties()
            properties.reasonString = "not authorised to publish to \(topic)"
            if let id = publish.packetID {
                let ack = AckPacket(packetID: id, reason: .notAuthorized, properties: properties)
                send(publish.qos == .atLeastOnce ? .puback(ack) : .pubrec(ack))
            }
            return
        }
        let now = NIODeadline.now()
        let message = BrokerMessage(publish: publish, topic: topic, publisher: session.key, now: now)
        let delivery = broker.publish(message, tenant: session.tenant, from: handle)
        if delivery.holdPublisher { pauseReading() }
        if let identity, broker.configuration.recordTelemetry {
            broker.telemetry?.record(tenant: identity.tenant, thing: identity.thingName, topic: topic, payload: publish.payload)
        }
        let reason: ReasonCode = version == .v5 && delivery.sessions == 0 ? .noMatchingSubscribers : .success
        switch publish.qos {
        case .atMostOnce:
            break
        case .atLeastOnce:
            send(.puback(AckPacket(packetID: publish.packetID!, reason: reason)))
        case .exactlyOnce:
            awaitingRelease.insert(publish.packetID!)
            send(.pubrec(AckPacket(packetID: publish.packetID!, reason: reason)))
        }
    }

    private func handleSubscribe(_ subscribe: SubscribePacket) {
        guard let session, let authorizer else { return }
        let identifier = subscribe.properties.subscriptionIdentifiers.first
        var reasons: [ReasonCode] = []
        var accepted: [Subscription] = []
        for subscription in subscribe.subscriptions {
            // A shared subscription is authorised as the filter it shares: `$share/g/things/a/#`
            // needs what `things/a/#` needs.
            let shared = Topic.sharedSubscription(subscription.filter)
            let filter = shared?.filter ?? subscription.filter
            if !Topic.isValidFilter(subscription.filter) || (subscription.filter.hasPrefix("$share/") && shared == nil) {
                reasons.append(.topicFilterInvalid)
            } else if !authorizer.decide(.subscribe, filter).isAllowed {
                recordDenial(action: .mqttSubscribe, resource: filter)
                reasons.append(.notAuthorized)
            } else {
                reasons.append(ReasonCode(rawValue: subscription.qos.rawValue))
                accepted.append(subscription)
            }
        }
        send(.suback(SubAckPacket(packetID: subscribe.packetID, reasons: reasons)))
        if !accepted.isEmpty { broker.subscribe(session, accepted, identifier: identifier, now: .now()) }
    }

    private func handleDisconnect(_ disconnect: ReasonPacket) {
        if version == .v5, let expiry = disconnect.properties.sessionExpiryInterval {
            guard sessionExpiry != 0 || expiry == 0 else {
                return fail(.protocolError, "session expiry set at DISCONNECT after CONNECT asked for none")
            }
            sessionExpiry = expiry
        }
        // A normal DISCONNECT discards the will; MQTT 5 reason 0x04 asks for it to be sent.
        if disconnect.reason != .disconnectWithWill { will = nil }
        context?.close(promise: nil)
    }

    /// Logs a refused action. A client that keeps trying is logged at most once a second, with a count.
    private func recordDenial(action: EventAction, resource: String) {
        let now = NIODeadline.now()
        deniedSinceLogged += 1
        if let last = lastDenialLogged, now - last < .seconds(1) { return }
        lastDenialLogged = now
        let count = deniedSinceLogged
        deniedSinceLogged = 0
        broker.record(AuditEvent(
            at: Date(), tenant: identity?.tenant ?? Registry.defaultTenant, action: action, decision: .refuse,
            code: HallmarkError.Code.notAuthorized.rawValue, udid: identity?.udid, thing: identity?.thingName,
            serial: identity?.serial, source: remoteAddress,
            detail: "\(action == .mqttPublish ? "publish" : "subscribe") \(resource) denied by policy (client id \(clientID))" + (count > 1 ? "; \(count) denials since the last event" : "")))
    }
}
