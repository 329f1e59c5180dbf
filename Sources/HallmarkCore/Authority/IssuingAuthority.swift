import X509

import Foundation

/// The issuing CA in memory: its certificate and key, and the chain up to the root.
public struct IssuingAuthority: Sendable {
    /// The issuing (intermediate) CA certificate.
    public let certificate: Certificate
    /// The issuing CA's private key.
    let privateKey: Certificate.PrivateKey
    /// The root certificate the issuing CA chains to.
    public let root: Certificate

    public init(certificate: Certificate, privateKey: Certificate.PrivateKey, root: Certificate) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.root = root
    }

    /// The chain a device or client needs: issuing CA, then root.
    public var chain: [Certificate] { [certificate, root] }

    /// Issues a device certificate for a thing.
    /// - Parameters:
    ///   - thingName: The subject CN.
    ///   - key: The device's public key (from its CSR).
    ///   - profile: The product's device profile.
    ///   - now: The issuance time.
    public func issueDeviceCertificate(
        thingName: String, key: DeviceKey, profile: DeviceCertificateProfile, now: Date
    ) throws -> Certificate {
        let subject = try DistinguishedName { CommonName(thingName) }
        let notAfter = min(now + profile.validity, certificate.notValidAfter)
        return try Certificate(
            version: .v3, serialNumber: CertificateProfiles.randomSerial(now: now), publicKey: key.publicKey,
            notValidBefore: now - CertificateProfiles.backdating, notValidAfter: notAfter,
            issuer: certificate.subject, subject: subject,
            signatureAlgorithm: CertificateProfiles.signatureAlgorithm(for: privateKey),
            extensions: try profile.extensions(publicKey: key.publicKey, issuer: certificate),
            issuerPrivateKey: privateKey)
    }

    /// Issues a TLS server certificate for Hallmark's listeners.
    public func issueServerCertificate(
        key: Certificate.PublicKey, hostNames: [String], now: Date
    ) throws -> Certificate {
        try CertificateProfiles.tlsServer(
            publicKey: key, hostNames: hostNames, issuer: certificate, issuerKey: privateKey, now: now)
    }
}
