import GRDB
import HallmarkCore
import X509

import Foundation

extension Registry {
    /// A tenant (an OEM) and the size of its fleet.
    public struct TenantSummary: Sendable, Hashable {
        public var id: String
        public var name: String
        public var devices: Int
        public var things: Int
        public var hasCredential: Bool
        /// Whether the tenant has an issuing CA of its own (else the shared one signs its devices).
        public var hasOwnCA: Bool
    }

    /// Creates a tenant with its default product and policy, and returns its administrator
    /// credential (shown once; only its digest is kept).
    /// - Parameter issuingCA: The tenant's own issuing CA (``AuthorityFiles/createTenant(id:name:in:passphrase:now:)``
    ///   makes it); without one, the shared issuing CA signs the tenant's devices.
    public func createTenant(id: String, name: String, issuingCA: Certificate? = nil, now: Date) throws -> String {
        let id = try TenantID.validate(id)
        let secret = Credential.generate(prefix: "hmk_admin")
        let caDER = try issuingCA?.derBytes()
        try pool.write { db in
            if try Self.tenantExists(db, id) { throw Self.tenantAlreadyExists(id) }
            try db.execute(
                sql: "INSERT INTO tenants (id, name, created_at, admin_token_hash, issuing_ca) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, name, now.timeIntervalSince1970, Credential.digest(secret), caDER.map { Data($0) }])
            try Self.seedTenant(db, tenant: id, now: now)
            try Self.insert(
                AuditEvent(at: now, tenant: id, action: .tenantCreate, decision: .allow, code: "tenant_created", detail: name), db)
        }
        return secret
    }

    /// Every tenant starts with the default policy and a default product using it.
    static func seedTenant(_ db: Database, tenant: String, now: Date) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO policies (tenant_id, name, version, document, created_at) VALUES (?, ?, 1, ?, ?)",
            arguments: [tenant, DefaultPolicy.name, DefaultPolicy.document, now.timeIntervalSince1970])
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO products (tenant_id, id, name, certificate_validity_seconds, default_policy, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                tenant, Self.defaultProduct, "Default product", DeviceCertificateProfile.defaultValidity, DefaultPolicy.name,
                now.timeIntervalSince1970,
            ])
    }

    /// Replaces a tenant's administrator credential; the old one stops working at once.
    public func rotateTenantCredential(_ tenant: String, now: Date) throws -> String {
        let secret = Credential.generate(prefix: "hmk_admin")
        try pool.write { db in
            try db.execute(
                sql: "UPDATE tenants SET admin_token_hash = ? WHERE id = ?", arguments: [Credential.digest(secret), tenant])
            guard db.changesCount == 1 else { throw Self.noSuchTenant(tenant) }
            try Self.insert(
                AuditEvent(at: now, tenant: tenant, action: .tenantCredential, decision: .allow, code: "credential_rotated", detail: ""),
                db)
        }
        return secret
    }

    /// The tenant an administrator credential belongs to, if any.
    public func tenant(forCredential secret: String) throws -> String? {
        try pool.read { db in
            try String.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM tenants WHERE admin_token_hash = ?"),
                arguments: [Credential.digest(secret)])
        }
    }

    /// Whether a tenant exists.
    public func tenantExists(_ id: String) throws -> Bool {
        try pool.read { db in try Self.tenantExists(db, id) }
    }

    static func tenantExists(_ db: Database, _ id: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM tenants WHERE id = ?"), arguments: [id]) ?? false
    }

    /// Fails with `not_found` unless the tenant exists.
    public func requireTenant(_ id: String) throws {
        guard try tenantExists(id) else { throw Self.noSuchTenant(id) }
    }

    /// Fails with `tenant_invalid` if the tenant exists (checked before work a new tenant needs, such as its CA).
    public func requireNoTenant(_ id: String) throws {
        if try tenantExists(id) { throw Self.tenantAlreadyExists(id) }
    }

    static func tenantAlreadyExists(_ id: String) -> HallmarkError {
        HallmarkError(
            .tenantInvalid, "Tenant \(id) already exists.",
            remedy: "Choose another id, or give the tenant a new credential with `hallmark tenant credential \(id)`.")
    }

    static func noSuchTenant(_ id: String) -> HallmarkError {
        HallmarkError(.notFound, "There is no tenant \(id.prefix(40)).", remedy: "List tenants with `hallmark tenant list`, or create it.")
    }

    /// Every tenant, with its fleet size.
    public func tenants() throws -> [TenantSummary] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT t.id, t.name, t.admin_token_hash IS NOT NULL AS credential, t.issuing_ca IS NOT NULL AS own_ca,
                        (SELECT COUNT(*) FROM devices d WHERE d.tenant_id = t.id) AS devices,
                        (SELECT COUNT(*) FROM things h WHERE h.tenant_id = t.id) AS things
                    FROM tenants t ORDER BY t.id
                    """
            ).map { row in
                TenantSummary(id: row["id"], name: row["name"], devices: row["devices"], things: row["things"], hasCredential: row["credential"],
                              hasOwnCA: row["own_ca"])
            }
        }
    }
}

extension Registry {
    /// What a product does about a suspected clone: quarantine the device, or only raise the alarm.
    public enum CloneResponse: String, Sendable, CaseIterable {
        case quarantine, alarm
    }

    /// Sets a product's response to a suspected clone, with an event.
    public func setCloneResponse(_ response: CloneResponse, tenant: String, product: String, now: Date) throws {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE products SET clone_response = ? WHERE tenant_id = ? AND id = ?",
                arguments: [response.rawValue, tenant, product])
            guard db.changesCount == 1 else {
                throw HallmarkError(.notFound, "Product \(product.prefix(40)) does not exist.", remedy: "Name an existing product.")
            }
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .productUpdate, decision: .allow, code: "clone_response_set",
                    detail: "product \(product): a suspected clone is met with \(response.rawValue)"), db)
        }
    }
}
