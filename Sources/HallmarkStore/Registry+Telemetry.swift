import GRDB

import Foundation

/// One message a thing published, as kept for `hallmark telemetry`.
public struct TelemetrySample: Sendable, Hashable {
    public var tenant: String
    public var thing: String
    public var topic: String
    public var at: Date
    public var payload: [UInt8]
    public init(tenant: String, thing: String, topic: String, at: Date, payload: [UInt8]) {
        self.tenant = tenant
        self.thing = thing
        self.topic = topic
        self.at = at
        self.payload = payload
    }
}

extension Registry {
    /// How many samples are kept per thing and topic; older ones are dropped as new ones arrive.
    public static let telemetryHistory = 100

    /// Stores samples and trims each (thing, topic) touched to the last ``telemetryHistory``.
    public func appendTelemetry(_ samples: [TelemetrySample]) async throws {
        guard !samples.isEmpty else { return }
        try await committer.perform { db in
            let insert = try db.cachedStatement(
                sql: "INSERT INTO telemetry (tenant_id, thing, topic, at, payload) VALUES (?, ?, ?, ?, ?)")
            var touched: Set<[String]> = []
            for s in samples {
                try insert.execute(arguments: [s.tenant, s.thing, s.topic, s.at.timeIntervalSince1970, Data(s.payload)])
                touched.insert([s.tenant, s.thing, s.topic])
            }
            let trim = try db.cachedStatement(
                sql: """
                    DELETE FROM telemetry WHERE tenant_id = ? AND thing = ? AND topic = ? AND id <= (
                        SELECT id FROM telemetry WHERE tenant_id = ? AND thing = ? AND topic = ?
                        ORDER BY id DESC LIMIT 1 OFFSET ?)
                    """)
            for key in touched {
                try trim.execute(arguments: [key[0], key[1], key[2], key[0], key[1], key[2], Self.telemetryHistory])
            }
        }
    }

    /// A thing's samples, newest first, optionally for one topic.
    public func telemetry(thing: String, topic: String? = nil, tenant: String = defaultTenant, limit: Int = 20) throws -> [TelemetrySample] {
        try pool.read { db in
            var sql = "SELECT * FROM telemetry WHERE tenant_id = ? AND thing = ?"
            var arguments: StatementArguments = [tenant, thing]
            if let topic {
                sql += " AND topic = ?"
                arguments += [topic]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let payload: Data = row["payload"]
                return TelemetrySample(
                    tenant: row["tenant_id"], thing: row["thing"], topic: row["topic"],
                    at: Date(timeIntervalSince1970: row["at"]), payload: Array(payload))
            }
        }
    }

    /// The last sample of each topic a thing published to.
    public func latestTelemetry(thing: String, tenant: String = defaultTenant) throws -> [TelemetrySample] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT * FROM telemetry WHERE id IN (
                        SELECT MAX(id) FROM telemetry WHERE tenant_id = ? AND thing = ? GROUP BY topic)
                    ORDER BY topic
                    """, arguments: [tenant, thing]
            ).map { row in
                let payload: Data = row["payload"]
                return TelemetrySample(
                    tenant: row["tenant_id"], thing: row["thing"], topic: row["topic"],
                    at: Date(timeIntervalSince1970: row["at"]), payload: Array(payload))
            }
        }
    }
}
