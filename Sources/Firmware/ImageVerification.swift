import Crypto
import HallmarkCore

/// What a successful check of an image's hash and signature established.
public struct VerifiedImage: Sendable, Hashable {
    /// The SHA-256 of the hashed region, equal to the image's SHA256 TLV.
    public let digest: [UInt8]
    /// The SHA-256 of the signing key's DER SubjectPublicKeyInfo (the KEYHASH TLV).
    public let signerKeyHash: [UInt8]
    public let version: ImageVersion
    public let securityCounter: UInt32?
}

extension MCUbootImage {
    /// The SHA-256 of a P-256 key's DER SubjectPublicKeyInfo, as imgtool's `getpubhash -e raw` prints it.
    public static func keyHash(_ key: P256.Signing.PublicKey) -> [UInt8] {
        Array(SHA256.hash(data: key.derRepresentation))
    }

    /// Checks the image as MCUboot's `bootutil_img_validate` does, over a plaintext payload: the
    /// SHA256 TLV against the hashed region, KEYHASH naming one of `signers`, and the ECDSA
    /// signature by that key.
    /// - Parameter plaintextPayload: the decrypted payload of an encrypted image; nil for an image
    ///   whose bytes are already plain.
    /// - Throws: `firmware_signature_invalid` when the digest or signature does not match,
    ///   `firmware_signer_unknown` when KEYHASH names none of `signers`, `firmware_image_invalid`
    ///   when a TLV is missing.
    public func verify(signers: [P256.Signing.PublicKey], plaintextPayload: [UInt8]? = nil) throws(FirmwareError) -> VerifiedImage {
        guard let expected = digest, expected.count == 32 else { throw .imageInvalid("The image has no SHA256 TLV.") }
        guard let keyHash = unprotected(.keyHash)?.value else { throw .imageInvalid("The image has no KEYHASH TLV naming its signer.") }
        guard let signature = unprotected(.ecdsaSignature)?.value else { throw .imageInvalid("The image has no ECDSA-P256 signature TLV.") }
        var region = Array(bytes[..<hashedRegionEnd])
        if let plaintextPayload {
            guard plaintextPayload.count == payloadRange.count else { throw .imageInvalid("The decrypted payload's length differs from the header's.") }
            region.replaceSubrange(payloadRange, with: plaintextPayload)
        }
        let computed = Array(SHA256.hash(data: region))
        guard computed == expected else {
            throw HallmarkError(
                .firmwareSignatureInvalid, "The image's hash does not match its SHA256 TLV: its payload or header was altered.",
                remedy: "Download the image again; if it keeps failing, the image was tampered with.")
        }
        guard let signer = signers.first(where: { Self.keyHash($0) == keyHash }) else {
            throw HallmarkError(
                .firmwareSignerUnknown, "The image is signed by a key (hash \(keyHash.prefix(8).hexString)…) that is not a registered signer.",
                remedy: "Register the signing key with `hallmark firmware signer add`, or sign with a registered key.")
        }
        guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature),
            signer.isValidSignature(parsed, for: region)
        else {
            throw HallmarkError(
                .firmwareSignatureInvalid, "The image's ECDSA signature does not verify with the key its KEYHASH names.",
                remedy: "Sign the image again with `hallmark firmware master` or `imgtool sign`.")
        }
        return VerifiedImage(digest: computed, signerKeyHash: keyHash, version: header.version, securityCounter: securityCounter)
    }
}

