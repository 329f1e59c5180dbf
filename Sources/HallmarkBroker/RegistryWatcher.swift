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
                events = try broker.registry.events(after: last, actions: Self.actions)
            } catch {
                broker.logger.error("registry watch failed: \(error)")
                continue
            }
            guard let newest = events.last else { continue }
            last = newest.id
            broker.forgetIdentities()
            let changes = events.map(\.event)
            if changes.contains(where: \.action.liveEffect.reloadsTrust) {
                do {
                    broker.trust.replaceAuthorities(try BrokerService.authorities(hallmarkCA: hallmarkCA, registry: broker.registry))
                } catch {
                    broker.logger.error("registered CAs not reloaded: \(error)")
                }
            }
            for session in broker.connectedSessions() {
                guard let handle = session.liveConnection else { continue }
                handle.eventLoop.execute {
                    let handler = handle.handler.value
                    if changes.contains(where: handler.isAffected(by:)) { handler.reauthorize() }
                }
            }
        }
    }
}
