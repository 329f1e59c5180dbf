import GRDB
import HallmarkCore

import Foundation

extension Registry {
    /// A policy's latest version and the things it is attached to.
    public struct PolicySummary: Sendable, Hashable {
        public var name: String
        public var version: Int
        public var document: String
        public var attachments: Int
    }

    /// Creates a policy, or a new version of an existing one (the latest version is in force).
    /// The document is checked before anything is stored. Returns the new version.
    @discardableResult
    public func putPolicy(name: String, document: String, tenant: String = defaultTenant, now: Date) async throws -> Int {
        _ = try Policy(document: document)
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw HallmarkError(.policyInvalid, "The policy name \(name) is not valid.", remedy: "Use 1-128 letters, digits, '-', '_' or '.'.")
        }
        return try await committer.perform { db in
            let version = (try Int.fetchOne(
                db, sql: "SELECT MAX(version) FROM policies WHERE tenant_id = ? AND name = ?", arguments: [tenant, name]) ?? 0) + 1
            try db.execute(
                sql: "INSERT INTO policies (tenant_id, name, version, document, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [tenant, name, version, document, now.timeIntervalSince1970])
            try Self.insert(
                AuditEvent(at: now, tenant: tenant, action: .policyPut, decision: .allow, code: "policy_version_created",
                           detail: "\(name) version \(version)"), db)
            return version
        }
    }

    /// Attaches or detaches a policy to or from a thing, with an event. Takes effect for the
    /// thing's next connection; live sessions are re-evaluated by the broker when it sees the event.
    public func setPolicyAttachment(policy: String, thing: String, attached: Bool, tenant: String = defaultTenant, now: Date) async throws {
        try await committer.perform { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM policies WHERE tenant_id = ? AND name = ?", arguments: [tenant, policy]) ?? false else {
                throw HallmarkError(.notFound, "There is no policy named \(policy).", remedy: "Create it with `hallmark policy create`.")
            }
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM things WHERE tenant_id = ? AND name = ?", arguments: [tenant, thing]) ?? false else {
                throw HallmarkError(.notFound, "There is no thing named \(thing).", remedy: "Check the name with `hallmark registry devices`.")
            }
            if attached {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO thing_policies (tenant_id, thing_name, policy_name) VALUES (?, ?, ?)",
                    arguments: [tenant, thing, policy])
            } else {
                try db.execute(
                    sql: "DELETE FROM thing_policies WHERE tenant_id = ? AND thing_name = ? AND policy_name = ?",
                    arguments: [tenant, thing, policy])
            }
            try Self.insert(
                AuditEvent(at: now, tenant: tenant, action: .policyAttachment, decision: .allow,
                           code: attached ? "policy_attached" : "policy_detached", thing: thing, detail: policy), db)
        }
    }

    /// Every policy's latest version.
    public func policies(tenant: String = defaultTenant) throws -> [PolicySummary] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT p.name, p.version, p.document,
                        (SELECT COUNT(*) FROM thing_policies tp WHERE tp.tenant_id = p.tenant_id AND tp.policy_name = p.name) AS n
                    FROM policies p
                    WHERE p.tenant_id = ? AND p.version = (SELECT MAX(version) FROM policies q WHERE q.tenant_id = p.tenant_id AND q.name = p.name)
                    ORDER BY p.name
                    """, arguments: [tenant]
            ).map { PolicySummary(name: $0["name"], version: $0["version"], document: $0["document"], attachments: $0["n"]) }
        }
    }
}
