import HallmarkCore
import HallmarkStore

import Foundation

/// Imports a vendor manifest for a tenant: finds the vendor the tenant registered, verifies every
/// entry, and claims the selected devices. Every refusal is logged.
public struct ManifestImport: Sendable {
    let registry: any ManifestStore

    public init(registry: any ManifestStore) {
        self.registry = registry
    }

    public func run(
        _ file: [UInt8], vendor: String, tenant: String, claim: Registry.Claim, product: String = Registry.defaultProduct,
        skipInvalid: Bool, source: String?, now: Date
    ) async throws -> Registry.ManifestImportReport {
        do {
            guard let trust = try registry.vendorTrust(tenant: tenant, id: vendor) else {
                throw HallmarkError(
                    .vendorInvalid, "Vendor \(vendor.prefix(64)) is not registered for this tenant.",
                    remedy: "Register it first: `hallmark vendor register \(vendor.prefix(64)) --manifest-key KEY.pem`.")
            }
            let verified = try await ManifestVerifier.verify(file, trust: trust, now: now)
            return try await registry.importManifest(
                verified, vendor: vendor, tenant: tenant, claim: claim, product: product, skipInvalid: skipInvalid,
                source: source, now: now)
        } catch let error as HallmarkError {
            try await registry.append(
                AuditEvent(
                    at: now, tenant: tenant, action: .manifestImport, decision: .refuse, code: error.code.rawValue,
                    source: source, detail: error.reason))
            throw error
        }
    }
}
