import Foundation
import GRDB
import HallmarkCore

extension Registry {
    /// A product's firmware keys: the signing key and the mastering key (the recipient of every
    /// release's content key), each sealed under the passphrase, with their public halves.
    public struct FirmwareKeys: Sendable {
        public var tenant: String
        public var product: String
        /// The sealed keys, as JSON (``SealedPrivateKey``).
        public var signingKeySealed: String
        public var masteringKeySealed: String
        /// DER SubjectPublicKeyInfo.
        public var signingPublicKey: [UInt8]
        public var masteringPublicKey: [UInt8]

        public init(
            tenant: String, product: String, signingKeySealed: String, masteringKeySealed: String, signingPublicKey: [UInt8],
            masteringPublicKey: [UInt8]
        ) {
            self.tenant = tenant
            self.product = product
            self.signingKeySealed = signingKeySealed
            self.masteringKeySealed = masteringKeySealed
            self.signingPublicKey = signingPublicKey
            self.masteringPublicKey = masteringPublicKey
        }
    }

    /// A firmware release: what its image is (its SHA256 TLV is its id) and who signed it.
    public struct FirmwareRelease: Sendable, Hashable, Codable {
        public var id: String
        public var tenant: String
        public var product: String
        public var version: String
        public var securityCounter: UInt32
        /// The mastered image's size in bytes (every device's copy has the same).
        public var size: Int
        /// The hex SHA-256 of the signer's DER public key (the image's KEYHASH).
        public var signerKeyHash: String
        /// `mastered` (signed by Hallmark) or `imported` (signed elsewhere, by a registered signer).
        public var origin: String
        public var createdAt: Date

        public init(
            id: String, tenant: String, product: String, version: String, securityCounter: UInt32, size: Int, signerKeyHash: String,
            origin: String, createdAt: Date
        ) {
            self.id = id
            self.tenant = tenant
            self.product = product
            self.version = version
            self.securityCounter = securityCounter
            self.size = size
            self.signerKeyHash = signerKeyHash
            self.origin = origin
            self.createdAt = createdAt
        }
    }

    /// Stores a product's new firmware keys; the product's signing key becomes a registered signer.
    /// - Throws: `not_found` for an unknown product, `firmware_key_exists` when it has keys.
    public func createFirmwareKeys(_ keys: FirmwareKeys, signingKeyHash: String, now: Date) throws {
        try recordingRefusal(tenant: keys.tenant, action: .firmwareKey, now: now, what: "keys for product \(keys.product)") {
            try pool.write { db in
                guard try Self.product(db, tenant: keys.tenant, id: keys.product) != nil else {
                    throw HallmarkError(.notFound, "Product \(keys.product) does not exist.", remedy: "Create it with `hallmark product create`.")
                }
                guard try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM firmware_keys WHERE tenant_id = ? AND product_id = ?", arguments: [keys.tenant, keys.product]) == nil
                else {
                    throw HallmarkError(
                        .firmwareKeyExists, "Product \(keys.product) already has firmware keys.",
                        remedy: "Keep them: devices in the field trust its signing key. Read the public halves with `hallmark firmware key show`.")
                }
                let at = now.timeIntervalSince1970
                try db.execute(
                    sql: """
                        INSERT INTO firmware_keys (tenant_id, product_id, signing_key_sealed, mastering_key_sealed, signing_public_key,
                            mastering_public_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        keys.tenant, keys.product, keys.signingKeySealed, keys.masteringKeySealed, Data(keys.signingPublicKey),
                        Data(keys.masteringPublicKey), at,
                    ])
                try Self.insertSigner(db, tenant: keys.tenant, product: keys.product, keyHash: signingKeyHash, publicKey: keys.signingPublicKey, at: at)
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: keys.tenant, action: .firmwareKey, decision: .allow, code: "created",
                        detail: "product \(keys.product): signing key \(signingKeyHash.prefix(16)), mastering key made"),
                    db)
            }
        }
    }

    /// A product's firmware keys.
    /// - Throws: `firmware_key_missing` when it has none.
    public func firmwareKeys(tenant: String, product: String) throws -> FirmwareKeys {
        let row = try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM firmware_keys WHERE tenant_id = ? AND product_id = ?", arguments: [tenant, product])
        }
        guard let row else {
            throw HallmarkError(
                .firmwareKeyMissing, "Product \(product) has no firmware keys.",
                remedy: "Make them with `hallmark firmware key create --product \(product) --out DIR`.")
        }
        return FirmwareKeys(
            tenant: tenant, product: product, signingKeySealed: row["signing_key_sealed"], masteringKeySealed: row["mastering_key_sealed"],
            signingPublicKey: [UInt8](row["signing_public_key"] as Data), masteringPublicKey: [UInt8](row["mastering_public_key"] as Data))
    }

    /// Registers a key whose signatures a product's imported images may carry.
    public func addFirmwareSigner(tenant: String, product: String, keyHash: String, publicKey: [UInt8], now: Date) throws {
        try recordingRefusal(tenant: tenant, action: .firmwareSigner, now: now, what: "signer for product \(product)") {
            try pool.write { db in
                guard try Self.product(db, tenant: tenant, id: product) != nil else {
                    throw HallmarkError(.notFound, "Product \(product) does not exist.", remedy: "Create it with `hallmark product create`.")
                }
                try Self.insertSigner(db, tenant: tenant, product: product, keyHash: keyHash, publicKey: publicKey, at: now.timeIntervalSince1970)
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .firmwareSigner, decision: .allow, code: "added",
                        detail: "product \(product): signer \(keyHash.prefix(16))"),
                    db)
            }
        }
    }

    private static func insertSigner(_ db: Database, tenant: String, product: String, keyHash: String, publicKey: [UInt8], at: Double) throws {
        try db.execute(
            sql: """
                INSERT INTO firmware_signers (tenant_id, product_id, key_hash, public_key, added_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT DO NOTHING
                """,
            arguments: [tenant, product, keyHash, Data(publicKey), at])
    }

    /// The DER public keys whose signatures a product's images may carry.
    public func firmwareSigners(tenant: String, product: String) throws -> [[UInt8]] {
        try pool.read { db in
            try Data.fetchAll(
                db, sql: "SELECT public_key FROM firmware_signers WHERE tenant_id = ? AND product_id = ? ORDER BY added_at",
                arguments: [tenant, product]
            ).map { [UInt8]($0) }
        }
    }

    /// Records a release and its mastered image.
    /// - Parameter contentKeyHash: a hash of the release's content key, so that no two releases
    ///   share one (AES-CTR with MCUboot's zero counter block makes a shared key a two-time pad).
    /// - Throws: `firmware_release_exists` when the image, its version or its content key is
    ///   already a release of the product.
    public func addFirmwareRelease(_ release: FirmwareRelease, image: [UInt8], contentKeyHash: String) throws {
        try recordingRefusal(tenant: release.tenant, action: .firmwareRelease, now: release.createdAt, what: "release \(release.version) of \(release.product)") {
            try pool.write { db in
                let clash = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT id, version, content_key_hash FROM firmware_releases
                        WHERE id = ? OR content_key_hash = ? OR (tenant_id = ? AND product_id = ? AND version = ?)
                        """,
                    arguments: [release.id, contentKeyHash, release.tenant, release.product, release.version])
                if let clash {
                    let reason: String =
                        if clash["id"] as String == release.id {
                            "This image is already release \(release.id.prefix(16))."
                        } else if clash["content_key_hash"] as String == contentKeyHash {
                            "This image's content key was used by release \((clash["id"] as String).prefix(16)): with AES-CTR's zero counter block, a reused key exposes both."
                        } else {
                            "Product \(release.product) already has a release of version \(release.version)."
                        }
                    throw HallmarkError(.firmwareReleaseExists, reason, remedy: "Master or sign a new version; each release needs a fresh content key.")
                }
                try db.execute(
                    sql: """
                        INSERT INTO firmware_releases (id, tenant_id, product_id, version, security_counter, size, signer_key_hash, origin,
                            content_key_hash, created_at, image) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        release.id, release.tenant, release.product, release.version, Int64(release.securityCounter), release.size,
                        release.signerKeyHash, release.origin, contentKeyHash, release.createdAt.timeIntervalSince1970, Data(image),
                    ])
                try Self.insert(
                    AuditEvent(
                        at: release.createdAt, tenant: release.tenant, action: .firmwareRelease, decision: .allow, code: release.origin,
                        detail: "release \(release.id) of product \(release.product): version \(release.version), security counter \(release.securityCounter), \(release.size) bytes, signer \(release.signerKeyHash.prefix(16))"),
                    db)
            }
        }
    }

    /// A tenant's releases, newest first; of one product when given.
    public func firmwareReleases(tenant: String, product: String? = nil) throws -> [FirmwareRelease] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, tenant_id, product_id, version, security_counter, size, signer_key_hash, origin, created_at
                    FROM firmware_releases WHERE tenant_id = ? AND (? IS NULL OR product_id = ?) ORDER BY created_at DESC, id
                    """,
                arguments: [tenant, product, product]
            ).map(Self.release)
        }
    }

    /// A release of the tenant's, by its id or a unique prefix of at least 8 hex digits.
    /// - Throws: `not_found` when there is none (or the prefix is ambiguous).
    public func firmwareRelease(tenant: String, id: String) throws -> FirmwareRelease {
        guard (8...64).contains(id.count), id.allSatisfy(\.isHexDigit) else {
            throw HallmarkError(
                .notFound, "'\(id.prefix(64))' is not a release id (8 to 64 hex digits).",
                remedy: "List releases with `hallmark firmware list` and give the id (or 8 or more of its first digits).")
        }
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, tenant_id, product_id, version, security_counter, size, signer_key_hash, origin, created_at
                    FROM firmware_releases WHERE tenant_id = ? AND id LIKE ? LIMIT 2
                    """,
                arguments: [tenant, id.lowercased() + "%"])
        }
        guard rows.count == 1 else {
            throw HallmarkError(
                .notFound, "No single release of this tenant has the id \(id.prefix(64)).",
                remedy: "List releases with `hallmark firmware list` and give the id (or 8 or more of its first digits).")
        }
        return Self.release(rows[0])
    }

    /// A release's mastered image.
    public func firmwareImage(release id: String) throws -> [UInt8] {
        try pool.read { db in
            try Data.fetchOne(db, sql: "SELECT image FROM firmware_releases WHERE id = ?", arguments: [id]).map { [UInt8]($0) }
        } ?? []
    }

    /// A device's tenant, product and firmware key (DER SubjectPublicKeyInfo), if it has one.
    public func deviceFirmwareKey(udid: String) throws -> (tenant: String, product: String, key: [UInt8]?)? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT tenant_id, product_id, firmware_key FROM devices WHERE udid = ?", arguments: [udid]).map {
                ($0["tenant_id"], $0["product_id"], ($0["firmware_key"] as Data?).map { [UInt8]($0) })
            }
        }
    }

    private static func release(_ row: Row) -> FirmwareRelease {
        FirmwareRelease(
            id: row["id"], tenant: row["tenant_id"], product: row["product_id"], version: row["version"],
            securityCounter: UInt32(truncatingIfNeeded: row["security_counter"] as Int64), size: row["size"],
            signerKeyHash: row["signer_key_hash"], origin: row["origin"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    /// Runs a write; a refusal it throws is logged as an event with its code before it is rethrown.
    func recordingRefusal(tenant: String, action: EventAction, now: Date, what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let refusal as HallmarkError {
            try? pool.write { db in
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: action, decision: .refuse, code: refusal.code.rawValue,
                        detail: "\(what): \(refusal.reason)"),
                    db)
            }
            throw refusal
        }
    }
}
