import Crypto
import SwiftASN1
import X509

import Foundation

/// A device's public key in canonical form (DER SubjectPublicKeyInfo), restricted to the
/// algorithms Hallmark accepts for device identities: ECDSA P-256 and P-384.
public struct DeviceKey: Hashable, Sendable {
    /// The key algorithms a device identity may use.
    public enum Algorithm: String, Sendable, Codable {
        case p256 = "P-256"
        case p384 = "P-384"
    }

    /// The algorithm of the key.
    public let algorithm: Algorithm
    /// The DER encoding of the SubjectPublicKeyInfo.
    public let spkiDER: [UInt8]
    /// The parsed key; nil for a key read from the registry until something needs it.
    private let parsed: Certificate.PublicKey?

    /// The key as swift-certificates models it. A key the registry stored is parsed here, when
    /// first needed: decisions about it only compare its bytes.
    /// - Throws: `internal_error` if stored bytes are not a valid key (a damaged registry).
    public var publicKey: Certificate.PublicKey {
        get throws(HallmarkError) {
            if let parsed { return parsed }
            return try Self.parseStored(spkiDER).key
        }
    }

    /// Wraps a certificate or CSR public key.
    /// - Throws: `key_algorithm_not_allowed` for anything but P-256 or P-384.
    public init(_ publicKey: Certificate.PublicKey) throws(HallmarkError) {
        guard let algorithm = Self.algorithm(of: publicKey) else {
            throw HallmarkError(
                .keyAlgorithmNotAllowed, "The key is not ECDSA P-256 or P-384.",
                remedy: "Generate the device key on the P-256 (prime256v1) or P-384 (secp384r1) curve.")
        }
        self.algorithm = algorithm
        self.parsed = publicKey
        var serializer = DER.Serializer()
        do {
            try serializer.serialize(publicKey)
        } catch {
            throw HallmarkError(.internalError, "A public key could not be encoded.", remedy: "Report this as a bug.")
        }
        self.spkiDER = serializer.serializedBytes
    }

    /// A key as the registry stored it: DER that ``spkiDER`` produced when the key was checked on
    /// its way in. Its algorithm is read from the fixed prefix of that canonical encoding, and the
    /// EC point is parsed only when ``publicKey`` is asked for; bytes of any other shape are
    /// parsed now.
    public init(storedSPKI bytes: [UInt8]) throws(HallmarkError) {
        self.spkiDER = bytes
        if let algorithm = Self.canonicalAlgorithm(bytes) {
            self.algorithm = algorithm
            self.parsed = nil
        } else {
            (self.parsed, self.algorithm) = try Self.parseStored(bytes)
        }
    }

    private static func parseStored(_ bytes: [UInt8]) throws(HallmarkError) -> (key: Certificate.PublicKey, algorithm: Algorithm) {
        let key: Certificate.PublicKey
        do {
            key = try Certificate.PublicKey(derEncoded: bytes)
        } catch {
            throw HallmarkError(.internalError, "A stored public key is not valid DER.", remedy: "Re-import the device's allowlist entry.")
        }
        guard let algorithm = Self.algorithm(of: key) else {
            throw HallmarkError(.keyAlgorithmNotAllowed, "A stored key is not ECDSA P-256 or P-384.", remedy: "Re-import the device's allowlist entry.")
        }
        return (key, algorithm)
    }

    /// DER SubjectPublicKeyInfo of a named-curve EC key with an uncompressed point, up to the point's
    /// coordinates: id-ecPublicKey with prime256v1 (P-256) or secp384r1 (P-384).
    private static let p256Prefix: [UInt8] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
        0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ]
    private static let p384Prefix: [UInt8] = [
        0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
        0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
    ]

    private static func canonicalAlgorithm(_ bytes: [UInt8]) -> Algorithm? {
        if bytes.count == p256Prefix.count + 64 && bytes.starts(with: p256Prefix) { return .p256 }
        if bytes.count == p384Prefix.count + 96 && bytes.starts(with: p384Prefix) { return .p384 }
        return nil
    }

    /// The algorithm of a key, if it is one a device identity may use.
    private static func algorithm(of key: Certificate.PublicKey) -> Algorithm? {
        if P256.Signing.PublicKey(key) != nil { return .p256 }
        if P384.Signing.PublicKey(key) != nil { return .p384 }
        return nil
    }

    /// Parses a DER SubjectPublicKeyInfo.
    public init(spkiDER bytes: [UInt8]) throws(HallmarkError) {
        let key: Certificate.PublicKey
        do {
            key = try Certificate.PublicKey(derEncoded: bytes)
        } catch {
            throw HallmarkError(
                .allowlistInvalid, "The public key is not a valid DER SubjectPublicKeyInfo.",
                remedy: "Give the key as PEM (BEGIN PUBLIC KEY) or base64 of its DER SubjectPublicKeyInfo.")
        }
        try self.init(key)
    }

    /// Parses the text forms found in allowlists: a PEM `PUBLIC KEY` block, base64 of a DER
    /// SubjectPublicKeyInfo, or hexadecimal of the same DER.
    public init(text: String) throws(HallmarkError) {
        let trimmed = ASCII.trimmingSpaces(text)
        if trimmed.hasPrefix("-----BEGIN") {
            let key: Certificate.PublicKey
            do {
                key = try Certificate.PublicKey(pemEncoded: trimmed)
            } catch {
                throw HallmarkError(
                    .allowlistInvalid, "The PEM block is not a valid PUBLIC KEY.",
                    remedy: "Export the key with `openssl pkey -pubout` (a BEGIN PUBLIC KEY block).")
            }
            try self.init(key)
            return
        }
        let compact = String(decoding: trimmed.utf8.filter { !ASCII.isSpace($0) }, as: UTF8.self)
        if let der = Data(base64Encoded: compact) {
            try self.init(spkiDER: Array(der))
        } else if let der = [UInt8](hexString: compact) {
            try self.init(spkiDER: der)
        } else {
            throw HallmarkError(
                .allowlistInvalid, "The public key is neither PEM, base64 nor hex.",
                remedy: "Give the key as PEM (BEGIN PUBLIC KEY) or base64 of its DER SubjectPublicKeyInfo.")
        }
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, in hex: the key's stable fingerprint.
    public var fingerprint: String { SHA256.hash(data: spkiDER).hexString }

    /// The key as a PEM `PUBLIC KEY` block.
    public var pem: String {
        PEMDocument(type: "PUBLIC KEY", derBytes: spkiDER).pemString
    }

    public static func == (lhs: DeviceKey, rhs: DeviceKey) -> Bool { lhs.spkiDER == rhs.spkiDER }
    public func hash(into hasher: inout Hasher) { hasher.combine(spkiDER) }
}
