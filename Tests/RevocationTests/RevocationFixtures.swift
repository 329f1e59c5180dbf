import Crypto
import SwiftASN1
import X509

import Foundation

@testable import Revocation

/// A small PKI for the revocation tests: a P-384 root, a P-256 issuing CA, and leaves that name
/// the OCSP responder and the CRL in their extensions.
struct RevocationFixtures {
    let rootKey: Certificate.PrivateKey
    let issuingKey: Certificate.PrivateKey
    let root: Certificate
    let issuing: Certificate
    let now: Date

    init() throws {
        let rootKey = Certificate.PrivateKey(P384.Signing.PrivateKey())
        let issuingKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let now = Date()
        let rootName = try DistinguishedName { CommonName("Test Root") }
        let root = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: rootKey.publicKey,
            notValidBefore: now - 3600, notValidAfter: now + 86400 * 365, issuer: rootName, subject: rootName,
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: rootKey.publicKey)
            }, issuerPrivateKey: rootKey)
        let issuing = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: issuingKey.publicKey,
            notValidBefore: now - 3600, notValidAfter: now + 86400 * 300, issuer: rootName,
            subject: try DistinguishedName { CommonName("Test Issuing CA") }, signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: issuingKey.publicKey)
                AuthorityKeyIdentifier(keyIdentifier: IssuerIdentity.keyIdentifier(of: root))
            }, issuerPrivateKey: rootKey)
        (self.rootKey, self.issuingKey, self.root, self.issuing, self.now) = (rootKey, issuingKey, root, issuing, now)
    }

    func leaf(serial: [UInt8], name: String = "DEV-1") throws -> Certificate {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        return try Certificate(
            version: .v3, serialNumber: .init(bytes: serial[...]), publicKey: key.publicKey,
            notValidBefore: now - 3600, notValidAfter: now + 86400 * 30, issuer: issuing.subject,
            subject: try DistinguishedName { CommonName(name) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: IssuerIdentity.keyIdentifier(of: issuing))
                try RevocationExtensions.authorityInformationAccess(ocsp: "http://127.0.0.1:1/ocsp")
                try RevocationExtensions.crlDistributionPoint("http://127.0.0.1:1/crl/test.crl")
            }, issuerPrivateKey: issuingKey)
    }

    func responder(delegated: Bool, validity: TimeInterval = 3600) throws -> OCSPResponder {
        let signer: OCSPResponse.Signer
        if delegated {
            let delegate = try ResponderCertificate.issue(issuer: issuing, issuerKey: issuingKey, now: now, lifetime: 86400)
            signer = try .init(key: delegate.key, certificate: delegate.certificate, delegated: true)
        } else {
            signer = try .init(key: issuingKey, certificate: issuing, delegated: false)
        }
        return OCSPResponder(issuers: [try .init(id: "test", certificate: issuing, signer: signer)], validity: validity)
    }

    /// An OCSP request as RFC 6960 writes it, for one certificate of the issuing CA.
    func request(
        serial: [UInt8], algorithm: IssuerIdentity.HashAlgorithm = .sha1, nonce: [UInt8]? = nil, issuer: Certificate? = nil
    ) throws -> [UInt8] {
        let identity = try IssuerIdentity(issuer ?? issuing, algorithm: algorithm)
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.appendConstructedNode(identifier: .sequence) { coder in
                                try coder.serialize(algorithm.oid)
                                try coder.serialize(ASN1Null())
                            }
                            try coder.serialize(ASN1OctetString(contentBytes: identity.nameHash[...]))
                            try coder.serialize(ASN1OctetString(contentBytes: identity.keyHash[...]))
                            try coder.serialize(serial[...])
                        }
                    }
                }
                if let nonce {
                    var inner = DER.Serializer()
                    try inner.serialize(ASN1OctetString(contentBytes: nonce[...]))
                    try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) { coder in
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.serialize(
                                Certificate.Extension(oid: RevocationExtensions.ocspNonceOID, critical: false, value: inner.serializedBytes[...]))
                        }
                    }
                }
            }
        }
        return coder.serializedBytes
    }
}
