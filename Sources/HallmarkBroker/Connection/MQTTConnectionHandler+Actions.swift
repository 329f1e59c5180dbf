import HallmarkCore
import HallmarkStore
import MQTTCore
import NIOCore

import Foundation

extension MQTTConnectionHandler {
    /// Carries out what the state machine decided.
    func run(_ action: Machine.Action) {
        switch action {
        case .none:
            break
        case .send(let packet):
            send(packet)
        case .close(let close):
            if let event = close.event { broker.record(event) }
            countDenials()
            if let packet = close.packet { send(packet, version: close.version) }
            self.close(linger: close.linger)
        case .refuseConnect(let refusal):
            broker.record(refusal.event)
            if let (message, tenant) = refusal.announcement { broker.publish(message, tenant: tenant) }
            send(refusal.connack)
            close(linger: false)
        case .resolveIdentity(let fingerprint):
            resolveIdentity(fingerprint)
        case .autoRegister(let peer):
            autoRegister(peer)
        case .openSession(let request):
            openSession(request)
        case .route(let message, let ack, let telemetry):
            route(message, ack: ack, telemetry: telemetry)
        case .jobs(let call, let ack):
            if let ack { send(ack) }
            if let session = machine.session { broker.jobs.handle(call, session: session, broker: broker) }
        case .provisioning(let request, let qos, let ack):
            if let ack { send(ack) }
            if let session = machine.session { broker.provisioning.handle(request, qos: qos, session: session) }
        case .defender(let submission, let qos, let ack):
            if let ack { send(ack) }
            if let session = machine.session { broker.defender.handle(submission, qos: qos, session: session) }
        case .refusePublish(let ack, let event):
            if let event { broker.record(event) }
            countDenials()
            if let ack { send(ack) }
        case .subscribe(let suback, let accepted, let identifier, let event):
            if let event { broker.record(event) }
            countDenials()
            send(suback)
            if !accepted.isEmpty, let session = machine.session {
                broker.subscribe(session, accepted, identifier: identifier, now: .now())
            }
        case .unsubscribe(let filters, let packetID):
            guard let session = machine.session else { return }
            run(machine.unsubscribed(packetID: packetID, existed: broker.unsubscribe(session, filters)))
        case .drainAfterRead:
            drainAfterRead = true
        case .pauseReading(let pause, let ack):
            if let ack { send(ack) }
            endPause(pause, after: Self.maximumPause)
        case .throttle(let pause, let wait):
            broker.metrics?.mqttPublishesThrottled.increment()
            endPause(pause, after: wait)
        case .processPending:
            processPending()
        case .replaceAuthorizer(let authorizer):
            machine.session?.replaceAuthorizer(authorizer)
        case .ended(let ending):
            ended(ending)
        }
    }

    /// Counts the refused publishes and subscriptions for Device Defender's cloud-side metrics.
    /// Ends pause number `pause` of this connection's reads after `wait` (unless a later one replaced it).
    private func endPause(_ pause: Int, after wait: TimeAmount) {
        context?.eventLoop.assumeIsolated().scheduleTask(in: wait) { [weak self] in
            guard let self else { return }
            self.run(self.machine.timerFired(.pauseEnded(pause)))
            self.flushOutbound()
        }
    }

    private func countDenials() {
        guard broker.monitor != nil || broker.metrics != nil, let (count, identity) = machine.takeDenials() else { return }
        broker.metrics?.mqttAuthorizationDenials.increment(by: Int64(count))
        guard let monitor = broker.monitor else { return }
        for _ in 0..<count { monitor.observe(tenant: identity.tenant, thing: identity.thingName, .authorizationFailure) }
    }

    private func close(linger: Bool) {
        guard let context else { return }
        flushOutbound()
        guard linger else { return context.close(promise: nil) }
        let channel = context.channel
        channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    /// Handles the packets held before CONNACK or during a pause, until a new pause if one comes;
    /// then reads again if a read waited.
    private func processPending() {
        while let action = machine.nextPending(now: .now()) { run(action) }
        if machine.readAfterPending() { context?.read() }
    }

    // MARK: CONNECT

    /// The certificate's registry record: from the broker's cache at once, or read off the event
    /// loop (the client's packets wait). A read the registry's change feed overtook is read again.
    private func resolveIdentity(_ fingerprint: String) {
        if let known = broker.cachedIdentity(fingerprint: fingerprint) {
            return run(machine.identityResolved(.success(known), stale: false))
        }
        let broker = self.broker
        let generation = broker.registryGeneration
        offTheLoop {
            let found = Result { try broker.identity(fingerprint: fingerprint) }
            if case .failure(let error) = found { broker.logger.error("registry read failed: \(error)") }
            return found
        } then: { machine, found in
            machine.identityResolved(found, stale: broker.registryGeneration != generation)
        }
    }

    /// Records the certificate of a registered CA off the event loop (JITR/JITP).
    private func autoRegister(_ peer: TrustStore.VerifiedPeer) {
        let registry = broker.registry
        let logger = broker.logger
        let source = machine.remoteAddress
        offTheLoop {
            do {
                return .success(try await registry.autoRegister(certificateDER: peer.der, caID: peer.caID, source: source, now: Date()))
            } catch {
                if !(error is HallmarkError) { logger.error("just-in-time registration failed: \(error)") }
                return Result<Registry.AutoRegistration, any Error>.failure(error)
            }
        } then: { machine, outcome in
            machine.registrationFinished(outcome, now: Date())
        }
    }

    /// Does registry work in a task, off the event loop, and hands its outcome back to the state
    /// machine on the connection's loop.
    private func offTheLoop<Outcome: Sendable>(
        _ work: @escaping @Sendable () async -> Outcome,
        then event: @escaping @Sendable (inout Machine, Outcome) -> Machine.Action
    ) {
        guard let context else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        Task {
            let outcome = await work()
            loop.execute {
                let handler = handler.value
                handler.run(event(&handler.machine, outcome))
                handler.flushOutbound()
            }
        }
    }

    /// Opens the session in the broker, takes it over from a connection that had it, and answers CONNACK.
    private func openSession(_ request: Machine.SessionRequest) {
        guard let context else { return }
        let connection = ConnectionHandle(
            eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop), id: ObjectIdentifier(self))
        let (session, present, previous) = broker.openSession(
            tenant: request.tenant, clientID: request.clientID, cleanStart: request.cleanStart, handle: connection,
            authorizer: request.authorizer, window: request.window)
        // Recorded before the old connection is closed, so the identity is never seen as gone between the two.
        // A claim is shared by design: many devices connect with it at once.
        if let identity = request.identity, identity.claim == nil,
            let suspicion = broker.clones.connected(
                fingerprint: identity.fingerprint, connection: ObjectIdentifier(self), clientID: request.clientID,
                source: machine.remoteAddress, tookOver: previous != nil)
        {
            broker.suspectClone(identity, suspicion)
        }
        previous?.close(reason: .sessionTakenOver, message: "another connection took over client id \(request.clientID)")
        handle = connection
        guard let accepted = machine.sessionOpened(session, present: present, now: .now()) else { return }
        try? context.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: accepted.keepAliveTimeout), position: .before(self))
        send(accepted.connack)
        for packet in accepted.retransmissions { send(packet) }
        flushOutbound()
        broker.record(accepted.event)
        processPending()
        drain()
        flushOutbound()
    }

    // MARK: Publishing

    private func route(_ message: BrokerMessage, ack: Machine.RouteAck, telemetry: (tenant: String, thing: String)?) {
        guard let session = machine.session else { return }
        if let telemetry {
            broker.telemetry?.record(tenant: telemetry.tenant, thing: telemetry.thing, topic: message.topic, payload: message.payload)
        }
        uncounted.sent += 1
        uncounted.largest = max(uncounted.largest, message.payload.readableBytes)
        let delivery = broker.publish(message, tenant: session.tenant, from: handle)
        run(machine.routed(delivery, ack: ack))
    }

    /// The connection ended: its session is detached, the will published or scheduled, and the
    /// session ended now, later or never.
    private func ended(_ ending: Machine.Ending) {
        countTraffic(force: true)
        if let monitor = broker.monitor, let identity = machine.identity, identity.claim == nil {
            monitor.observe(tenant: identity.tenant, thing: identity.thingName, .disconnect)
        }
        if let fingerprint = ending.fingerprint {
            broker.clones.disconnected(fingerprint: fingerprint, connection: ObjectIdentifier(self))
        }
        let session = ending.session
        let stillOurs = session.detach(ObjectIdentifier(self))
        let broker = self.broker
        let generation = session.generation
        if let (message, tenant) = ending.will {
            if ending.willDelay == 0 {
                broker.publish(message, tenant: tenant)
            } else {
                context?.eventLoop.scheduleTask(in: .seconds(Int64(ending.willDelay))) {
                    if session.isAway(since: generation) { broker.publish(message, tenant: tenant) }
                }
            }
        }
        // A session taken over belongs to the new connection: its life is no longer ours to end.
        guard stillOurs else { return }
        switch ending.expiry {
        case .now:
            broker.removeSession(session)
        case .after(let seconds):
            context?.eventLoop.scheduleTask(in: .seconds(Int64(seconds))) { broker.expireSession(session, generation: generation) }
        case .never:
            break
        }
    }
}
