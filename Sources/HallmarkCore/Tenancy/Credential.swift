import Crypto

/// A bearer credential: an administrator's for a tenant, or a programming station's for a batch.
///
/// The secret is 256 random bits shown once; the registry keeps only its SHA-256, so a copy of the
/// database does not let anyone act as a tenant.
public enum Credential {
    /// A new secret: `prefix_` and 64 hex digits.
    public static func generate(prefix: String) -> String {
        let key = SymmetricKey(size: .bits256)
        return prefix + "_" + key.withUnsafeBytes { Array($0) }.hexString
    }

    /// A random identifier (not a secret): `bytes` random bytes in hex.
    public static func identifier(bytes: Int) -> String {
        (0..<bytes).map { _ in UInt8.random(in: 0...255) }.hexString
    }

    /// What the registry stores for a secret.
    public static func digest(_ secret: String) -> String {
        SHA256.hash(data: Array(secret.utf8)).hexString
    }
}
