import HallmarkCore
import HallmarkStore
import ServiceLifecycle
import X509

/// Polls the registry's event log (four times a second) for events whose action concerns live
/// sessions or trust (``EventAction/liveEffect``), and has the affected connections re-checked: a
/// revoked certificate's session ends within a second, without a restart or a reload.
struct RegistryWatcher: Service, Sendable {
    /// The actions it reads: those whose events concern live sessions or trust (``EventAction/live``).
    static let actions = EventAction.live
    let broker: Broker
    let hallmarkCA: Certificate

    func run() async throws {
        var last = (try? broker.registry.latestEventID()) ?? 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(250))
            let events: [Registry.LoggedEvent]
            do {
                events = try broker.registry.events(after: last, actions: Self.actions, limit: 1000)
            } catch {
                broker.logger.error("registry watch failed: \(error)")
                continue
            }
            guard let newest = events.last else { continue }
            last = newest.id
            broker.registryChanged()
            let changes = events.map(\.event)
            if changes.contains(where: \.action.liveEffect.reloadsTrust) {
                do {
                    broker.trust.replaceAuthorities(try BrokerService.authorities(hallmarkCA: hallmarkCA, registry: broker.registry))
                } catch {
                    broker.logger.error("registered CAs not reloaded: \(error)")
                }
            }
            await recheck(affectedBy: changes)
        }
    }

    /// Re-checks the connections the changes concern. Which they are is asked on each event loop
    /// (in memory); their certificates' registry records are read here, off the loops; each
    /// connection then decides on its loop with what was read.
    private func recheck(affectedBy changes: [AuditEvent]) async {
        var byLoop: [ObjectIdentifier: [ConnectionHandle]] = [:]
        for session in broker.connectedSessions() {
            guard let handle = session.liveConnection else { continue }
            byLoop[ObjectIdentifier(handle.eventLoop), default: []].append(handle)
        }
        for handles in byLoop.values {
            guard let loop = handles.first?.eventLoop else { continue }
            let affected = try? await loop.submit {
                handles.compactMap { handle -> (ConnectionHandle, String)? in
                    let handler = handle.handler.value
                    guard changes.contains(where: handler.isAffected(by:)), let fingerprint = handler.peerFingerprint else { return nil }
                    return (handle, fingerprint)
                }
            }.get()
            for (handle, fingerprint) in affected ?? [] {
                let identity = Result { try broker.identity(fingerprint: fingerprint) }
                handle.eventLoop.execute { handle.handler.value.reauthorize(with: identity) }
            }
        }
    }
}
