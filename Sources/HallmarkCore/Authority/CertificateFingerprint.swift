import Crypto
import SwiftASN1
import X509

/// SHA-256 fingerprints of certificates, as hex: how the registry finds a presented certificate.
public enum CertificateFingerprint {
    /// The fingerprint of a DER encoding.
    public static func sha256(der: [UInt8]) -> String { SHA256.hash(data: der).hexString }

    /// The fingerprint of a certificate's DER encoding.
    public static func sha256(_ certificate: Certificate) -> String {
        sha256(der: (try? certificate.derBytes()) ?? [])
    }
}

extension Certificate {
    /// The certificate's DER encoding.
    public func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}
