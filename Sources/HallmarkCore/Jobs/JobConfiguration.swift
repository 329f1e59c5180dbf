import Foundation

/// A job's rollout, abort and timeout configuration, in AWS IoT's CreateJob shapes
/// (`jobExecutionsRolloutConfig`, `abortConfig`, `timeoutConfig`), plus waves in the way of
/// Eclipse hawkBit's rollout groups.
public struct JobConfiguration: Sendable, Hashable, Codable {
    public struct Rollout: Sendable, Hashable, Codable {
        /// At most this many executions released per minute (1–1000).
        public var maximumPerMinute: Int?
        public var exponentialRate: ExponentialRate?
    }

    public struct ExponentialRate: Sendable, Hashable, Codable {
        public var baseRatePerMinute: Int
        public var incrementFactor: Double
        public var rateIncreaseCriteria: RateIncreaseCriteria
    }

    public struct RateIncreaseCriteria: Sendable, Hashable, Codable {
        public var numberOfNotifiedThings: Int?
        public var numberOfSucceededThings: Int?
    }

    public struct AbortCriterion: Sendable, Hashable, Codable {
        /// FAILED, REJECTED, TIMED_OUT or ALL.
        public var failureType: String
        /// CANCEL (AWS's only action).
        public var action: String
        public var thresholdPercentage: Double
        public var minNumberOfExecutedThings: Int
    }

    /// A group of the targets, released only once the group before it has finished enough.
    public struct Wave: Sendable, Hashable, Codable {
        public var name: String?
        /// The share of the targets in this wave, in percent (the last wave takes the rest).
        public var percent: Double
        /// The next wave starts when this share of this wave has finished (succeeded or failed), in percent.
        public var successThreshold: Double
        /// The rollout pauses when this share of this wave has failed, in percent.
        public var errorThreshold: Double
    }

    public var rollout: Rollout?
    public var abortCriteria: [AbortCriterion]
    public var inProgressTimeoutMinutes: Int?
    public var waves: [Wave]

    public init(rollout: Rollout? = nil, abortCriteria: [AbortCriterion] = [], inProgressTimeoutMinutes: Int? = nil, waves: [Wave] = []) {
        self.rollout = rollout
        self.abortCriteria = abortCriteria
        self.inProgressTimeoutMinutes = inProgressTimeoutMinutes
        self.waves = waves
    }

    private struct File: Decodable {
        struct Abort: Decodable { var criteriaList: [AbortCriterion] }
        struct Timeout: Decodable { var inProgressTimeoutInMinutes: Int? }
        var jobExecutionsRolloutConfig: Rollout?
        var abortConfig: Abort?
        var timeoutConfig: Timeout?
        var waves: [Wave]?
    }

    /// Reads a rollout file (AWS's field names) and checks it as AWS does.
    /// - Throws: `job_invalid` naming the field that is wrong.
    public init(parsing bytes: [UInt8]) throws(HallmarkError) {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: Data(bytes)) } catch {
            throw Self.invalid("The rollout file is not JSON in CreateJob's shape (\(String(describing: error).prefix(160))).")
        }
        self.init(
            rollout: file.jobExecutionsRolloutConfig, abortCriteria: file.abortConfig?.criteriaList ?? [],
            inProgressTimeoutMinutes: file.timeoutConfig?.inProgressTimeoutInMinutes, waves: file.waves ?? [])
        try validate()
    }

    static func invalid(_ reason: String) -> HallmarkError {
        HallmarkError(.jobInvalid, reason, remedy: "Fix the rollout file; its fields are AWS IoT CreateJob's, plus \"waves\" (docs/firmware.md).")
    }

    /// Checks the limits AWS sets.
    public func validate() throws(HallmarkError) {
        if let maximum = rollout?.maximumPerMinute, !(1...1000).contains(maximum) { throw Self.invalid("maximumPerMinute must be 1 to 1000.") }
        if let rate = rollout?.exponentialRate {
            guard (1...1000).contains(rate.baseRatePerMinute) else { throw Self.invalid("baseRatePerMinute must be 1 to 1000.") }
            guard (1.1...5).contains(rate.incrementFactor) else { throw Self.invalid("incrementFactor must be 1.1 to 5.") }
            let criteria = rate.rateIncreaseCriteria
            guard (criteria.numberOfNotifiedThings == nil) != (criteria.numberOfSucceededThings == nil),
                (criteria.numberOfNotifiedThings ?? criteria.numberOfSucceededThings ?? 0) >= 1
            else { throw Self.invalid("rateIncreaseCriteria needs one of numberOfNotifiedThings or numberOfSucceededThings, at least 1.") }
        }
        for criterion in abortCriteria {
            guard ["FAILED", "REJECTED", "TIMED_OUT", "ALL"].contains(criterion.failureType) else {
                throw Self.invalid("An abort criterion's failureType is FAILED, REJECTED, TIMED_OUT or ALL.")
            }
            guard criterion.action == "CANCEL" else { throw Self.invalid("An abort criterion's action is CANCEL.") }
            guard criterion.thresholdPercentage > 0, criterion.thresholdPercentage <= 100 else { throw Self.invalid("thresholdPercentage must be above 0 and at most 100.") }
            guard criterion.minNumberOfExecutedThings >= 1 else { throw Self.invalid("minNumberOfExecutedThings must be at least 1.") }
        }
        if let minutes = inProgressTimeoutMinutes, !(1...10_080).contains(minutes) {
            throw Self.invalid("inProgressTimeoutInMinutes must be 1 to 10080 (a minute to 7 days).")
        }
        for wave in waves {
            guard wave.percent > 0, wave.percent <= 100, (0...100).contains(wave.successThreshold), (0...100).contains(wave.errorThreshold) else {
                throw Self.invalid("A wave's percent is above 0 and at most 100; its thresholds are 0 to 100.")
            }
        }
        guard waves.reduce(0, { $0 + $1.percent }) <= 100.0001 else { throw Self.invalid("The waves' percents add up to more than 100.") }
    }

    /// Which wave each of `count` targets (in order) belongs to.
    public func waveAssignment(count: Int) -> [Int] {
        guard !waves.isEmpty else { return Array(repeating: 0, count: count) }
        var result: [Int] = []
        result.reserveCapacity(count)
        var cumulative = 0.0
        for (index, wave) in waves.enumerated() {
            cumulative += wave.percent
            let end = index == waves.count - 1 ? count : min(count, Int((Double(count) * cumulative / 100).rounded(.up)))
            while result.count < end { result.append(index) }
        }
        return result
    }
}
