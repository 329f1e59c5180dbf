import HallmarkCore
import HallmarkMetrics
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

/// One client connection's channel handler: it feeds the connection's events to its
/// ``MQTTConnectionStateMachine`` and carries out the actions the machine returns, the writes,
/// closes, timers, the broker's routing and the registry reads (off the event loop). Everything
/// here runs on the connection's event loop.
final class MQTTConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Packet
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Machine = MQTTConnectionStateMachine

    let broker: Broker
    let peerBox: PeerBox
    var machine: Machine
    var context: ChannelHandlerContext?
    /// This connection as its session (and the sessions it publishes to) know it.
    var handle: ConnectionHandle?
    var outbound: ByteBuffer?
    /// Acknowledgements made room in the in-flight window during this read.
    var drainAfterRead = false
    /// What this connection's thing published and was delivered since Device Defender and
    /// Prometheus were last told: counted here without a lock, handed over at most every 200 ms
    /// (after a read or a drain) and when the connection ends.
    var uncounted = (sent: 0, largest: 0, delivered: 0)
    var lastCounted = NIODeadline.now()
    static let countingInterval = TimeAmount.milliseconds(200)
    static let outboundChunk = 16 * 1024
    /// The longest a publisher is held back at one time, whatever the subscriber does.
    static let maximumPause = TimeAmount.milliseconds(250)

    /// The place this connection holds among its address's connections in their handshake, given
    /// back when its CONNECT is accepted or it closes.
    var pendingPlace: ConnectionHold?

    init(broker: Broker, peerBox: PeerBox, listener: Machine.Listener, plainPolicies: [Policy], pendingPlace: ConnectionHold? = nil) {
        self.broker = broker
        self.peerBox = peerBox
        self.pendingPlace = pendingPlace
        self.machine = Machine(listener: listener, configuration: broker.configuration, plainPolicies: plainPolicies, remoteAddress: "?")
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        machine.remoteAddress = context.channel.remoteAddress?.description ?? "?"
        // A client has the handshake timeout (10 s by default) to finish TLS and send CONNECT.
        let timeout = TimeAmount.seconds(Int64(broker.configuration.limits.handshakeTimeout))
        context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self else { return }
            if self.machine.isAwaitingConnect { self.broker.metrics?.connectionDropped(listener: "mqtt", reason: "handshake_timeout") }
            self.run(self.machine.timerFired(.connectDeadline))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let peerBox = self.peerBox
        run(machine.packetReceived(unwrapInboundIn(data), peer: peerBox.peer, now: .now()))
        if let place = pendingPlace, machine.isConnected {
            place.release()
            pendingPlace = nil
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if drainAfterRead {
            drainAfterRead = false
            drain(flush: false)
        }
        flushOutbound()
        countTraffic()
    }

    /// Hands the traffic counted since the last time to the monitor and the metrics, if 200 ms
    /// have passed (or `force`).
    func countTraffic(force: Bool = false) {
        guard uncounted.sent > 0 || uncounted.delivered > 0 else { return }
        let now = NIODeadline.now()
        guard force || now - lastCounted >= Self.countingInterval else { return }
        lastCounted = now
        let counted = uncounted
        uncounted = (0, 0, 0)
        if let metrics = broker.metrics {
            if counted.sent > 0 { metrics.mqttMessagesReceived.increment(by: Int64(counted.sent)) }
            if counted.delivered > 0 { metrics.mqttMessagesDelivered.increment(by: Int64(counted.delivered)) }
        }
        guard let monitor = broker.monitor, let identity = machine.identity, identity.claim == nil else { return }
        if counted.sent > 0 { monitor.observe(tenant: identity.tenant, thing: identity.thingName, .sent(count: counted.sent, largest: counted.largest)) }
        if counted.delivered > 0 { monitor.observe(tenant: identity.tenant, thing: identity.thingName, .received(count: counted.delivered)) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            return run(machine.timerFired(.keepAlive))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? MQTTProtocolError {
            return run(machine.decodingFailed(error))
        }
        // TLS failures and resets: the certificate check has already logged its own refusal.
        broker.logger.debug("connection \(machine.remoteAddress) ended: \(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.channelInactive())
        context.fireChannelInactive()
    }

    /// Holds reads (outbound `read` events) while a congested subscriber holds this publisher back.
    func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    // MARK: Events from elsewhere (each arrives on this connection's event loop)

    /// Ends the connection on the broker's initiative (take-over, revocation).
    func closeByBroker(reason: ReasonCode, message: String) {
        run(machine.closeRequested(reason, message))
        flushOutbound()
    }

    /// A congested subscriber caught up: this publisher reads again.
    func resumeReading() {
        run(machine.resumeReading())
        flushOutbound()
    }

    /// The registry changed in a way that concerns this connection; `found` is its certificate's
    /// record, read off the loop after the change.
    func reauthorize(with found: Result<ConnectionIdentity?, any Error>) {
        if case .failure(let error) = found { broker.logger.error("registry read failed while re-checking a session: \(error)") }
        let trusted = machine.peer.map { broker.trust.trusts(caID: $0.caID) } ?? true
        run(machine.registryChanged(found, trusted: trusted))
        flushOutbound()
    }

    /// The fingerprint of the connection's verified client certificate (none on the plain listener).
    var peerFingerprint: String? { machine.peer?.fingerprint }

    func isAffected(by event: AuditEvent) -> Bool { machine.isAffected(by: event) }

    // MARK: Sending

    /// Encodes a packet into the outbound buffer; ``flushOutbound()`` writes it. Packets sent in one
    /// turn of the event loop leave in one write, so in as few TLS records as their size allows.
    func send(_ packet: Packet, version: MQTTVersion? = nil) {
        guard let context else { return }
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 1024) }
        packet.encode(version: version ?? machine.version, into: &outbound!)
    }

    /// Writes what ``send(_:version:)`` encoded, and flushes.
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
        guard let context else { return }
        let now = NIODeadline.now()
        var wrote = false
        while context.channel.isWritable {
            let batch = machine.nextDeliveries(limit: 256, now: now)
            if batch.isEmpty { break }
            uncounted.delivered += batch.count
            for publish in batch {
                send(.publish(publish))
                wrote = true
                if outbound?.readableBytes ?? 0 >= Self.outboundChunk { flushOutbound() }
            }
        }
        if wrote && flush { flushOutbound() }
        if wrote { countTraffic() }
    }
}
