import HallmarkCore
import ServiceLifecycle

import Foundation

/// Follows the registry's job changes (four times a second) and announces them to devices:
/// `notify` and `notify-next` for each thing whose pending executions changed, whoever changed
/// them (a rollout releasing executions, a cancel, a timeout, the device itself, another process).
struct JobsNotifier: Service, Sendable {
    let broker: Broker

    func run() async throws {
        var last = (try? broker.registry.latestJobChange()) ?? 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(250))
            do {
                let (newest, things) = try broker.registry.jobChanges(after: last, limit: 10_000)
                last = newest
                var seen = Set<String>()
                for (tenant, thing) in things where seen.insert(tenant + "\u{0}" + thing).inserted {
                    broker.jobs.notify(tenant: tenant, thing: thing, now: Date(), broker: broker)
                }
            } catch {
                broker.logger.error("job changes not read: \(error)")
            }
        }
    }
}
