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

    /// How long a renewal's superseded certificate stays good (for a retry of the renewal) when
    /// the device does not connect with its new one sooner; then it is revoked (superseded).
    public var supersededGrace: TimeInterval
    /// How long after its certificate expired a device may still enrol with a CSR signed by its
    /// root-of-trust key and get a new one (a device that was offline); 0 for never.
    public var expiredRenewalWindow: TimeInterval
    /// How long before a certificate expires its `certificate_expiring` event is raised.
    public var expiryWarning: TimeInterval

    /// The default lifetime: one year.
    public static let defaultValidity: TimeInterval = 365 * 86400
    /// The default grace of a superseded certificate: a week.
    public static let defaultSupersededGrace: TimeInterval = 7 * 86400
    /// The default warning before expiry: 30 days (AWS IoT Device Defender's audit uses the same).
    public static let defaultExpiryWarning: TimeInterval = 30 * 86400

    public init(
        validity: TimeInterval = defaultValidity, supersededGrace: TimeInterval = defaultSupersededGrace,
        expiredRenewalWindow: TimeInterval = 0, expiryWarning: TimeInterval = defaultExpiryWarning
    ) {
        self.validity = validity
        self.supersededGrace = supersededGrace
        self.expiredRenewalWindow = expiredRenewalWindow
        self.expiryWarning = expiryWarning
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
