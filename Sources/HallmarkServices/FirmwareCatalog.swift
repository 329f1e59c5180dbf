import Crypto
import Firmware
import HallmarkCore
import HallmarkStore
import X509

import Foundation

/// A tenant's firmware: product keys, mastering, imports from registered signers, and each
/// device's copy of a release. The plain image is never stored; the signing and mastering keys
/// are opened with the passphrase only for as long as one call.
public struct FirmwareCatalog: Sendable {
    public let registry: Registry
    public let tenant: String

    public init(registry: Registry, tenant: String) {
        self.registry = registry
        self.tenant = tenant
    }

    /// The public halves of a product's keys, as PEM.
    public struct PublicKeys: Sendable {
        public var signing: String
        public var mastering: String
        /// imgtool's `getpubhash -e raw` of the signing key, in hex: the KEYHASH its images carry.
        public var signingKeyHash: String
    }

    /// Makes a product's signing and mastering keys (P-256), sealed under the passphrase.
    /// - Throws: `firmware_key_exists`, `not_found`.
    public func createKeys(product: String, passphrase: Passphrase, now: Date = Date()) throws -> PublicKeys {
        let signing = P256.Signing.PrivateKey()
        let mastering = P256.Signing.PrivateKey()
        let keyHash = MCUbootImage.keyHash(signing.publicKey).hexString
        try registry.createFirmwareKeys(
            .init(
                tenant: tenant, product: product,
                signingKeySealed: try Self.seal(signing, purpose: "firmware-signing", passphrase: passphrase),
                masteringKeySealed: try Self.seal(mastering, purpose: "firmware-mastering", passphrase: passphrase),
                signingPublicKey: Array(signing.publicKey.derRepresentation), masteringPublicKey: Array(mastering.publicKey.derRepresentation)),
            signingKeyHash: keyHash, now: now)
        return try publicKeys(product: product)
    }

    /// A product's public keys.
    public func publicKeys(product: String) throws -> PublicKeys {
        let keys = try registry.firmwareKeys(tenant: tenant, product: product)
        let signing = try P256.Signing.PublicKey(derRepresentation: keys.signingPublicKey)
        let mastering = try P256.Signing.PublicKey(derRepresentation: keys.masteringPublicKey)
        return PublicKeys(
            signing: signing.pemRepresentation + "\n", mastering: mastering.pemRepresentation + "\n",
            signingKeyHash: MCUbootImage.keyHash(signing).hexString)
    }

    /// Signs and encrypts a plain binary as a new release.
    /// - Parameter securityCounter: nil for imgtool's `auto` (from the version).
    public func master(
        product: String, binary: [UInt8], version: ImageVersion, securityCounter: UInt32?, passphrase: Passphrase, now: Date = Date()
    ) throws -> Registry.FirmwareRelease {
        let keys = try registry.firmwareKeys(tenant: tenant, product: product)
        let signing = try Self.open(keys.signingKeySealed, passphrase: passphrase)
        let mastering = try P256.KeyAgreement.PublicKey(derRepresentation: keys.masteringPublicKey)
        let productClass = ProductClass(tenant: tenant, product: product)
        let image = try FirmwareMastering(signingKey: signing, masteringKey: mastering).master(
            binary, version: version, securityCounter: securityCounter ?? version.automaticSecurityCounter,
            vendorID: productClass.vendorID, classID: productClass.classID)
        let copier = try DeviceCopier(image: image, masteringKey: try Self.agreementKey(keys.masteringKeySealed, passphrase: passphrase))
        return try record(image, copier: copier, product: product, signerKeyHash: MCUbootImage.keyHash(signing.publicKey), origin: "mastered", now: now)
    }

    /// Imports an image signed elsewhere (`imgtool sign -k OEM.pem -E mastering.pub.pem -s N`),
    /// after checking it against the product's registered signers; Hallmark never holds the
    /// signer's private key.
    /// - Throws: `firmware_image_invalid` (not MCUboot, not encrypted for the mastering key, no
    ///   security counter, another product's class id), `firmware_signer_unknown`,
    ///   `firmware_signature_invalid`, `firmware_release_exists`; each refusal is an event.
    public func importImage(product: String, bytes: [UInt8], passphrase: Passphrase, source: String? = nil, now: Date = Date()) async throws
        -> Registry.FirmwareRelease
    {
        do {
            let keys = try registry.firmwareKeys(tenant: tenant, product: product)
            let image = try MCUbootImage(bytes)
            let copier = try DeviceCopier(image: image, masteringKey: try Self.agreementKey(keys.masteringKeySealed, passphrase: passphrase))
            let signers = try registry.firmwareSigners(tenant: tenant, product: product).map { try P256.Signing.PublicKey(derRepresentation: $0) }
            let verified = try image.verify(signers: signers, plaintextPayload: try copier.plaintextPayload())
            guard verified.securityCounter != nil else {
                throw HallmarkError(
                    .firmwareImageInvalid, "The image has no security counter (SEC_CNT) in its protected TLVs.",
                    remedy: "Sign it with `imgtool sign -s N` (or `-s auto`): devices refuse images without one.")
            }
            if let classID = image.classID, classID != ProductClass(tenant: tenant, product: product).classID {
                throw HallmarkError(
                    .firmwareWrongProduct, "The image's class id (UUID_CID) is not product \(product)'s.",
                    remedy: "Sign it with `imgtool sign --vid \(tenant) --cid \(product)`, or import it into its own product.")
            }
            return try record(image, copier: copier, product: product, signerKeyHash: verified.signerKeyHash, origin: "imported", now: now)
        } catch let refusal as HallmarkError where refusal.code != .firmwareReleaseExists {
            try? await registry.append([
                AuditEvent(
                    at: now, tenant: tenant, action: .firmwareRelease, decision: .refuse, code: refusal.code.rawValue, source: source,
                    detail: "import into product \(product) refused: \(refusal.reason)")
            ])
            throw refusal
        }
    }

    private func record(
        _ image: MCUbootImage, copier: DeviceCopier, product: String, signerKeyHash: [UInt8], origin: String, now: Date
    ) throws -> Registry.FirmwareRelease {
        guard let digest = image.digest else { throw HallmarkError(.firmwareImageInvalid, "The image has no SHA256 TLV.", remedy: "Sign it again.") }
        let release = Registry.FirmwareRelease(
            id: digest.hexString, tenant: tenant, product: product, version: image.header.version.description,
            securityCounter: image.securityCounter ?? 0, size: image.bytes.count, signerKeyHash: signerKeyHash.hexString, origin: origin,
            createdAt: now)
        try registry.addFirmwareRelease(release, image: image.bytes, contentKeyHash: copier.contentKeyFingerprint)
        return release
    }

    /// A device's copy of a release: the release's image with the content key wrapped for the
    /// device's firmware key.
    /// - Throws: `not_found` (no such release or device, or not this tenant's),
    ///   `firmware_wrong_product`, `firmware_key_missing`; each refusal is an event.
    public func deviceImage(release id: String, udid: String, passphrase: Passphrase, source: String? = nil, now: Date = Date()) async throws
        -> (Registry.FirmwareRelease, [UInt8])
    {
        do {
            let release = try registry.firmwareRelease(tenant: tenant, id: id)
            guard let device = try registry.deviceFirmwareKey(udid: udid), device.tenant == tenant else {
                throw HallmarkError(.notFound, "No device \(udid.prefix(64)) in this tenant.", remedy: "Check the UDID with `hallmark registry show`.")
            }
            guard device.product == release.product else {
                throw HallmarkError(
                    .firmwareWrongProduct, "Release \(release.id.prefix(16)) is for product \(release.product); device \(udid) is a \(device.product).",
                    remedy: "Give the device a release of its own product.")
            }
            let recipient = try Self.firmwareKey(device.key, udid: udid)
            let keys = try registry.firmwareKeys(tenant: tenant, product: release.product)
            let copier = try DeviceCopier(
                image: try MCUbootImage(try registry.firmwareImage(release: release.id)),
                masteringKey: try Self.agreementKey(keys.masteringKeySealed, passphrase: passphrase))
            let copy = try copier.copy(for: recipient)
            try await registry.append([
                AuditEvent(
                    at: now, tenant: tenant, action: .firmwareImage, decision: .allow, code: "wrapped", udid: udid, source: source,
                    detail: "release \(release.id.prefix(16)) (\(release.version)) wrapped for the device's firmware key")
            ])
            return (release, copy)
        } catch let refusal as HallmarkError {
            try? await registry.append([
                AuditEvent(
                    at: now, tenant: tenant, action: .firmwareImage, decision: .refuse, code: refusal.code.rawValue, udid: udid, source: source,
                    detail: "copy of release \(id.prefix(16)) refused: \(refusal.reason)")
            ])
            throw refusal
        }
    }

    /// A device's firmware decryption key from its registry record.
    /// - Throws: `firmware_key_missing` when the record has none (or not a P-256 key).
    static func firmwareKey(_ der: [UInt8]?, udid: String) throws -> P256.KeyAgreement.PublicKey {
        guard let der, let key = try? P256.KeyAgreement.PublicKey(derRepresentation: der) else {
            throw HallmarkError(
                .firmwareKeyMissing, "Device \(udid) has no firmware decryption key on record.",
                remedy: "List its key in the allowlist's firmware_key column and import it again.")
        }
        return key
    }

    static func seal(_ key: P256.Signing.PrivateKey, purpose: String, passphrase: Passphrase) throws -> String {
        let sealed = try SealedPrivateKey.seal(Certificate.PrivateKey(key), purpose: purpose, passphrase: passphrase)
        return String(decoding: try JSONEncoder().encode(sealed), as: UTF8.self)
    }

    static func open(_ json: String, passphrase: Passphrase) throws -> P256.Signing.PrivateKey {
        let sealed: SealedPrivateKey
        do { sealed = try JSONDecoder().decode(SealedPrivateKey.self, from: Data(json.utf8)) } catch {
            throw HallmarkError(.keyFileInvalid, "A stored firmware key is not a Hallmark sealed key.", remedy: "Restore the registry from backup.")
        }
        let key = try sealed.open(passphrase: passphrase)
        return try P256.Signing.PrivateKey(pemRepresentation: key.serializeAsPEM().pemString)
    }

    static func agreementKey(_ json: String, passphrase: Passphrase) throws -> P256.KeyAgreement.PrivateKey {
        try P256.KeyAgreement.PrivateKey(rawRepresentation: open(json, passphrase: passphrase).rawRepresentation)
    }
}
