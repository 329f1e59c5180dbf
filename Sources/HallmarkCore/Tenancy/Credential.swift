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

/// Tenant identifiers: 1–32 of `[a-z0-9-]`, starting with a letter or digit; they appear in EST
/// paths (`/.well-known/est/<tenant>/simpleenroll`) and in the event log.
public enum TenantID {
    public static func validate(_ id: String) throws(HallmarkError) -> String {
        let valid =
            (1...32).contains(id.count) && id.first != "-"
            && id.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard valid else {
            throw HallmarkError(
                .tenantInvalid, "'\(id.prefix(40))' is not a tenant id: 1–32 of a–z, 0–9 and '-', not starting with '-'.",
                remedy: "Choose a short lowercase id such as 'acme'.")
        }
        return id
    }
}
