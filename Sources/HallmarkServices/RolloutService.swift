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
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try step(now: Date()) } catch { logger.error("rollout step failed: \(error)") }
            try? await Task.sleep(for: interval)
        }
    }

    /// One round over every rolling job.
    public func step(now: Date) throws {
        try registry.sweepJobs(now: now)
        for (tenant, id) in try registry.rollingJobs() {
            let job = try registry.job(tenant: tenant, id: id)
            let progress = try registry.rolloutProgress(tenant: tenant, id: id, now: now)
            switch RolloutDecision.decide(job.configuration, progress: progress) {
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
