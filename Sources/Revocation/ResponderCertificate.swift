import Crypto
import SwiftASN1
import X509

import Foundation

/// A delegated OCSP responder (RFC 6960 §4.2.2.2): a short-lived P-256 key and a certificate the CA
/// issues it, with extendedKeyUsage id-kp-OCSPSigning and id-pkix-ocsp-nocheck, so that clients need
/// not ask about the responder itself. The EKU is not critical: swift-certificates' verifier refuses
/// a responder whose EKU is (no policy of its handles it), and RFC 5280 allows either. Its key
/// lives in memory only; a new one replaces it well before it expires.
public struct ResponderCertificate: Sendable {
    public let key: Certificate.PrivateKey
    public let certificate: Certificate

    /// Issues a responder certificate for `issuer`, valid from five minutes ago for `lifetime`.
    public static func issue(
        issuer: Certificate, issuerKey: Certificate.PrivateKey, now: Date, lifetime: TimeInterval
    ) throws -> ResponderCertificate {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        var serial = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in serial.indices { serial[index] = generator.next() }
        serial[0] = (serial[0] & 0x7f) | 0x01
        let issuerSigner = try RevocationSigner(key: issuerKey)
        let subject = try DistinguishedName {
            CommonName("OCSP responder for " + Self.commonName(of: issuer))
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: serial), publicKey: key.publicKey,
            notValidBefore: now - 300, notValidAfter: min(now + lifetime, issuer.notValidAfter),
            issuer: issuer.subject, subject: subject, signatureAlgorithm: issuerSigner.algorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.ocspSigning])
                SubjectKeyIdentifier(hash: key.publicKey)
                AuthorityKeyIdentifier(keyIdentifier: IssuerIdentity.keyIdentifier(of: issuer))
                RevocationExtensions.ocspNoCheck
            },
            issuerPrivateKey: issuerKey)
        return ResponderCertificate(key: key, certificate: certificate)
    }

    static func commonName(of certificate: Certificate) -> String {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(describing: attribute.value)
            }
        }
        return "Hallmark CA"
    }
}
