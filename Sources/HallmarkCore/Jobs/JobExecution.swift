import Foundation

/// One thing's execution of a job, as AWS IoT Jobs describes it to devices.
public struct JobExecution: Sendable, Hashable {
    /// An execution's status (AWS's `JobExecutionStatus`).
    public enum Status: String, Sendable, Hashable, CaseIterable, Codable {
        case queued = "QUEUED"
        case inProgress = "IN_PROGRESS"
        case succeeded = "SUCCEEDED"
        case failed = "FAILED"
        case timedOut = "TIMED_OUT"
        case rejected = "REJECTED"
        case removed = "REMOVED"
        case canceled = "CANCELED"

        /// Terminal: neither QUEUED nor IN_PROGRESS.
        public var isTerminal: Bool { self != .queued && self != .inProgress }
        /// What a device may set with UpdateJobExecution.
        public var isDeviceSettable: Bool { self == .inProgress || self == .succeeded || self == .failed || self == .rejected }
    }

    public var jobID: String
    public var thingName: String
    public var status: Status
    public var statusDetails: [String: String]
    public var queuedAt: Date
    public var startedAt: Date?
    public var lastUpdatedAt: Date
    /// +1 on every update: what `expectedVersion` is compared with.
    public var versionNumber: Int
    public var executionNumber: Int
    /// When the step timer (a device's `stepTimeoutInMinutes`) or the job's in-progress timeout ends it.
    public var timeoutAt: Date?

    public init(
        jobID: String, thingName: String, status: Status = .queued, statusDetails: [String: String] = [:], queuedAt: Date,
        startedAt: Date? = nil, lastUpdatedAt: Date? = nil, versionNumber: Int = 1, executionNumber: Int = 1, timeoutAt: Date? = nil
    ) {
        self.jobID = jobID
        self.thingName = thingName
        self.status = status
        self.statusDetails = statusDetails
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.lastUpdatedAt = lastUpdatedAt ?? queuedAt
        self.versionNumber = versionNumber
        self.executionNumber = executionNumber
        self.timeoutAt = timeoutAt
    }
}

/// What the jobs API decided: a reply on `…/accepted`, or a rejection on `…/rejected`.
public struct JobsRejection: Error, Sendable, Hashable {
    /// AWS's rejection codes.
    public enum Code: String, Sendable, Hashable {
        case invalidTopic = "InvalidTopic"
        case invalidJson = "InvalidJson"
        case invalidRequest = "InvalidRequest"
        case invalidStateTransition = "InvalidStateTransition"
        case resourceNotFound = "ResourceNotFound"
        case versionMismatch = "VersionMismatch"
        case internalError = "InternalError"
        case requestThrottled = "RequestThrottled"
        case terminalStateReached = "TerminalStateReached"
    }

    public var code: Code
    public var message: String
    /// The execution's state, with VersionMismatch and InvalidStateTransition.
    public var executionState: JobExecution?

    public init(_ code: Code, _ message: String, executionState: JobExecution? = nil) {
        self.code = code
        self.message = message
        self.executionState = executionState
    }

    /// Rejections are equal when their codes are (as ``HallmarkError``s are).
    public static func == (lhs: JobsRejection, rhs: JobsRejection) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
