import X509

import Foundation

/// The profile of a device's operational certificate (documented in the README):
/// subject CN = thing name, CA:false (critical), keyUsage digitalSignature (critical),
/// extendedKeyUsage clientAuth, SKI and AKI, validity per product, backdated five minutes.
public struct DeviceCertificateProfile: Sendable, Hashable {
    /// How long a device certificate is valid.
    public var validity: TimeInterval

    /// The default lifetime: one year.
    public static let defaultValidity: TimeInterval = 365 * 86400

    public init(validity: TimeInterval = defaultValidity) {
        self.validity = validity
    }

    /// The extensions every device certificate carries.
    public func extensions(publicKey: Certificate.PublicKey, issuer: Certificate) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth])
            SubjectKeyIdentifier(hash: publicKey)
            try CertificateProfiles.authorityKeyIdentifier(of: issuer)
        }
    }
}
