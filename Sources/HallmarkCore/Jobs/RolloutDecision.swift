import Foundation

/// What a job's executions look like now, for its rollout's decisions.
public struct RolloutProgress: Sendable, Hashable {
    /// Per wave: targets, released, finished (terminal), failed (FAILED, REJECTED, TIMED_OUT), succeeded.
    public struct Wave: Sendable, Hashable {
        public var targets = 0
        public var released = 0
        public var succeeded = 0
        public var failed = 0
        public var rejected = 0
        public var timedOut = 0
        public var finished: Int { succeeded + failed + rejected + timedOut }
        public var failures: Int { failed + rejected + timedOut }
        public init() {}
    }

    public var waves: [Wave]
    /// Executions released in the last minute.
    public var releasedLastMinute: Int

    public init(waves: [Wave], releasedLastMinute: Int) {
        self.waves = waves
        self.releasedLastMinute = releasedLastMinute
    }

    public var released: Int { waves.reduce(0) { $0 + $1.released } }
    public var succeeded: Int { waves.reduce(0) { $0 + $1.succeeded } }
}

/// A rollout's next step, decided from its configuration and progress: how many executions to
/// release now and from which wave, or to pause, or to abort.
public enum RolloutDecision: Sendable, Hashable {
    case release(count: Int, wave: Int)
    case pause(reason: String)
    case abort(reason: String)
    case wait

    /// AWS's default pace when a job names none.
    public static let defaultPerMinute = 1000

    /// The release rate now: the base rate raised by the increment factor each time the criterion's
    /// count is reached, at most `maximumPerMinute`.
    public static func ratePerMinute(_ configuration: JobConfiguration, progress: RolloutProgress) -> Int {
        let maximum = configuration.rollout?.maximumPerMinute ?? defaultPerMinute
        guard let rate = configuration.rollout?.exponentialRate else { return maximum }
        let reached: Int
        if let notified = rate.rateIncreaseCriteria.numberOfNotifiedThings {
            reached = progress.released / notified
        } else {
            reached = progress.succeeded / max(1, rate.rateIncreaseCriteria.numberOfSucceededThings ?? 1)
        }
        let raised = Double(rate.baseRatePerMinute) * pow(rate.incrementFactor, Double(min(reached, 64)))
        return min(maximum, Int(raised.rounded(.down)))
    }

    /// Decides. Abort criteria come first, then a wave's error threshold, then the pace.
    public static func decide(_ configuration: JobConfiguration, progress: RolloutProgress) -> RolloutDecision {
        let all = progress.waves.reduce(into: RolloutProgress.Wave()) { total, wave in
            total.targets += wave.targets; total.released += wave.released; total.succeeded += wave.succeeded
            total.failed += wave.failed; total.rejected += wave.rejected; total.timedOut += wave.timedOut
        }
        for criterion in configuration.abortCriteria {
            let failures = switch criterion.failureType {
            case "FAILED": all.failed
            case "REJECTED": all.rejected
            case "TIMED_OUT": all.timedOut
            default: all.failures
            }
            guard all.finished >= criterion.minNumberOfExecutedThings, all.finished > 0 else { continue }
            let percent = Double(failures) * 100 / Double(all.finished)
            if percent >= criterion.thresholdPercentage {
                return .abort(
                    reason: "\(failures) of \(all.finished) executed things \(criterion.failureType == "ALL" ? "failed" : criterion.failureType) (\(String(format: "%.1f", percent)) % ≥ \(criterion.thresholdPercentage) %)")
            }
        }
        // The wave being released: the first that is not fully released.
        guard let current = progress.waves.firstIndex(where: { $0.released < $0.targets }) else { return .wait }
        // Each earlier wave must have finished enough, without too many errors.
        for index in 0..<current {
            let wave = progress.waves[index]
            let settings = configuration.waves.indices.contains(index) ? configuration.waves[index] : nil
            guard let settings, wave.targets > 0 else { continue }
            let errors = Double(wave.failures) * 100 / Double(wave.targets)
            if errors > settings.errorThreshold {
                return .pause(reason: "wave \(settings.name ?? String(index + 1)): \(wave.failures) of \(wave.targets) failed (\(String(format: "%.1f", errors)) % > \(settings.errorThreshold) %)")
            }
            if Double(wave.finished) * 100 / Double(wave.targets) < settings.successThreshold { return .wait }
        }
        let budget = ratePerMinute(configuration, progress: progress) - progress.releasedLastMinute
        guard budget > 0 else { return .wait }
        return .release(count: min(budget, progress.waves[current].targets - progress.waves[current].released), wave: current)
    }
}
