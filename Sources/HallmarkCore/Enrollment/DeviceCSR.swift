import SwiftASN1
import X509

/// The CSR a device sends to enrol: subject CN = its UDID, signed by the key it certifies.
public enum DeviceCSR {
    /// Builds a device CSR.
    /// - Parameters:
    ///   - commonName: The UDID (or, in tests, any subject CN).
    ///   - key: The key to certify and sign with; the signature algorithm follows its curve.
    public static func make(commonName: String, key: Certificate.PrivateKey) throws -> CertificateSigningRequest {
        try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(commonName) }, privateKey: key,
            attributes: .init(), signatureAlgorithm: CertificateProfiles.signatureAlgorithm(for: key))
    }
}

extension CertificateSigningRequest {
    /// The CSR's DER encoding.
    public func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}

extension Certificate {
    /// The serial number as lower-case hex: how the registry names a certificate.
    public var serialHex: String { Array(serialNumber.bytes).hexString }
}
