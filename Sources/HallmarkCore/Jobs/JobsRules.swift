import Foundation

/// The jobs API's decisions on a thing's executions: which is next, starting it, updating it.
/// Pure: the registry applies them inside one transaction.
public enum JobsRules {
    /// The next execution: the oldest IN_PROGRESS one, else the oldest QUEUED one.
    public static func next(_ executions: [JobExecution]) -> JobExecution? {
        let order = { (a: JobExecution, b: JobExecution) in (a.queuedAt, a.jobID) < (b.queuedAt, b.jobID) }
        return executions.filter { $0.status == .inProgress }.min(by: order) ?? executions.filter { $0.status == .queued }.min(by: order)
    }

    /// StartNextPendingJobExecution: the next execution, moved to IN_PROGRESS if it was QUEUED.
    /// - Parameter inProgressTimeout: the job's own timeout, used when no step timeout is given.
    public static func startNext(_ execution: JobExecution, request: JobsRequest, inProgressTimeout: TimeInterval?, now: Date) -> JobExecution {
        guard execution.status == .queued else { return execution }
        var started = execution
        started.status = .inProgress
        started.startedAt = now
        started.lastUpdatedAt = now
        started.versionNumber += 1
        if let details = request.statusDetails { started.statusDetails = details }
        started.timeoutAt = timeout(step: request.stepTimeoutInMinutes, job: inProgressTimeout, startedAt: now, now: now)
        return started
    }

    /// UpdateJobExecution.
    /// - Throws: `VersionMismatch` (a stale `expectedVersion`: a replayed or raced update),
    ///   `InvalidStateTransition` (from a terminal status), both with the execution's state.
    public static func update(_ execution: JobExecution, request: JobsRequest, inProgressTimeout: TimeInterval?, now: Date) throws(JobsRejection)
        -> JobExecution
    {
        if let expected = request.expectedVersion, expected != execution.versionNumber {
            throw JobsRejection(
                .versionMismatch, "expectedVersion \(expected) is not the execution's version \(execution.versionNumber).",
                executionState: execution)
        }
        guard let status = request.status else { throw JobsRejection(.invalidRequest, "status is required.") }
        guard !execution.status.isTerminal else {
            throw JobsRejection(
                .invalidStateTransition, "The execution is \(execution.status.rawValue) and cannot become \(status.rawValue).",
                executionState: execution)
        }
        var updated = execution
        updated.status = status
        updated.lastUpdatedAt = now
        updated.versionNumber += 1
        if let details = request.statusDetails { updated.statusDetails = details }
        if updated.startedAt == nil, status == .inProgress { updated.startedAt = now }
        if status.isTerminal {
            updated.timeoutAt = nil
        } else if let step = request.stepTimeoutInMinutes {
            updated.timeoutAt = step == -1 ? timeout(step: nil, job: inProgressTimeout, startedAt: updated.startedAt ?? now, now: now)
                : now.addingTimeInterval(TimeInterval(step * 60))
        } else if execution.status == .queued {
            updated.timeoutAt = timeout(step: nil, job: inProgressTimeout, startedAt: updated.startedAt ?? now, now: now)
        }
        return updated
    }

    /// An execution whose timer ran out: TIMED_OUT.
    public static func timedOut(_ execution: JobExecution, now: Date) -> JobExecution? {
        guard !execution.status.isTerminal, let at = execution.timeoutAt, at <= now else { return nil }
        var ended = execution
        ended.status = .timedOut
        ended.lastUpdatedAt = now
        ended.versionNumber += 1
        ended.timeoutAt = nil
        return ended
    }

    static func timeout(step: Int?, job: TimeInterval?, startedAt: Date, now: Date) -> Date? {
        if let step { return now.addingTimeInterval(TimeInterval(step * 60)) }
        return job.map { startedAt.addingTimeInterval($0) }
    }
}
