import Crypto

/// Fresh P-256 signing keys. The `compactRepresentable: false` form skips the search for a
/// compact-representable point, which is about twice as fast and changes nothing for ECDSA.
public enum P256Key {
    public static func make() -> P256.Signing.PrivateKey { P256.Signing.PrivateKey(compactRepresentable: false) }
}

/// Fresh P-384 signing keys.
public enum P384Key {
    public static func make() -> P384.Signing.PrivateKey { P384.Signing.PrivateKey(compactRepresentable: false) }
}
