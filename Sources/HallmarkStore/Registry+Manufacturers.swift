import Crypto
import GRDB
import HallmarkCore
import X509

import Foundation

extension Registry {
    // MARK: Vendors

    /// Registers (or updates) a silicon vendor for a tenant: the key that signs its manifests and
    /// the roots (and intermediates) of its devices' attestation certificates.
    public func registerVendor(
        tenant: String, id: String, manifestKey: P256.Signing.PublicKey?, attestationCertificates: [Certificate], now: Date
    ) throws {
        guard (1...64).contains(id.count), id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw HallmarkError(.vendorInvalid, "'\(id.prefix(40))' is not a vendor id: 1–64 letters, digits, '-', '_', '.'.",
                                remedy: "Name the vendor with a short id such as 'microchip'.")
        }
        guard manifestKey != nil || !attestationCertificates.isEmpty else {
            throw HallmarkError(.vendorInvalid, "A vendor needs a manifest-signing key, an attestation root, or both.",
                                remedy: "Pass --manifest-key KEY.pem and/or --attestation-root ROOT.pem.")
        }
        for certificate in attestationCertificates {
            guard let constraints = try? certificate.extensions.basicConstraints, case .isCertificateAuthority = constraints else {
                throw HallmarkError(.vendorInvalid, "The attestation certificate \(certificate.subject) is not a CA certificate.",
                                    remedy: "Register the vendor's attestation root and intermediate CAs, not a device certificate.")
            }
        }
        let roots = try Self.encodeChain(attestationCertificates)
        try pool.write { db in
            guard try Self.tenantExists(db, tenant) else { throw Self.noSuchTenant(tenant) }
            try db.execute(
                sql: """
                    INSERT INTO vendors (tenant_id, id, manifest_key, attestation_roots, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id, id) DO UPDATE SET manifest_key = excluded.manifest_key,
                        attestation_roots = excluded.attestation_roots
                    """,
                arguments: [tenant, id, manifestKey.map { Data($0.derRepresentation) }, roots, now.timeIntervalSince1970])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .vendorRegister, decision: .allow, code: "vendor_registered",
                    detail: "vendor \(id): manifest key \(manifestKey.map(SecureElementManifest.keyID) ?? "none"), \(attestationCertificates.count) attestation CA(s)"),
                db)
        }
    }

    /// What a tenant trusts a vendor for; nil if the tenant has not registered it.
    public func vendorTrust(tenant: String, id: String) throws -> ManufacturerTrust? {
        try pool.read { db in try Self.vendorTrust(db, tenant: tenant, id: id) }
    }

    static func vendorTrust(_ db: Database, tenant: String, id: String) throws -> ManufacturerTrust? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM vendors WHERE tenant_id = ? AND id = ?", arguments: [tenant, id])
        else { return nil }
        let keyDER: Data? = row["manifest_key"]
        let certificates = try decodeChain(row["attestation_roots"])
        return ManufacturerTrust(
            vendor: id, manifestKey: try keyDER.map { try P256.Signing.PublicKey(derRepresentation: $0) },
            attestationRoots: certificates.filter { $0.subject == $0.issuer },
            attestationIntermediates: certificates.filter { $0.subject != $0.issuer })
    }

    /// Every vendor a tenant has registered, and the trust each holds.
    public func vendorTrusts(tenant: String) throws -> [ManufacturerTrust] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM vendors WHERE tenant_id = ? ORDER BY id", arguments: [tenant])
                .compactMap { try Self.vendorTrust(db, tenant: tenant, id: $0) }
        }
    }

    static func encodeChain(_ certificates: [Certificate]) throws -> Data? {
        guard !certificates.isEmpty else { return nil }
        return try JSONEncoder().encode(certificates.map { Data(try $0.derBytes()).base64EncodedString() })
    }

    static func decodeChain(_ data: Data?) throws -> [Certificate] {
        guard let data else { return [] }
        return try JSONDecoder().decode([String].self, from: data).map { text in
            try Certificate(derEncoded: Array(Data(base64Encoded: text) ?? Data()))
        }
    }

    // MARK: Manifests and ownership

    /// Which devices of a manifest a tenant claims.
    public enum Claim: Sendable, Hashable {
        case all
        case lot(String)
        case udids(Set<UDID>)

        func includes(_ device: ManifestDevice) -> Bool {
            switch self {
            case .all: return true
            case .lot(let lot): return device.lot == lot
            case .udids(let udids): return udids.contains(device.udid)
            }
        }
    }

    /// What a manifest import did.
    public struct ManifestImportReport: Sendable {
        public var manifestID: String
        public var entries = 0
        public var claimed = 0
        public var alreadyOwned = 0
        public var notSelected = 0
        public var problems: [ManifestProblem] = []
        public var committed = false
    }

    /// Claims the devices of a verified manifest for a tenant. A device has one owner: a device
    /// another tenant owns is refused (`ownership_conflict`) and that owner sees an event saying a
    /// claim on its device was refused (without naming who tried). Unless `skipInvalid`, any problem
    /// (in the manifest or a conflict) means nothing is claimed.
    public func importManifest(
        _ manifest: VerifiedManifest, vendor: String, tenant: String, claim: Claim, product: String = defaultProduct,
        skipInvalid: Bool, source: String?, now: Date
    ) async throws -> ManifestImportReport {
        guard try self.product(tenant: tenant, id: product) != nil else {
            throw HallmarkError(.notFound, "Product \(product) does not exist.", remedy: "Claim into an existing product.")
        }
        let selected = manifest.devices.filter(claim.includes)
        var initial = ManifestImportReport(manifestID: manifest.id)
        initial.entries = manifest.entryCount
        initial.notSelected = manifest.devices.count - selected.count
        initial.problems = manifest.problems
        let start = initial
        let chains = try selected.map { try Self.encodeChain($0.attestationChain) }
        let at = now.timeIntervalSince1970
        return try await committer.perform { db in
            var report = start
            var events: [AuditEvent] = []
            var claimable: [(ManifestDevice, Data?)] = []
            for (device, chain) in zip(selected, chains) {
                let existing = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT tenant_id, key_fingerprint FROM devices WHERE udid = ?"),
                    arguments: [device.udid.rawValue])
                if let existing {
                    let owner: String = existing["tenant_id"]
                    let key: String = existing["key_fingerprint"]
                    if owner != tenant {
                        report.problems.append(ManifestProblem(
                            index: device.index, udid: device.udid.rawValue,
                            error: HallmarkError(
                                .ownershipConflict, "Device \(device.udid) already belongs to another tenant.",
                                remedy: "A device has one owner; its owner must transfer it to you.")))
                        events.append(AuditEvent(
                            at: now, tenant: owner, action: .manifestClaim, decision: .refuse, code: "ownership_conflict",
                            udid: device.udid.rawValue, detail: "another tenant tried to claim this device; refused"))
                    } else if key != device.key.fingerprint {
                        report.problems.append(ManifestProblem(
                            index: device.index, udid: device.udid.rawValue,
                            error: HallmarkError(
                                .allowlistConflict, "Device \(device.udid) is on record with another root-of-trust key.",
                                remedy: "A changed key for a known UDID is a counterfeit sign; check with the vendor.")))
                    } else {
                        report.alreadyOwned += 1
                    }
                    continue
                }
                if try String.fetchOne(
                    db.cachedStatement(sql: "SELECT udid FROM devices WHERE key_fingerprint = ?"),
                    arguments: [device.key.fingerprint]) != nil
                {
                    report.problems.append(ManifestProblem(
                        index: device.index, udid: device.udid.rawValue,
                        error: HallmarkError(
                            .allowlistConflict, "Device \(device.udid)'s key is already on record for another device.",
                            remedy: "Two devices cannot share a root-of-trust key; check with the vendor.")))
                    continue
                }
                claimable.append((device, chain))
            }
            if !report.problems.isEmpty && !skipInvalid {
                report.alreadyOwned = 0
                for event in events { try Self.insert(event, db) }
                let first = report.problems[0]
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .manifestImport, decision: .refuse,
                        code: first.error.code.rawValue, source: source,
                        detail: "manifest \(manifest.id.prefix(16)) of vendor \(vendor): \(report.problems.count) problem(s), nothing claimed; first: entry \(first.index): \(first.error.reason)"),
                    db)
                return report
            }
            for (device, chain) in claimable {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO devices (udid, tenant_id, product_id, public_key, key_fingerprint, source, status,
                            created_at, updated_at, vendor_id, manifest_id, lot, attestation_chain)
                        VALUES (?, ?, ?, ?, ?, ?, 'allowed', ?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [
                    device.udid.rawValue, tenant, product, Data(device.key.spkiDER), device.key.fingerprint,
                    "manifest:\(vendor):\(manifest.id.prefix(16))", at, at, vendor, manifest.id, device.lot, chain,
                ])
                report.claimed += 1
            }
            for event in events { try Self.insert(event, db) }
            try db.execute(
                sql: """
                    INSERT INTO manifests (tenant_id, id, vendor_id, entries, claimed, imported_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id, id) DO UPDATE SET claimed = claimed + excluded.claimed
                    """,
                arguments: [tenant, manifest.id, vendor, manifest.entryCount, report.claimed, at])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .manifestImport, decision: .allow, code: "manifest_imported", source: source,
                    detail: "manifest \(manifest.id.prefix(16)) of vendor \(vendor): \(report.claimed) claimed, \(report.alreadyOwned) already yours, \(report.notSelected) not selected, \(report.problems.count) refused"),
                db)
            report.committed = true
            return report
        }
    }

    /// Hands a device to another tenant. Only the current owner can (its consent is the call);
    /// the device's certificates are revoked, its thing deactivated, and it enrols afresh with the
    /// new owner. Both tenants see an event.
    public func transferDevice(_ udid: UDID, from owner: String, to recipient: String, now: Date) async throws {
        try await committer.perform { db in
            guard try Self.tenantExists(db, recipient), recipient != owner else {
                throw HallmarkError(.notFound, "There is no other tenant \(recipient.prefix(40)) to transfer to.",
                                    remedy: "Name the receiving tenant's id.")
            }
            guard try String.fetchOne(db, sql: "SELECT tenant_id FROM devices WHERE udid = ?", arguments: [udid.rawValue]) == owner else {
                throw HallmarkError(.notFound, "Device \(udid) is not one of yours.", remedy: "Check the UDID.")
            }
            let at = now.timeIntervalSince1970
            try db.execute(
                sql: """
                    UPDATE certificates SET status = 'revoked', status_changed_at = ?, status_reason = 'transferred',
                        revocation_reason = 3
                    WHERE udid = ? AND status IN ('active', 'inactive', 'superseded')
                    """,
                arguments: [at, udid.rawValue])
            try db.execute(
                sql: "UPDATE things SET status = 'inactive', udid = NULL WHERE tenant_id = ? AND udid = ?", arguments: [owner, udid.rawValue])
            try db.execute(
                sql: """
                    UPDATE devices SET tenant_id = ?, product_id = ?, status = 'allowed', batch_id = NULL, updated_at = ?
                    WHERE udid = ?
                    """,
                arguments: [recipient, Self.defaultProduct, at, udid.rawValue])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: owner, action: .deviceStatus, decision: .allow, code: "transferred_out", udid: udid.rawValue,
                    detail: "transferred to tenant \(recipient); its certificates are revoked"), db)
            try Self.insert(
                AuditEvent(
                    at: now, tenant: recipient, action: .deviceTransfer, decision: .allow, code: "transferred_in",
                    udid: udid.rawValue, detail: "transferred by its previous owner; it enrols afresh"), db)
        }
    }
}

extension Registry {
    /// What attests a device: the chain its manifest carried and the vendors its tenant trusts
    /// for it (the manifest's vendor, or every vendor for a device of no manifest).
    public struct DeviceAttestation: Sendable {
        public var chain: [Certificate]
        public var trusts: [ManufacturerTrust]
    }

    public func attestation(udid: UDID, tenant: String) throws -> DeviceAttestation {
        try pool.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT vendor_id, attestation_chain FROM devices WHERE udid = ? AND tenant_id = ?",
                arguments: [udid.rawValue, tenant])
            let chain = try Self.decodeChain(row?["attestation_chain"])
            let trusts: [ManufacturerTrust]
            if let vendor: String = row?["vendor_id"] {
                trusts = try Self.vendorTrust(db, tenant: tenant, id: vendor).map { [$0] } ?? []
            } else {
                trusts = try String.fetchAll(db, sql: "SELECT id FROM vendors WHERE tenant_id = ?", arguments: [tenant])
                    .compactMap { try Self.vendorTrust(db, tenant: tenant, id: $0) }
            }
            return DeviceAttestation(chain: chain, trusts: trusts)
        }
    }
}
