import GRDB
import HallmarkCore
import X509

import Foundation

extension Registry {
    /// A security profile as stored: the document and the product whose things it watches.
    public struct SecurityProfileRecord: Sendable, Hashable {
        public var tenant: String
        public var name: String
        public var product: String
        public var document: String
        public var updatedAt: Date

        /// The parsed profile (it was checked when stored).
        public func parsed() throws(HallmarkError) -> SecurityProfile { try SecurityProfile(json: Array(document.utf8)) }
    }

    /// A behaviour's violation by a thing.
    public struct ViolationRecord: Sendable, Hashable {
        public enum State: String, Sendable {
            case inAlarm = "in-alarm"
            case cleared = "alarm-cleared"
            case invalidated = "alarm-invalidated"
        }

        public var id: String
        public var tenant: String
        public var thing: String
        public var profile: String
        public var behavior: String
        public var metric: String
        /// The datapoint that raised (or last changed) it, as JSON.
        public var metricValue: String
        public var state: State
        public var startedAt: Date
        public var updatedAt: Date
        public var endedAt: Date?
        /// What was done about it, comma-separated (`quarantine-device`, …).
        public var mitigations: String

        public init(
            id: String, tenant: String, thing: String, profile: String, behavior: String, metric: String, metricValue: String,
            state: State, startedAt: Date, updatedAt: Date, endedAt: Date? = nil, mitigations: String = ""
        ) {
            self.id = id
            self.tenant = tenant
            self.thing = thing
            self.profile = profile
            self.behavior = behavior
            self.metric = metric
            self.metricValue = metricValue
            self.state = state
            self.startedAt = startedAt
            self.updatedAt = updatedAt
            self.endedAt = endedAt
            self.mitigations = mitigations
        }
    }

    /// A product's Device Defender settings.
    public struct DefenderSettings: Sendable, Hashable {
        /// Unsigned reports (`$aws/…/json|cbor`) are refused: only COSE_Sign1 reports count.
        public var signedOnly: Bool
        /// The shortest time between two reports of a thing, in seconds (AWS's is 300).
        public var minimumInterval: Double
    }

    /// What a thing's report or event was recorded against: its product.
    public struct DefenderSubject: Sendable, Hashable {
        public var tenant: String
        public var thing: String
        public var product: String
        public var udid: String?

        public init(tenant: String, thing: String, product: String, udid: String?) {
            self.tenant = tenant
            self.thing = thing
            self.product = product
            self.udid = udid
        }
    }

    // MARK: Reports and events

    /// Records a metrics report: its id must be above the thing's last, it must come no sooner
    /// than the product's interval after the last, and it must be signed if the product says so.
    /// A refusal is recorded as a `defender.report` event (rate-limited) and thrown.
    /// - Throws: `report_replayed`, `report_throttled`, `report_signature_required`, `not_found`.
    @discardableResult
    public func recordDefenderReport(
        tenant: String, thing: String, reportID: Int64, signed: Bool, datapoints: String, source: String?, now: Date
    ) async throws -> DefenderSubject {
        let outcome: Result<DefenderSubject, HallmarkError> = try await committer.perform { db in
            let subject = try Self.defenderSubject(db, tenant: tenant, thing: thing)
            let settings = try Self.defenderSettings(db, tenant: tenant, product: subject.product)
            let last = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT last_report_id, last_report_at FROM defender_things WHERE tenant_id = ? AND thing_name = ?"),
                arguments: [tenant, thing])
            var refusal: HallmarkError?
            if !signed && settings.signedOnly {
                refusal = HallmarkError(
                    .reportSignatureRequired, "Product \(subject.product) takes only signed reports.",
                    remedy: "Send the report as a COSE_Sign1 on $hallmark/things/\(thing)/defender/metrics/cose.")
            } else if let lastID: Int64 = last?["last_report_id"], reportID <= lastID {
                refusal = HallmarkError(
                    .reportReplayed, "Report id \(reportID) is not above the thing's last, \(lastID).",
                    remedy: "Give each report a larger id than the one before (AWS's devices use the time in seconds).")
            } else if let lastAt: Double = last?["last_report_at"], now.timeIntervalSince1970 - lastAt < settings.minimumInterval {
                refusal = HallmarkError(
                    .reportThrottled,
                    "The thing reported \(Int(now.timeIntervalSince1970 - lastAt)) s ago; product \(subject.product) takes one report every \(Int(settings.minimumInterval)) s.",
                    remedy: "Report less often.")
            }
            if let refusal {
                for event in self.refusals.admit([
                    AuditEvent(
                        at: now, tenant: tenant, action: .defenderReport, decision: .refuse, code: refusal.code.rawValue, udid: subject.udid,
                        thing: thing, source: source, detail: "report \(reportID): \(refusal.reason)")
                ]) { try Self.insert(event, db) }
                return .failure(refusal)
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO defender_things (tenant_id, thing_name, last_report_id, last_report_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (tenant_id, thing_name) DO UPDATE SET last_report_id = excluded.last_report_id,
                        last_report_at = excluded.last_report_at, missing_since = NULL
                    """
            ).execute(arguments: [tenant, thing, reportID, now.timeIntervalSince1970])
            try db.cachedStatement(
                sql: "INSERT INTO defender_reports (tenant_id, thing_name, report_id, received_at, signed, datapoints) VALUES (?, ?, ?, ?, ?, ?)"
            ).execute(arguments: [tenant, thing, reportID, now.timeIntervalSince1970, signed, datapoints])
            return .success(subject)
        }
        return try outcome.get()
    }

    /// Records a signed security event in the log (`defender.event`, decision `alarm`); its id
    /// must be above the thing's last.
    /// - Throws: `report_replayed`, `not_found`.
    @discardableResult
    public func recordSecurityEvent(tenant: String, thing: String, event: SecurityEvent, source: String?, now: Date) async throws -> DefenderSubject {
        let outcome: Result<DefenderSubject, HallmarkError> = try await committer.perform { db in
            let subject = try Self.defenderSubject(db, tenant: tenant, thing: thing)
            let last = try Int64.fetchOne(
                db, sql: "SELECT last_event_id FROM defender_things WHERE tenant_id = ? AND thing_name = ?", arguments: [tenant, thing])
            if let last, event.eventID <= last {
                let refusal = HallmarkError(
                    .reportReplayed, "Event id \(event.eventID) is not above the thing's last, \(last).",
                    remedy: "Give each security event a larger id than the one before.")
                for admitted in self.refusals.admit([
                    AuditEvent(
                        at: now, tenant: tenant, action: .defenderEvent, decision: .refuse, code: refusal.code.rawValue, udid: subject.udid,
                        thing: thing, source: source, detail: "event \(event.eventID): \(refusal.reason)")
                ]) { try Self.insert(admitted, db) }
                return .failure(refusal)
            }
            try db.execute(
                sql: """
                    INSERT INTO defender_things (tenant_id, thing_name, last_event_id) VALUES (?, ?, ?)
                    ON CONFLICT (tenant_id, thing_name) DO UPDATE SET last_event_id = excluded.last_event_id
                    """,
                arguments: [tenant, thing, event.eventID])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .defenderEvent, decision: .alarm, code: event.kind.rawValue, udid: subject.udid, thing: thing,
                    source: source, detail: "signed event \(event.eventID) at \(event.time)" + (event.detail.map { ": " + $0.prefix(300) } ?? "")),
                db)
            return .success(subject)
        }
        return try outcome.get()
    }

    /// Records a report or event refused before it reached the registry (malformed, a bad
    /// signature, another thing's topic), rate-limited like every refusal.
    public func recordDefenderRefusal(
        _ refusal: HallmarkError, tenant: String, thing: String, action: EventAction, source: String?, detail: String, now: Date
    ) async throws {
        let events = refusals.admit([
            AuditEvent(
                at: now, tenant: tenant, action: action, decision: .refuse, code: refusal.code.rawValue, thing: thing, source: source,
                detail: detail + ": " + refusal.reason)
        ])
        guard !events.isEmpty else { return }
        try await append(events)
    }

    /// A certificate's DER if it is an active certificate of the thing (the one a connection
    /// presented), else nil.
    public func activeCertificate(tenant: String, thing: String, fingerprint: String) throws -> [UInt8]? {
        try pool.read { db in
            try Data.fetchOne(
                db.cachedStatement(
                    sql: "SELECT der FROM certificates WHERE fingerprint = ? AND tenant_id = ? AND thing_name = ? AND status = 'active'"),
                arguments: [fingerprint, tenant, thing]
            ).map { Array($0) }
        }
    }

    /// The certificates (DER) a thing may sign its reports with: its active ones.
    public func activeCertificates(tenant: String, thing: String) throws -> [[UInt8]] {
        try pool.read { db in
            try Data.fetchAll(
                db.cachedStatement(sql: "SELECT der FROM certificates WHERE tenant_id = ? AND thing_name = ? AND status = 'active'"),
                arguments: [tenant, thing]
            ).map { Array($0) }
        }
    }

    /// A thing's recent reports' datapoints (JSON), newest first.
    public func defenderReports(tenant: String, thing: String, limit: Int) throws -> [(reportID: Int64, at: Date, signed: Bool, datapoints: String)] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT report_id, received_at, signed, datapoints FROM defender_reports
                    WHERE tenant_id = ? AND thing_name = ? ORDER BY received_at DESC, id DESC LIMIT ?
                    """,
                arguments: [tenant, thing, limit]
            ).map { ($0["report_id"], Date(timeIntervalSince1970: $0["received_at"]), $0["signed"], $0["datapoints"]) }
        }
    }

    /// Finds the things that reported once and then fell silent for three of their product's
    /// intervals (300 s for a product that does not throttle), marks them (once per silence) and records a `reports_missing` alarm for each.
    public func flagMissingReports(now: Date) async throws -> [(tenant: String, thing: String, lastReport: Date)] {
        try await committer.perform { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT d.tenant_id, d.thing_name, d.last_report_at, t.udid FROM defender_things d
                    JOIN things t ON t.tenant_id = d.tenant_id AND t.name = d.thing_name
                    JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id
                    WHERE d.missing_since IS NULL AND d.last_report_at IS NOT NULL
                      AND d.last_report_at < ?1 - 3 * (CASE WHEN p.defender_interval > 0 THEN p.defender_interval ELSE 300 END)
                    LIMIT 1000
                    """,
                arguments: [now.timeIntervalSince1970])
            var found: [(tenant: String, thing: String, lastReport: Date)] = []
            for row in rows {
                let tenant: String = row["tenant_id"]
                let thing: String = row["thing_name"]
                let last = Date(timeIntervalSince1970: row["last_report_at"])
                try db.execute(
                    sql: "UPDATE defender_things SET missing_since = ? WHERE tenant_id = ? AND thing_name = ?",
                    arguments: [now.timeIntervalSince1970, tenant, thing])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .defenderReport, decision: .alarm, code: "reports_missing", udid: row["udid"], thing: thing,
                        detail: "no report since \(Int(now.timeIntervalSince(last))) s ago"),
                    db)
                found.append((tenant, thing, last))
            }
            return found
        }
    }

    /// When each of these things last reported.
    public func lastReports(tenant: String, things: [String]) throws -> [String: Date] {
        try pool.read { db in
            var out: [String: Date] = [:]
            for thing in things {
                if let at = try Double.fetchOne(
                    db, sql: "SELECT last_report_at FROM defender_things WHERE tenant_id = ? AND thing_name = ?", arguments: [tenant, thing])
                {
                    out[thing] = Date(timeIntervalSince1970: at)
                }
            }
            return out
        }
    }

    /// A thing's product, or nil for no such thing.
    public func thingProduct(tenant: String, thing: String) throws -> String? {
        try pool.read { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT product_id FROM things WHERE tenant_id = ? AND name = ?"), arguments: [tenant, thing])
        }
    }

    /// Forgets reports older than `before` (the history kept is AWS's 14 days by default).
    public func pruneDefenderReports(before: Date) async throws {
        try await committer.perform { db in
            try db.execute(sql: "DELETE FROM defender_reports WHERE received_at < ?", arguments: [before.timeIntervalSince1970])
        }
    }

    static func defenderSubject(_ db: Database, tenant: String, thing: String) throws -> DefenderSubject {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT product_id, udid FROM things WHERE tenant_id = ? AND name = ?"), arguments: [tenant, thing])
        else {
            throw HallmarkError(.notFound, "There is no thing named \(thing.prefix(128)).", remedy: "Report as a registered thing.")
        }
        return DefenderSubject(tenant: tenant, thing: thing, product: row["product_id"], udid: row["udid"])
    }

    static func defenderSettings(_ db: Database, tenant: String, product: String) throws -> DefenderSettings {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT defender_signed_only, defender_interval FROM products WHERE tenant_id = ? AND id = ?"),
            arguments: [tenant, product])
        return DefenderSettings(signedOnly: row?["defender_signed_only"] ?? false, minimumInterval: row?["defender_interval"] ?? 300)
    }

    // MARK: Product settings

    public func defenderSettings(tenant: String, product: String) throws -> DefenderSettings {
        try pool.read { db in
            guard try Self.product(db, tenant: tenant, id: product) != nil else {
                throw HallmarkError(.notFound, "Product \(product.prefix(64)) does not exist.", remedy: "List products with `hallmark product list`.")
            }
            return try Self.defenderSettings(db, tenant: tenant, product: product)
        }
    }

    /// Sets whether a product's reports must be signed and the shortest interval between reports.
    public func setDefenderSettings(tenant: String, product: String, signedOnly: Bool?, minimumInterval: Double?, now: Date) async throws {
        if let minimumInterval, !(0...86_400).contains(minimumInterval) {
            throw HallmarkError(.productInvalid, "A report interval of \(minimumInterval) s is out of range.", remedy: "Give 0 (no throttling) to 86400 seconds (AWS uses 300).")
        }
        try await committer.perform { db in
            guard try Self.product(db, tenant: tenant, id: product) != nil else {
                throw HallmarkError(.notFound, "Product \(product.prefix(64)) does not exist.", remedy: "List products with `hallmark product list`.")
            }
            if let signedOnly {
                try db.execute(sql: "UPDATE products SET defender_signed_only = ? WHERE tenant_id = ? AND id = ?", arguments: [signedOnly, tenant, product])
            }
            if let minimumInterval {
                try db.execute(sql: "UPDATE products SET defender_interval = ? WHERE tenant_id = ? AND id = ?", arguments: [minimumInterval, tenant, product])
            }
            let settings = try Self.defenderSettings(db, tenant: tenant, product: product)
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .productUpdate, decision: .allow, code: "defender_settings",
                    detail: "product \(product): signed reports \(settings.signedOnly ? "required" : "optional"), one every \(Int(settings.minimumInterval)) s"),
                db)
        }
    }
}
