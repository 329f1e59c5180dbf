import Revocation
import X509

import Foundation

/// The profile of a device's operational certificate (documented in the README):
/// subject CN = thing name, CA:false (critical), keyUsage digitalSignature (critical),
/// extendedKeyUsage clientAuth, SKI and AKI, validity per product, backdated five minutes; where the
/// server publishes them, a CRL distribution point and an OCSP responder (authority information access).
public struct DeviceCertificateProfile: Sendable, Hashable {
    /// How long a device certificate is valid.
    public var validity: TimeInterval

    /// The default lifetime: one year.
    public static let defaultValidity: TimeInterval = 365 * 86400

    public init(validity: TimeInterval = defaultValidity) {
        self.validity = validity
    }

    /// The extensions every device certificate carries.
    public func extensions(
        publicKey: Certificate.PublicKey, issuer: Certificate, crl: String? = nil, ocsp: String? = nil
    ) throws -> Certificate.Extensions {
        var extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth])
            SubjectKeyIdentifier(hash: publicKey)
            try CertificateProfiles.authorityKeyIdentifier(of: issuer)
        }
        if let ocsp { try extensions.append(RevocationExtensions.authorityInformationAccess(ocsp: ocsp)) }
        if let crl { try extensions.append(RevocationExtensions.crlDistributionPoint(crl)) }
        return extensions
    }
}
