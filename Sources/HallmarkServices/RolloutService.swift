import HallmarkCore
import HallmarkStore
import Logging
import ServiceLifecycle

import Foundation

/// Paces every job's rollout, once a second: executions released at the job's rate (AWS's
/// `maximumPerMinute` and `exponentialRate`) wave by wave, a wave's error threshold pausing the
/// rollout, an abort criterion canceling the job, and timed-out executions counted as failures.
public struct RolloutService: Service, Sendable {
    let registry: Registry
    let logger: Logger
    let interval: Duration

    public init(registry: Registry, logger: Logger, interval: Duration = .seconds(1)) {
        self.registry = registry
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        var connections = (try? registry.latestEventID()) ?? 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                connections = try deployProduction(after: connections, now: Date())
                try step(now: Date())
            } catch {
                logger.error("rollout step failed: \(error)")
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Seed 001's two-stage deployment: a device that connects and has never had its product's
    /// production release gets an execution of the product's production job (made on first need).
    /// - Returns: the last connection event read.
    func deployProduction(after last: Int64, now: Date) throws -> Int64 {
        let connections = try registry.events(after: last, actions: [.mqttConnect], limit: 5000)
        for logged in connections where logged.event.decision == .allow {
            guard let thing = logged.event.thing,
                let release = try registry.pendingProductionRelease(tenant: logged.event.tenant, thing: thing)
            else { continue }
            let jobID = "production-\(release.product.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.prefix(40))-\(release.id.prefix(8))"
            if try registry.jobConfiguration(tenant: release.tenant, id: jobID) == nil {
                let document = try JobCatalog(registry: registry, tenant: release.tenant).firmwareDocument(release, urlBase: nil)
                try registry.createJob(
                    tenant: release.tenant, id: jobID, document: document, releaseID: release.id, targets: [thing],
                    configuration: JobConfiguration(), now: now)
            } else {
                try registry.addJobExecution(tenant: release.tenant, job: jobID, thing: thing, now: now)
            }
            logger.info("production release queued", metadata: ["thing": "\(thing)", "job": "\(jobID)"])
        }
        return connections.last?.id ?? last
    }

    /// One round over every rolling job.
    public func step(now: Date) throws {
        try registry.sweepJobs(now: now)
        for (tenant, id) in try registry.rollingJobs() {
            guard let configuration = try registry.jobConfiguration(tenant: tenant, id: id) else { continue }
            let progress = try registry.rolloutProgress(tenant: tenant, id: id, now: now)
            switch RolloutDecision.decide(configuration, progress: progress) {
            case .release(let count, let wave):
                try registry.releaseExecutions(tenant: tenant, job: id, wave: wave, count: count, now: now)
            case .pause(let reason):
                logger.warning("rollout paused", metadata: ["job": "\(id)", "reason": "\(reason)"])
                try registry.setJobPaused(tenant: tenant, id: id, paused: true, reason: reason, now: now)
            case .abort(let reason):
                logger.warning("job aborted", metadata: ["job": "\(id)", "reason": "\(reason)"])
                try registry.cancelJob(tenant: tenant, id: id, reason: "abort criterion met: " + reason, automatic: true, now: now)
            case .wait:
                break
            }
        }
    }
}
