import Foundation
import GRDB
import HallmarkCore

extension Registry {
    /// What the jobs API answers a device: the reply's topic suffix and JSON, whether the thing's
    /// pending executions changed (so `notify` and `notify-next` are due), and AWS's fleet event
    /// for an execution that ended.
    public struct JobsAnswer: Sendable {
        public var accepted: Bool
        public var payload: [UInt8]
        public var pendingChanged: Bool
        /// `$aws/events/jobExecution/{jobId}/{status}` and its payload.
        public var fleetEvent: (topic: String, payload: [UInt8])?

        public init(accepted: Bool, payload: [UInt8], pendingChanged: Bool, fleetEvent: (topic: String, payload: [UInt8])? = nil) {
            self.accepted = accepted
            self.payload = payload
            self.pendingChanged = pendingChanged
            self.fleetEvent = fleetEvent
        }
    }

    /// Answers a device's jobs request, inside one write transaction: the version check, the
    /// transition and the write are one step, so a replay or a race with a stale
    /// `expectedVersion` is a `VersionMismatch`, never a lost update.
    public func answerJobsRequest(tenant: String, thing: String, topic: JobsTopic, payload: [UInt8], source: String?, now: Date) throws -> JobsAnswer {
        let token = JobsRequest.clientToken(in: payload)
        func rejected(_ rejection: JobsRejection) -> JobsAnswer {
            JobsAnswer(accepted: false, payload: JobsReply.encode(JobsReply.rejection(rejection, clientToken: token, now: now)), pendingChanged: false)
        }
        let request: JobsRequest
        do throws(JobsRejection) { request = try JobsRequest(parsing: payload, for: topic.operation) } catch { return rejected(error) }
        return try pool.write { db -> JobsAnswer in
            var executions = try Self.visibleExecutions(db, tenant: tenant, thing: thing)
            var changed = false
            // A timer that ran out ends its execution before anything is answered.
            for (index, execution) in executions.enumerated() {
                if let ended = JobsRules.timedOut(execution, now: now) {
                    try Self.save(ended, tenant: tenant, db)
                    executions[index] = ended
                    changed = true
                }
            }
            var reply: [String: Any] = ["timestamp": Int(now.timeIntervalSince1970)]
            if let token { reply["clientToken"] = token }
            var fleetEvent: (String, [UInt8])?
            switch topic.operation {
            case .getPending:
                let pending = executions.filter { !$0.status.isTerminal }.sorted { $0.queuedAt < $1.queuedAt }
                reply["inProgressJobs"] = pending.filter { $0.status == .inProgress }.map(JobsReply.summary)
                reply["queuedJobs"] = pending.filter { $0.status == .queued }.map(JobsReply.summary)
            case .startNext:
                if let next = JobsRules.next(executions) {
                    let job = try Self.jobRow(db, tenant: tenant, id: next.jobID)
                    let started = JobsRules.startNext(next, request: request, inProgressTimeout: job?.timeout, now: now)
                    if started != next {
                        try Self.save(started, tenant: tenant, db)
                        changed = true
                    }
                    reply["execution"] = JobsReply.execution(started, document: job?.document)
                }
            case .describe(let jobID):
                let found = jobID == "$next" ? JobsRules.next(executions) : executions.first { $0.jobID == jobID }
                guard let found, request.executionNumber.map({ $0 == found.executionNumber }) ?? true else {
                    if jobID == "$next" { break }
                    return rejected(JobsRejection(.resourceNotFound, "No execution of job \(jobID) for thing \(thing)."))
                }
                let document = request.includeJobDocument ?? true ? try Self.jobRow(db, tenant: tenant, id: found.jobID)?.document : nil
                reply["execution"] = JobsReply.execution(found, document: document)
            case .update(let jobID):
                guard let current = executions.first(where: { $0.jobID == jobID }),
                    request.executionNumber.map({ $0 == current.executionNumber }) ?? true
                else {
                    return rejected(JobsRejection(.resourceNotFound, "No execution of job \(jobID) for thing \(thing)."))
                }
                let job = try Self.jobRow(db, tenant: tenant, id: jobID)
                let updated: JobExecution
                do throws(JobsRejection) {
                    updated = try JobsRules.update(current, request: request, inProgressTimeout: job?.timeout, now: now)
                } catch {
                    try Self.insert(
                        AuditEvent(
                            at: now, tenant: tenant, action: .jobsRequest, decision: .refuse, code: error.code.rawValue, thing: thing, source: source,
                            detail: "update of job \(jobID) refused: \(error.message)"),
                        db)
                    return rejected(error)
                }
                try Self.save(updated, tenant: tenant, db)
                try Self.noteReportedFirmware(db, tenant: tenant, thing: thing, details: updated.statusDetails, now: now)
                changed = true
                if request.includeJobExecutionState { reply["executionState"] = JobsReply.state(updated) }
                if request.includeJobDocument == true, let document = job?.document { reply["jobDocument"] = document }
                if updated.status.isTerminal {
                    try Self.insert(
                        AuditEvent(
                            at: now, tenant: tenant, action: .jobExecution, decision: updated.status == .succeeded ? .allow : .refuse,
                            code: updated.status.rawValue.lowercased(), thing: thing, source: source,
                            detail: "job \(jobID): \(updated.status.rawValue) \(Self.detailsText(updated.statusDetails))"),
                        db)
                    let event: [String: Any] = [
                        "eventType": "JOB_EXECUTION", "eventId": UUID().uuidString, "timestamp": Int(now.timeIntervalSince1970),
                        "operation": updated.status.rawValue.lowercased(), "jobId": jobID, "thingArn": "arn:hallmark:iot:::thing/\(thing)",
                        "status": updated.status.rawValue, "statusDetails": updated.statusDetails,
                    ]
                    fleetEvent = ("$aws/events/jobExecution/\(jobID)/\(updated.status.rawValue.lowercased())", JobsReply.encode(event))
                }
            }
            if changed { try Self.noteJobChange(db, tenant: tenant, thing: thing) }
            return JobsAnswer(accepted: true, payload: JobsReply.encode(reply), pendingChanged: changed, fleetEvent: fleetEvent)
        }
    }

    /// A thing's released executions (those its device may see), any status.
    public func visibleExecutions(tenant: String, thing: String) throws -> [JobExecution] {
        try pool.read { db in try Self.visibleExecutions(db, tenant: tenant, thing: thing) }
    }

    static func visibleExecutions(_ db: Database, tenant: String, thing: String) throws -> [JobExecution] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM job_executions WHERE tenant_id = ? AND thing = ? AND released_at IS NOT NULL"),
            arguments: [tenant, thing]
        ).map(execution)
    }

    static func execution(_ row: Row) -> JobExecution {
        let details = (try? JSONSerialization.jsonObject(with: Data((row["status_details"] as String).utf8))) as? [String: String] ?? [:]
        return JobExecution(
            jobID: row["job_id"], thingName: row["thing"], status: JobExecution.Status(rawValue: row["status"]) ?? .queued,
            statusDetails: details, queuedAt: Date(timeIntervalSince1970: row["released_at"] ?? row["queued_at"]),
            startedAt: (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            lastUpdatedAt: Date(timeIntervalSince1970: row["last_updated_at"]), versionNumber: row["version"],
            executionNumber: row["execution_number"], timeoutAt: (row["timeout_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }

    static func save(_ execution: JobExecution, tenant: String, _ db: Database) throws {
        let details = String(decoding: (try? JSONSerialization.data(withJSONObject: execution.statusDetails, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        try db.cachedStatement(
            sql: """
                UPDATE job_executions SET status = ?, status_details = ?, started_at = ?, last_updated_at = ?, version = ?, timeout_at = ?
                WHERE tenant_id = ? AND job_id = ? AND thing = ?
                """
        ).execute(arguments: [
            execution.status.rawValue, details, execution.startedAt?.timeIntervalSince1970, execution.lastUpdatedAt.timeIntervalSince1970,
            execution.versionNumber, execution.timeoutAt?.timeIntervalSince1970, tenant, execution.jobID, execution.thingName,
        ])
    }

    /// A device that reports its running firmware (statusDetails `version` and `securityCounter`)
    /// is never sent a release below that counter.
    static func noteReportedFirmware(_ db: Database, tenant: String, thing: String, details: [String: String], now: Date) throws {
        guard let text = details["securityCounter"], let counter = UInt32(text) else { return }
        try db.execute(
            sql: """
                INSERT INTO thing_firmware (tenant_id, thing, version, security_counter, reported_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (tenant_id, thing) DO UPDATE SET version = excluded.version,
                    security_counter = MAX(COALESCE(security_counter, 0), excluded.security_counter), reported_at = excluded.reported_at
                """,
            arguments: [tenant, thing, details["version"], Int64(counter), now.timeIntervalSince1970])
    }

    static func noteJobChange(_ db: Database, tenant: String, thing: String) throws {
        try db.cachedStatement(sql: "INSERT INTO job_changes (tenant_id, thing) VALUES (?, ?)").execute(arguments: [tenant, thing])
    }

    /// A job's document (parsed JSON) and in-progress timeout.
    static func jobRow(_ db: Database, tenant: String, id: String) throws -> (document: Any, timeout: TimeInterval?)? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT document, in_progress_timeout_seconds FROM jobs WHERE tenant_id = ? AND id = ?"), arguments: [tenant, id])
        else { return nil }
        let document = (try? JSONSerialization.jsonObject(with: Data((row["document"] as String).utf8))) ?? [String: Any]()
        return (document, row["in_progress_timeout_seconds"])
    }

    static func detailsText(_ details: [String: String]) -> String {
        details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.prefix(80))" }.joined(separator: " ")
    }

    /// The things whose pending executions changed after `seq`, and the newest change's number.
    public func jobChanges(after seq: Int64, limit: Int = 10_000) throws -> (last: Int64, things: [(tenant: String, thing: String)]) {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT seq, tenant_id, thing FROM job_changes WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit])
            return (rows.last?["seq"] ?? seq, rows.map { ($0["tenant_id"], $0["thing"]) })
        }
    }

    /// A job's document, as JSON text.
    public func jobDocument(tenant: String, id: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT document FROM jobs WHERE tenant_id = ? AND id = ?", arguments: [tenant, id]) }
    }

    /// The newest job change's number.
    public func latestJobChange() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM job_changes") ?? 0 }
    }
}
