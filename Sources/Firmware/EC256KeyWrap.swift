import Crypto
import _CryptoExtras
import HallmarkCore

import Foundation

/// MCUboot's ENC_EC256 key wrap (imgtool `ecies_hkdf`, bootutil `boot_decrypt_key`): ECIES over
/// P-256 with HKDF-SHA256, AES-CTR and HMAC-SHA256.
///
/// The TLV is `ephemeral public key (65, uncompressed) ‖ HMAC tag (32) ‖ wrapped key (16 or 32)`.
public enum EC256KeyWrap {
    static let info = Array("MCUBoot_ECIES_v1".utf8)
    static let salt = [UInt8](repeating: 0, count: 32)
    static let zeroCounter = [UInt8](repeating: 0, count: 16)

    /// The TLV's length for a content key of `keyLength` bytes (113 for AES-128, 129 for AES-256).
    public static func tlvLength(keyLength: Int) -> Int { 65 + 32 + keyLength }

    /// Wraps a content key for one recipient with a fresh ephemeral key.
    public static func wrap(_ contentKey: [UInt8], for recipient: P256.KeyAgreement.PublicKey) throws -> [UInt8] {
        let ephemeral = P256.KeyAgreement.PrivateKey()
        let (encryptionKey, macKey) = try derive(ephemeral.sharedSecretFromKeyAgreement(with: recipient), keyLength: contentKey.count)
        let wrapped = Array(try AES._CTR.encrypt(contentKey, using: encryptionKey, nonce: .init(nonceBytes: zeroCounter)))
        let tag = Array(HMAC<SHA256>.authenticationCode(for: wrapped, using: macKey))
        return Array(ephemeral.publicKey.x963Representation) + tag + wrapped
    }

    /// Unwraps the content key with the recipient's private key.
    /// - Throws: `firmware_not_for_device` when the tag does not verify (the TLV was wrapped for
    ///   another key, or altered); `firmware_image_invalid` when it is not an ENC_EC256 value.
    public static func unwrap(_ tlv: [UInt8], keyLength: Int, with recipient: P256.KeyAgreement.PrivateKey) throws(FirmwareError) -> [UInt8] {
        guard tlv.count == tlvLength(keyLength: keyLength),
            let ephemeral = try? P256.KeyAgreement.PublicKey(x963Representation: tlv[0..<65])
        else {
            throw .imageInvalid("The ENC_EC256 TLV is not an ephemeral P-256 key, a tag and a \(keyLength)-byte wrapped key.")
        }
        let tag = Array(tlv[65..<97]), wrapped = Array(tlv[97...])
        do {
            let (encryptionKey, macKey) = try derive(recipient.sharedSecretFromKeyAgreement(with: ephemeral), keyLength: keyLength)
            guard HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: wrapped, using: macKey) else {
                throw HallmarkError(
                    .firmwareNotForDevice, "The image's content key was not wrapped for this key (its HMAC tag does not verify).",
                    remedy: "Download the copy made for this device: `hallmark firmware image RELEASE --udid UDID`.")
            }
            return Array(try AES._CTR.decrypt(wrapped, using: encryptionKey, nonce: .init(nonceBytes: zeroCounter)))
        } catch let error as HallmarkError {
            throw error
        } catch {
            throw .imageInvalid("The ENC_EC256 TLV's ephemeral key does not agree with this key.")
        }
    }

    private static func derive(_ secret: SharedSecret, keyLength: Int) throws -> (SymmetricKey, SymmetricKey) {
        let okm = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: info, outputByteCount: keyLength + 32)
        let bytes = okm.withUnsafeBytes { Array($0) }
        return (SymmetricKey(data: bytes[0..<keyLength]), SymmetricKey(data: bytes[keyLength...]))
    }
}

/// AES-CTR over an image payload with the zero counter block, as MCUboot encrypts it.
public enum PayloadCipher {
    /// Encrypts or decrypts (the same operation) a payload with a content key.
    public static func apply(_ payload: some DataProtocol, contentKey: [UInt8]) throws -> [UInt8] {
        Array(try AES._CTR.encrypt(payload, using: SymmetricKey(data: contentKey), nonce: .init(nonceBytes: EC256KeyWrap.zeroCounter)))
    }
}
