import Crypto
import _CryptoExtras
import X509

import Foundation

/// A private key encrypted at rest: scrypt turns the passphrase into an AES-256-GCM key that
/// seals the PKCS#8 PEM of the key. The file is JSON; nothing in it reveals the key.
public struct SealedPrivateKey: Codable, Sendable {
    /// The format tag, checked on open.
    public static let formatTag = "hallmark-sealed-key-v1"

    public var format: String
    /// What the key is for (`root-ca`, `issuing-ca`, `tls-server`), bound into the seal.
    public var purpose: String
    public var kdf: String
    public var scryptN: Int
    public var scryptR: Int
    public var scryptP: Int
    public var salt: String
    public var sealed: String

    /// Default scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s here).
    public static let defaultCost = (n: 1 << 15, r: 8, p: 1)

    /// Seals a private key under a passphrase.
    public static func seal(
        _ key: Certificate.PrivateKey, purpose: String, passphrase: Passphrase,
        cost: (n: Int, r: Int, p: Int) = defaultCost
    ) throws -> SealedPrivateKey {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let symmetric = try deriveKey(passphrase: passphrase, salt: salt, n: cost.n, r: cost.r, p: cost.p)
        let plaintext = Array(try key.serializeAsPEM().pemString.utf8)
        let box = try AES.GCM.seal(plaintext, using: symmetric, authenticating: Array((formatTag + purpose).utf8))
        return SealedPrivateKey(
            format: formatTag, purpose: purpose, kdf: "scrypt", scryptN: cost.n, scryptR: cost.r, scryptP: cost.p,
            salt: Data(salt).base64EncodedString(), sealed: box.combined!.base64EncodedString())
    }

    /// Opens the seal.
    /// - Throws: `passphrase_wrong` when the passphrase does not open it, `key_file_invalid` when
    ///   the file is not a Hallmark sealed key.
    public func open(passphrase: Passphrase) throws -> Certificate.PrivateKey {
        guard format == Self.formatTag, kdf == "scrypt",
            let salt = Data(base64Encoded: salt), let combined = Data(base64Encoded: sealed),
            scryptN > 1, scryptN <= 1 << 20, scryptR > 0, scryptR <= 32, scryptP > 0, scryptP <= 16
        else {
            throw HallmarkError(
                .keyFileInvalid, "The \(purpose) key file is not a Hallmark sealed key.",
                remedy: "Restore the data directory from backup, or run `hallmark ca init` in a new one.")
        }
        let symmetric = try Self.deriveKey(passphrase: passphrase, salt: Array(salt), n: scryptN, r: scryptR, p: scryptP)
        let plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            plaintext = try AES.GCM.open(box, using: symmetric, authenticating: Array((format + purpose).utf8))
        } catch {
            throw HallmarkError(
                .passphraseWrong, "The passphrase does not open the \(purpose) key.",
                remedy: "Give the passphrase used at `hallmark ca init` (HALLMARK_PASSPHRASE or --passphrase-file).")
        }
        do {
            return try Certificate.PrivateKey(pemEncoded: String(decoding: plaintext, as: UTF8.self))
        } catch {
            throw HallmarkError(.keyFileInvalid, "The \(purpose) key decrypted but is not a private key.", remedy: "Restore the data directory from backup.")
        }
    }

    private static func deriveKey(passphrase: Passphrase, salt: [UInt8], n: Int, r: Int, p: Int) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(
            from: Array(passphrase.value.utf8), salt: salt, outputByteCount: 32, rounds: n, blockSize: r,
            parallelism: p, maxMemory: 256 * n * r + 1 << 20)
    }
}

/// The secret that opens the CA's keys. Its description never shows it.
public struct Passphrase: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String

    /// Wraps a passphrase.
    /// - Throws: `passphrase_missing` when it is empty or shorter than 8 characters.
    public init(_ value: String) throws(HallmarkError) {
        let trimmed = value.trimmingCharacters(in: .newlines)
        guard trimmed.count >= 8 else {
            throw HallmarkError(
                .passphraseMissing, "The CA passphrase is missing or shorter than 8 characters.",
                remedy: "Set HALLMARK_PASSPHRASE or pass --passphrase-file with at least 8 characters.")
        }
        self.value = trimmed
    }

    public var description: String { "Passphrase(redacted)" }
    public var debugDescription: String { description }
}
