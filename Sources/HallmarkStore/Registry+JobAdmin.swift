import Foundation
import GRDB
import HallmarkCore

extension Registry {
    /// A job, as an operator sees it.
    public struct Job: Sendable, Hashable {
        public var tenant: String
        public var id: String
        /// The job document, as JSON text.
        public var document: String
        public var releaseID: String?
        /// IN_PROGRESS, CANCELED or COMPLETED.
        public var status: String
        public var paused: Bool
        public var configuration: JobConfiguration
        /// Why it was paused or canceled.
        public var reason: String?
        public var createdAt: Date
        /// Executions per status (`SCHEDULED` for those the rollout has not released yet).
        public var counts: [String: Int]
    }

    /// Creates a job with one execution per target thing, none released yet: the rollout releases them.
    /// - Throws: `job_invalid` (a bad id or document, no targets), `not_found` (a thing the tenant
    ///   does not have), `job_exists`.
    public func createJob(
        tenant: String, id: String, document: [UInt8], releaseID: String?, targets: [String], configuration: JobConfiguration, now: Date
    ) throws {
        try recordingRefusal(tenant: tenant, action: .jobCreate, now: now, what: "job \(id.prefix(64))") {
            guard JobsTopic.isValidJobID(id) else {
                throw HallmarkError(.jobInvalid, "'\(id.prefix(64))' is not a job id: 1–64 letters, digits, '-' and '_'.", remedy: "Choose another --job-id.")
            }
            guard document.count <= 32_768, (try? JSONSerialization.jsonObject(with: Data(document))) is [String: Any] else {
                throw HallmarkError(.jobInvalid, "A job document is a JSON object of at most 32 KB.", remedy: "Check the document.")
            }
            guard !targets.isEmpty else { throw HallmarkError(.jobInvalid, "The job targets no thing.", remedy: "Name things, or a product that has some.") }
            try configuration.validate()
            let config = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
            try pool.write { db in
                guard try Bool.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE tenant_id = ? AND id = ?", arguments: [tenant, id]) == nil else {
                    throw HallmarkError(.jobExists, "Job \(id) exists.", remedy: "Choose another --job-id.")
                }
                let known = try db.cachedStatement(sql: "SELECT 1 FROM things WHERE tenant_id = ? AND name = ?")
                let at = now.timeIntervalSince1970
                try db.execute(
                    sql: """
                        INSERT INTO jobs (tenant_id, id, document, release_id, status, config, in_progress_timeout_seconds, created_at, updated_at)
                        VALUES (?, ?, ?, ?, 'IN_PROGRESS', ?, ?, ?, ?)
                        """,
                    arguments: [
                        tenant, id, String(decoding: document, as: UTF8.self), releaseID, config,
                        configuration.inProgressTimeoutMinutes.map { Double($0 * 60) }, at, at,
                    ])
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO job_executions (tenant_id, job_id, thing, wave, status, queued_at, last_updated_at) VALUES (?, ?, ?, ?, 'QUEUED', ?, ?)")
                for (thing, wave) in zip(targets, configuration.waveAssignment(count: targets.count)) {
                    guard try Bool.fetchOne(known, arguments: [tenant, thing]) != nil else {
                        throw HallmarkError(.notFound, "Tenant \(tenant) has no thing \(thing.prefix(128)).", remedy: "List things with `hallmark thing list`.")
                    }
                    try insert.execute(arguments: [tenant, id, thing, wave, at, at])
                }
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .jobCreate, decision: .allow, code: "created",
                        detail: "job \(id): \(targets.count) things\(releaseID.map { ", release \($0.prefix(16))" } ?? "")"),
                    db)
            }
        }
    }

    /// A job with its executions counted by status.
    public func job(tenant: String, id: String) throws -> Job {
        guard let job = try pool.read({ db in try Self.job(db, tenant: tenant, id: id) }) else {
            throw HallmarkError(.notFound, "Tenant \(tenant) has no job \(id.prefix(64)).", remedy: "List jobs with `hallmark job list`.")
        }
        return job
    }

    /// A tenant's jobs, newest first.
    public func jobs(tenant: String) throws -> [Job] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM jobs WHERE tenant_id = ? ORDER BY created_at DESC, id", arguments: [tenant])
                .compactMap { try Self.job(db, tenant: tenant, id: $0) }
        }
    }

    static func job(_ db: Database, tenant: String, id: String) throws -> Job? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE tenant_id = ? AND id = ?", arguments: [tenant, id]) else { return nil }
        var counts: [String: Int] = [:]
        for count in try Row.fetchAll(
            db,
            sql: """
                SELECT CASE WHEN released_at IS NULL AND status = 'QUEUED' THEN 'SCHEDULED' ELSE status END AS s, COUNT(*) AS n
                FROM job_executions WHERE tenant_id = ? AND job_id = ? GROUP BY s
                """,
            arguments: [tenant, id])
        {
            counts[count["s"]] = count["n"]
        }
        let configuration = (try? JSONDecoder().decode(JobConfiguration.self, from: Data((row["config"] as String).utf8))) ?? JobConfiguration()
        return Job(
            tenant: tenant, id: id, document: row["document"], releaseID: row["release_id"], status: row["status"], paused: row["paused"],
            configuration: configuration, reason: row["reason"], createdAt: Date(timeIntervalSince1970: row["created_at"]), counts: counts)
    }

    /// Pauses or resumes a job's rollout (released executions carry on).
    /// - Throws: `not_found`, `job_state_invalid` for a job that has ended.
    public func setJobPaused(tenant: String, id: String, paused: Bool, reason: String?, now: Date) throws {
        try recordingRefusal(tenant: tenant, action: .jobStatus, now: now, what: "job \(id.prefix(64))") {
            try pool.write { db in
                guard let job = try Self.job(db, tenant: tenant, id: id) else {
                    throw HallmarkError(.notFound, "Tenant \(tenant) has no job \(id.prefix(64)).", remedy: "List jobs with `hallmark job list`.")
                }
                guard job.status == "IN_PROGRESS" else {
                    throw HallmarkError(.jobStateInvalid, "Job \(id) is \(job.status).", remedy: "Create a new job.")
                }
                try db.execute(
                    sql: "UPDATE jobs SET paused = ?, reason = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
                    arguments: [paused, reason, now.timeIntervalSince1970, tenant, id])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .jobStatus, decision: paused && reason != nil ? .alarm : .allow,
                        code: paused ? "paused" : "resumed", detail: "job \(id)\(reason.map { ": \($0)" } ?? "")"),
                    db)
            }
        }
    }

    /// Cancels a job: its QUEUED executions (released or not) become CANCELED; those in progress
    /// carry on, as AWS does without `--force`.
    public func cancelJob(tenant: String, id: String, reason: String, automatic: Bool = false, now: Date) throws {
        try recordingRefusal(tenant: tenant, action: .jobStatus, now: now, what: "job \(id.prefix(64))") {
            try pool.write { db in
                guard let job = try Self.job(db, tenant: tenant, id: id) else {
                    throw HallmarkError(.notFound, "Tenant \(tenant) has no job \(id.prefix(64)).", remedy: "List jobs with `hallmark job list`.")
                }
                guard job.status == "IN_PROGRESS" else { throw HallmarkError(.jobStateInvalid, "Job \(id) is \(job.status).", remedy: "Nothing to cancel.") }
                let at = now.timeIntervalSince1970
                let things = try String.fetchAll(
                    db, sql: "SELECT thing FROM job_executions WHERE tenant_id = ? AND job_id = ? AND status = 'QUEUED' AND released_at IS NOT NULL",
                    arguments: [tenant, id])
                try db.execute(
                    sql: """
                        UPDATE job_executions SET status = 'CANCELED', version = version + 1, last_updated_at = ?, timeout_at = NULL
                        WHERE tenant_id = ? AND job_id = ? AND status = 'QUEUED'
                        """,
                    arguments: [at, tenant, id])
                try db.execute(
                    sql: "UPDATE jobs SET status = 'CANCELED', reason = ?, updated_at = ?, completed_at = ? WHERE tenant_id = ? AND id = ?",
                    arguments: [reason, at, at, tenant, id])
                for thing in things { try Self.noteJobChange(db, tenant: tenant, thing: thing) }
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .jobStatus, decision: automatic ? .alarm : .allow, code: automatic ? "aborted" : "canceled",
                        detail: "job \(id): \(reason)"),
                    db)
            }
        }
    }

    /// A job's rollout configuration (without counting its executions).
    public func jobConfiguration(tenant: String, id: String) throws -> JobConfiguration? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT config FROM jobs WHERE tenant_id = ? AND id = ?", arguments: [tenant, id])
                .flatMap { try? JSONDecoder().decode(JobConfiguration.self, from: Data($0.utf8)) }
        }
    }

    /// The jobs whose rollout may release executions: in progress, not paused, with some left.
    public func rollingJobs() throws -> [(tenant: String, id: String)] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT tenant_id, id FROM jobs j WHERE status = 'IN_PROGRESS' AND paused = 0
                    """
            ).map { ($0["tenant_id"], $0["id"]) }
        }
    }

    /// A job's progress per wave, for its rollout's decision.
    public func rolloutProgress(tenant: String, id: String, now: Date) throws -> RolloutProgress {
        try pool.read { db in
            var waves: [RolloutProgress.Wave] = []
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT wave, COUNT(*) AS targets, COUNT(released_at) AS released,
                        SUM(status = 'SUCCEEDED') AS succeeded, SUM(status = 'FAILED') AS failed,
                        SUM(status = 'REJECTED') AS rejected, SUM(status = 'TIMED_OUT') AS timed_out
                    FROM job_executions WHERE tenant_id = ? AND job_id = ? GROUP BY wave ORDER BY wave
                    """,
                arguments: [tenant, id])
            {
                let index: Int = row["wave"]
                while waves.count <= index { waves.append(.init()) }
                waves[index].targets = row["targets"]
                waves[index].released = row["released"]
                waves[index].succeeded = row["succeeded"]
                waves[index].failed = row["failed"]
                waves[index].rejected = row["rejected"]
                waves[index].timedOut = row["timed_out"]
            }
            let recent = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM job_executions WHERE tenant_id = ? AND job_id = ? AND released_at > ?",
                arguments: [tenant, id, now.timeIntervalSince1970 - 60]) ?? 0
            return RolloutProgress(waves: waves, releasedLastMinute: recent)
        }
    }

    /// Releases up to `count` executions of a wave to their devices. A device that reported a
    /// security counter above the job's release's is never sent it: its execution is REMOVED.
    /// - Returns: how many were released.
    @discardableResult
    public func releaseExecutions(tenant: String, job id: String, wave: Int, count: Int, now: Date) throws -> Int {
        try pool.write { db in
            let counter = try Int64.fetchOne(
                db,
                sql: "SELECT r.security_counter FROM jobs j JOIN firmware_releases r ON r.id = j.release_id WHERE j.tenant_id = ? AND j.id = ?",
                arguments: [tenant, id])
            // A device that never answers times out too (it counts as a failure): the job's timeout
            // runs from the release, and again from IN_PROGRESS.
            let timeout = try Double.fetchOne(
                db, sql: "SELECT in_progress_timeout_seconds FROM jobs WHERE tenant_id = ? AND id = ?", arguments: [tenant, id])
            let things = try String.fetchAll(
                db,
                sql: """
                    SELECT thing FROM job_executions WHERE tenant_id = ? AND job_id = ? AND wave = ? AND released_at IS NULL AND status = 'QUEUED'
                    ORDER BY thing LIMIT ?
                    """,
                arguments: [tenant, id, wave, count])
            let at = now.timeIntervalSince1970
            let release = try db.cachedStatement(
                sql: "UPDATE job_executions SET released_at = ?, last_updated_at = ?, timeout_at = ? WHERE tenant_id = ? AND job_id = ? AND thing = ?")
            let remove = try db.cachedStatement(
                sql: """
                    UPDATE job_executions SET released_at = ?, last_updated_at = ?, status = 'REMOVED', version = version + 1,
                        status_details = ? WHERE tenant_id = ? AND job_id = ? AND thing = ?
                    """)
            let reported = try db.cachedStatement(sql: "SELECT security_counter FROM thing_firmware WHERE tenant_id = ? AND thing = ?")
            for thing in things {
                if let counter, let running = try Int64.fetchOne(reported, arguments: [tenant, thing]), running > counter {
                    try remove.execute(arguments: [
                        at, at, #"{"reason":"the release's security counter \#(counter) is below the device's \#(running)"}"#, tenant, id, thing,
                    ])
                    try Self.insert(
                        AuditEvent(
                            at: now, tenant: tenant, action: .jobExecution, decision: .refuse, code: "firmware_rollback", thing: thing,
                            detail: "job \(id) not sent: the release's security counter \(counter) is below the device's \(running)"),
                        db)
                    continue
                }
                try release.execute(arguments: [at, at, timeout.map { at + $0 }, tenant, id, thing])
                try Self.noteJobChange(db, tenant: tenant, thing: thing)
            }
            return things.count
        }
    }

    /// Ends the executions whose timers ran out (TIMED_OUT counts as a failure) and completes the
    /// jobs whose executions have all ended.
    public func sweepJobs(now: Date) throws {
        try pool.write { db in
            let at = now.timeIntervalSince1970
            let expired = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM job_executions WHERE timeout_at IS NOT NULL AND timeout_at <= ? AND status IN ('QUEUED', 'IN_PROGRESS') LIMIT 10000
                    """,
                arguments: [at])
            for row in expired {
                let tenant: String = row["tenant_id"]
                guard let ended = JobsRules.timedOut(Self.execution(row), now: now) else { continue }
                try Self.save(ended, tenant: tenant, db)
                try Self.noteJobChange(db, tenant: tenant, thing: ended.thingName)
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .jobExecution, decision: .refuse, code: "timed_out", thing: ended.thingName,
                        detail: "job \(ended.jobID): no outcome before its timeout"),
                    db)
            }
            let finished = try Row.fetchAll(
                db,
                sql: """
                    SELECT tenant_id, id FROM jobs j WHERE status = 'IN_PROGRESS' AND NOT EXISTS (
                        SELECT 1 FROM job_executions e WHERE e.tenant_id = j.tenant_id AND e.job_id = j.id AND e.status IN ('QUEUED', 'IN_PROGRESS'))
                    """)
            for row in finished {
                try db.execute(
                    sql: "UPDATE jobs SET status = 'COMPLETED', updated_at = ?, completed_at = ? WHERE tenant_id = ? AND id = ?",
                    arguments: [at, at, row["tenant_id"] as String, row["id"] as String])
                try Self.insert(
                    AuditEvent(at: now, tenant: row["tenant_id"], action: .jobStatus, decision: .allow, code: "completed", detail: "job \(row["id"] as String)"),
                    db)
            }
        }
    }

    /// A tenant's things of a product, by name.
    public func thingNames(tenant: String, product: String) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM things WHERE tenant_id = ? AND product_id = ? ORDER BY name", arguments: [tenant, product])
        }
    }
}

extension Registry {
    /// Names the release a product's newly enrolled devices get on their first connection (seed
    /// 001's two-stage deployment: a generic manufacturing image, then the customer's firmware);
    /// nil clears it.
    /// - Throws: `not_found` (no such product, or a release of another product).
    public func setProductionRelease(tenant: String, product: String, release: String?, now: Date) throws {
        try recordingRefusal(tenant: tenant, action: .productUpdate, now: now, what: "production release of \(product.prefix(64))") {
            let found = try release.map { try firmwareRelease(tenant: tenant, id: $0) }
            if let found, found.product != product {
                throw HallmarkError(.firmwareWrongProduct, "Release \(found.id.prefix(16)) is for product \(found.product).", remedy: "Name a release of \(product).")
            }
            try pool.write { db in
                guard try Self.product(db, tenant: tenant, id: product) != nil else {
                    throw HallmarkError(.notFound, "Product \(product) does not exist.", remedy: "Create it with `hallmark product create`.")
                }
                try db.execute(
                    sql: "UPDATE products SET production_release = ? WHERE tenant_id = ? AND id = ?", arguments: [found?.id, tenant, product])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .productUpdate, decision: .allow, code: "production_release",
                        detail: "product \(product): production release \(found.map { "\($0.version) (\($0.id.prefix(16)))" } ?? "none")"),
                    db)
            }
        }
    }

    /// The production release a thing's product names, unless the thing already runs it or has
    /// had an execution of it.
    public func pendingProductionRelease(tenant: String, thing: String) throws -> FirmwareRelease? {
        let found = try pool.read { db -> (String, String)? in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT p.id AS product, p.production_release AS release FROM things t
                    JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id
                    WHERE t.tenant_id = ? AND t.name = ? AND p.production_release IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM job_executions e JOIN jobs j ON j.tenant_id = e.tenant_id AND j.id = e.job_id
                                      WHERE e.tenant_id = t.tenant_id AND e.thing = t.name AND j.release_id = p.production_release)
                      AND NOT EXISTS (SELECT 1 FROM thing_firmware f JOIN firmware_releases r ON r.id = p.production_release
                                      WHERE f.tenant_id = t.tenant_id AND f.thing = t.name AND f.version = r.version)
                    """,
                arguments: [tenant, thing]
            ).map { ($0["product"], $0["release"]) }
        }
        guard let (_, release) = found else { return nil }
        return try firmwareRelease(tenant: tenant, id: release)
    }

    /// Adds a thing to a job (its execution released by the rollout like the others); a job that
    /// had completed is in progress again.
    public func addJobExecution(tenant: String, job id: String, thing: String, now: Date) throws {
        try pool.write { db in
            let at = now.timeIntervalSince1970
            try db.execute(
                sql: """
                    INSERT INTO job_executions (tenant_id, job_id, thing, wave, status, queued_at, last_updated_at)
                    VALUES (?, ?, ?, 0, 'QUEUED', ?, ?) ON CONFLICT DO NOTHING
                    """,
                arguments: [tenant, id, thing, at, at])
            try db.execute(
                sql: "UPDATE jobs SET status = 'IN_PROGRESS', completed_at = NULL, updated_at = ? WHERE tenant_id = ? AND id = ? AND status = 'COMPLETED'",
                arguments: [at, tenant, id])
        }
    }
}
