import Crypto
import HallmarkCore

/// Masters a plain binary into a signed, encrypted MCUboot image, as `imgtool sign --pad-header
/// -E mastering.pub.pem -s N` would: a fresh content key per release, the image signed over its
/// plaintext, then the payload encrypted and the content key wrapped for the mastering key.
public struct FirmwareMastering: Sendable {
    /// The header size Zephyr builds reserve (`-H 0x200`); the header is padded with 0xff.
    public static let defaultHeaderSize: UInt16 = 0x200

    public let signingKey: P256.Signing.PrivateKey
    /// The recipient of every release's content key; devices' copies are wrapped from it.
    public let masteringKey: P256.KeyAgreement.PublicKey

    public init(signingKey: P256.Signing.PrivateKey, masteringKey: P256.KeyAgreement.PublicKey) {
        self.signingKey = signingKey
        self.masteringKey = masteringKey
    }

    /// Makes the image.
    /// - Parameters:
    ///   - binary: the application, without header room (it is added).
    ///   - classID: the product's 16-byte class id, written as a protected UUID_CID TLV (with
    ///     `vendorID` as UUID_VID) so a device can check the image is for its product.
    /// - Throws: `firmware_image_invalid` when the binary is empty or too large.
    public func master(
        _ binary: [UInt8], version: ImageVersion, securityCounter: UInt32, vendorID: [UInt8]? = nil, classID: [UInt8]? = nil,
        headerSize: UInt16 = defaultHeaderSize, keyLength: Int = 16
    ) throws -> MCUbootImage {
        guard !binary.isEmpty, binary.count < MCUbootImage.maximumSize - Int(headerSize) - 1024 else {
            throw FirmwareError.imageInvalid("The binary is empty or larger than \(MCUbootImage.maximumSize >> 20) MiB.")
        }
        precondition(keyLength == 16 || keyLength == 32)
        var payload = binary
        if payload.count % 16 != 0 { payload += [UInt8](repeating: 0, count: 16 - payload.count % 16) }
        var protected = [MCUbootTLV(.securityCounter, securityCounter.littleEndianBytes)]
        if let vendorID { protected.append(MCUbootTLV(.vendorID, vendorID)) }
        if let classID { protected.append(MCUbootTLV(.classID, classID)) }
        let protectedArea = MCUbootTLV.area(magic: MCUbootTLV.protectedMagic, protected)
        let header = MCUbootHeader(
            headerSize: headerSize, protectedTLVSize: UInt16(protectedArea.count), imageSize: UInt32(payload.count),
            flags: keyLength == 16 ? .encryptedAES128 : .encryptedAES256, version: version)
        let padding = [UInt8](repeating: 0xff, count: Int(headerSize) - MCUbootHeader.size)
        let region = header.bytes + padding + payload + protectedArea
        let digest = Array(SHA256.hash(data: region))
        let signature = try signingKey.signature(for: region).derRepresentation
        let contentKey = (0..<keyLength).map { _ in UInt8.random(in: 0...255) }
        let unprotected = [
            MCUbootTLV(.sha256, digest),
            MCUbootTLV(.keyHash, MCUbootImage.keyHash(signingKey.publicKey)),
            MCUbootTLV(.ecdsaSignature, Array(signature)),
            MCUbootTLV(.encEC256, try EC256KeyWrap.wrap(contentKey, for: masteringKey)),
        ]
        let encrypted = try PayloadCipher.apply(payload, contentKey: contentKey)
        let bytes = header.bytes + padding + encrypted + protectedArea + MCUbootTLV.area(magic: MCUbootTLV.unprotectedMagic, unprotected)
        return try MCUbootImage(bytes)
    }
}

/// Re-wraps a mastered image's content key for devices: unwrapped once with the mastering key,
/// then wrapped for each device with a fresh ephemeral key. Only the ENC_EC256 TLV differs
/// between copies; it is outside the signed region, so every copy keeps the release's digest and
/// signature.
public struct DeviceCopier: Sendable {
    let contentKey: [UInt8]
    /// The mastered image.
    public let image: MCUbootImage
    /// Where the ENC_EC256 value sits in the image, and its length: the only bytes a copy changes.
    public let keyRange: Range<Int>

    /// Opens a mastered image with the mastering key.
    /// - Throws: `firmware_image_invalid` when it is not encrypted for ENC_EC256,
    ///   `firmware_not_for_device` when its content key was not wrapped for this mastering key.
    public init(image: MCUbootImage, masteringKey: P256.KeyAgreement.PrivateKey) throws(FirmwareError) {
        guard let keyLength = image.header.contentKeyLength, let tlv = image.unprotected(.encEC256) else {
            throw .imageInvalid("The image is not encrypted with an ENC_EC256 key (sign it with `imgtool sign -E mastering.pub.pem`).")
        }
        do {
            contentKey = try EC256KeyWrap.unwrap(tlv.value, keyLength: keyLength, with: masteringKey)
        } catch where error.code == .firmwareNotForDevice {
            throw HallmarkError(
                .firmwareNotForDevice, "The image's content key is not wrapped for this product's mastering key.",
                remedy: "Encrypt the image with the product's key: `imgtool sign -E DIR/mastering.pub.pem …`.")
        }
        self.image = image
        self.keyRange = tlv.offset..<tlv.offset + tlv.value.count
    }

    /// A one-way fingerprint of the content key (SHA-256 under a label), so releases can be
    /// checked never to share one.
    public var contentKeyFingerprint: String {
        Array(SHA256.hash(data: Array("hallmark-firmware-content-key".utf8) + contentKey)).hexString
    }

    /// A device's ENC_EC256 value: the content key wrapped for its firmware key.
    public func wrappedKey(for device: P256.KeyAgreement.PublicKey) throws -> [UInt8] {
        try EC256KeyWrap.wrap(contentKey, for: device)
    }

    /// A device's whole copy.
    public func copy(for device: P256.KeyAgreement.PublicKey) throws -> [UInt8] {
        var bytes = image.bytes
        bytes.replaceSubrange(keyRange, with: try wrappedKey(for: device))
        return bytes
    }

    /// The plaintext payload, for checking the signature of an imported image.
    public func plaintextPayload() throws -> [UInt8] {
        try PayloadCipher.apply(image.bytes[image.payloadRange], contentKey: contentKey)
    }
}

extension MCUbootImage {
    /// Decrypts this copy with a device's firmware key and checks it: what a device's bootloader
    /// does before it trusts a download.
    /// - Returns: the check's result and the plaintext image (header ‖ plain payload ‖ TLVs), which
    ///   `imgtool verify` accepts.
    public func decrypt(with deviceKey: P256.KeyAgreement.PrivateKey, signers: [P256.Signing.PublicKey]) throws(FirmwareError) -> (VerifiedImage, [UInt8]) {
        guard let keyLength = header.contentKeyLength, let tlv = unprotected(.encEC256) else {
            throw .imageInvalid("The image is not encrypted for a device key (no ENCRYPTED flag or ENC_EC256 TLV).")
        }
        let contentKey = try EC256KeyWrap.unwrap(tlv.value, keyLength: keyLength, with: deviceKey)
        let plain: [UInt8]
        do { plain = try PayloadCipher.apply(bytes[payloadRange], contentKey: contentKey) } catch {
            throw .imageInvalid("The payload could not be decrypted.")
        }
        let verified = try verify(signers: signers, plaintextPayload: plain)
        var bytes = self.bytes
        bytes.replaceSubrange(payloadRange, with: plain)
        return (verified, bytes)
    }
}
