import GRDB
import HallmarkCore
import X509

import Foundation

extension Registry {
    /// Gives a tenant made without one its own issuing CA, with an event. A tenant's CA is never
    /// replaced: certificates it issued stay verifiable against it.
    public func setTenantIssuingCA(_ certificate: Certificate, tenant: String, now: Date) throws {
        let der = try certificate.derBytes()
        try pool.write { db in
            guard try Self.tenantExists(db, tenant) else { throw Self.noSuchTenant(tenant) }
            try db.execute(
                sql: "UPDATE tenants SET issuing_ca = ? WHERE id = ? AND issuing_ca IS NULL", arguments: [Data(der), tenant])
            guard db.changesCount == 1 else { throw Self.tenantHasCA(tenant) }
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .tenantCA, decision: .allow, code: "tenant_ca_created",
                    detail: "issuing CA \(certificate.serialHex)"), db)
        }
    }

    /// Fails with `tenant_invalid` if the tenant has its own issuing CA already (checked before making one).
    public func requireNoTenantIssuingCA(_ tenant: String) throws {
        if try tenantIssuingCA(tenant) != nil { throw Self.tenantHasCA(tenant) }
    }

    static func tenantHasCA(_ tenant: String) -> HallmarkError {
        HallmarkError(
            .tenantInvalid, "Tenant \(tenant) already has its own issuing CA.", remedy: "Keep it: the tenant's certificates chain to it.")
    }

    /// A tenant's own issuing CA, if it has one.
    public func tenantIssuingCA(_ tenant: String) throws -> Certificate? {
        try pool.read { db in
            try Data.fetchOne(db.cachedStatement(sql: "SELECT issuing_ca FROM tenants WHERE id = ?"), arguments: [tenant])
                .map { try Certificate(derEncoded: Array($0)) }
        }
    }

    /// Every tenant's own issuing CA, by tenant.
    public func tenantIssuingCAs() throws -> [String: Certificate] {
        try pool.read { db in
            var result: [String: Certificate] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, issuing_ca FROM tenants WHERE issuing_ca IS NOT NULL") {
                let der: Data = row["issuing_ca"]
                result[row["id"]] = try Certificate(derEncoded: Array(der))
            }
            return result
        }
    }
}
