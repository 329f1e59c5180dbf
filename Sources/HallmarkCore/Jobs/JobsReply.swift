import Foundation

/// The JSON the jobs API answers with, in AWS's shapes: timestamps in whole seconds.
public enum JobsReply {
    static func seconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }

    /// A `JobExecution` object.
    public static func execution(_ execution: JobExecution, document: Any?) -> [String: Any] {
        var object: [String: Any] = [
            "jobId": execution.jobID, "thingName": execution.thingName, "status": execution.status.rawValue,
            "statusDetails": execution.statusDetails, "queuedAt": seconds(execution.queuedAt), "lastUpdatedAt": seconds(execution.lastUpdatedAt),
            "versionNumber": execution.versionNumber, "executionNumber": execution.executionNumber,
        ]
        if let started = execution.startedAt { object["startedAt"] = seconds(started) }
        if let document { object["jobDocument"] = document }
        return object
    }

    /// A `JobExecutionSummary` object.
    public static func summary(_ execution: JobExecution) -> [String: Any] {
        var object: [String: Any] = [
            "jobId": execution.jobID, "queuedAt": seconds(execution.queuedAt), "lastUpdatedAt": seconds(execution.lastUpdatedAt),
            "versionNumber": execution.versionNumber, "executionNumber": execution.executionNumber,
        ]
        if let started = execution.startedAt { object["startedAt"] = seconds(started) }
        return object
    }

    /// A `JobExecutionState` object.
    public static func state(_ execution: JobExecution) -> [String: Any] {
        ["status": execution.status.rawValue, "statusDetails": execution.statusDetails, "versionNumber": execution.versionNumber]
    }

    /// A rejection.
    public static func rejection(_ rejection: JobsRejection, clientToken: String?, now: Date) -> [String: Any] {
        var object: [String: Any] = ["code": rejection.code.rawValue, "message": rejection.message, "timestamp": seconds(now)]
        if let clientToken { object["clientToken"] = clientToken }
        if let state = rejection.executionState { object["executionState"] = self.state(state) }
        return object
    }

    /// `notify`: the thing's pending executions (`{}` when none).
    public static func notify(_ executions: [JobExecution], now: Date) -> [String: Any] {
        let inProgress = executions.filter { $0.status == .inProgress }.prefix(15).map(summary)
        let queued = executions.filter { $0.status == .queued }.prefix(15).map(summary)
        var jobs: [String: Any] = [:]
        if !inProgress.isEmpty { jobs["IN_PROGRESS"] = inProgress }
        if !queued.isEmpty { jobs["QUEUED"] = queued }
        return ["timestamp": seconds(now), "jobs": jobs]
    }

    /// JSON bytes of an object.
    public static func encode(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
    }
}
