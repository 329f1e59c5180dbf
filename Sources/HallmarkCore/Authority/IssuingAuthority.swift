import Revocation
import X509

import Foundation

/// The issuing CA in memory: its certificate and key, the chain up to the root, and where relying
/// parties learn of its revocations.
public struct IssuingAuthority: Sendable {
    /// The issuing (intermediate) CA certificate.
    public let certificate: Certificate
    /// The issuing CA's private key.
    let privateKey: Certificate.PrivateKey
    /// The root certificate the issuing CA chains to.
    public let root: Certificate

    /// The name of its CRL: `hallmark` for the shared CA, `tenants/<id>` for a tenant's.
    public let name: String
    /// The key identifier (hex) certificates name it by (their AKI), and the registry files them under.
    public let keyIdentifier: String
    /// The base URL of the revocation listener (`http://host:port`), if there is one: device
    /// certificates then carry `<base>/crl/<name>.crl` as their CRL distribution point and
    /// `<base>/ocsp` as their OCSP responder.
    public var revocationBase: String?

    public init(
        certificate: Certificate, privateKey: Certificate.PrivateKey, root: Certificate, name: String = "hallmark",
        revocationBase: String? = nil
    ) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.root = root
        self.name = name
        self.keyIdentifier = Array(IssuerIdentity.keyIdentifier(of: certificate)).hexString
        self.revocationBase = revocationBase
    }

    /// The CRL name of a tenant's own CA: `tenants/<id>`, apart from the shared CA's `hallmark`.
    public static func name(tenant: String) -> String { "tenants/\(tenant)" }

    /// Where this CA's CRL is published, if anywhere.
    public var crlURL: String? { revocationBase.map { "\($0)/crl/\(name).crl" } }
    /// Where its OCSP responder answers, if anywhere.
    public var ocspURL: String? { revocationBase.map { "\($0)/ocsp" } }

    /// The CA's key, for the services that sign on its behalf (CRLs, OCSP responder certificates).
    public var signingKey: Certificate.PrivateKey { privateKey }

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
            extensions: try profile.extensions(publicKey: key.publicKey, issuer: certificate, crl: crlURL, ocsp: ocspURL),
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
