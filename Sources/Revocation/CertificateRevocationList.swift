import SwiftASN1
import X509

import Foundation

/// An RFC 5280 v2 CRL of one issuing CA: CRL number, authority key identifier, a critical issuing
/// distribution point, `nextUpdate` always, and a reason code on each entry but unspecified ones.
public struct CertificateRevocationList: Sendable {
    /// One revoked certificate.
    public struct Entry: Sendable, Hashable {
        /// The serial number's big-endian bytes.
        public var serial: [UInt8]
        public var revokedAt: Date
        public var reason: RevocationReason

        public init(serial: [UInt8], revokedAt: Date, reason: RevocationReason) {
            self.serial = serial
            self.revokedAt = revokedAt
            self.reason = reason
        }
    }

    public var issuer: Certificate
    /// Increasing with every CRL the issuer signs; at most 20 octets (RFC 5280 §5.2.3).
    public var number: UInt64
    public var thisUpdate: Date
    public var nextUpdate: Date
    /// Where this CRL is published (its issuing distribution point, and the certificates' CDP).
    public var distributionPoint: String
    public var entries: [Entry]

    public init(
        issuer: Certificate, number: UInt64, thisUpdate: Date, nextUpdate: Date, distributionPoint: String, entries: [Entry]
    ) {
        self.issuer = issuer
        self.number = number
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.distributionPoint = distributionPoint
        self.entries = entries
    }

    /// The CRL's DER, signed by the issuer's key.
    public func signed(by signer: RevocationSigner) throws -> [UInt8] {
        try signer.signed(tbsCertList(signer))
    }

    func tbsCertList(_ signer: RevocationSigner) throws -> [UInt8] {
        // Extension values that do not change per entry are written once.
        let reasonValues = Dictionary(
            uniqueKeysWithValues: try RevocationReason.allCases.map { reason in
                var coder = DER.Serializer()
                try coder.serialize(
                    RevocationExtensions.wrapping(RevocationExtensions.reasonCodeOID) {
                        RevocationExtensions.serializeEnumerated(reason.rawValue, into: &$0)
                    })
                return (reason, coder.serializedBytes)
            })
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)  // v2
            try signer.serializeAlgorithm(into: &coder)
            try coder.serialize(issuer.subject)
            try DERTime.serializeTime(thisUpdate, into: &coder)
            try DERTime.serializeTime(nextUpdate, into: &coder)
            if !entries.isEmpty {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for entry in entries {
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.serialize(ArraySlice(entry.serial))
                            try DERTime.serializeTime(entry.revokedAt, into: &coder)
                            // RFC 5280 §5.3.1: the reason code unspecified SHOULD be absent.
                            if entry.reason != .unspecified, let value = reasonValues[entry.reason] {
                                try coder.appendConstructedNode(identifier: .sequence) { $0.serializeRawBytes(value) }
                            }
                        }
                    }
                }
            }
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: IssuerIdentity.keyIdentifier(of: issuer)), critical: false))
                    try coder.serialize(RevocationExtensions.wrapping(RevocationExtensions.crlNumberOID) { try $0.serialize(number) })
                    try coder.serialize(RevocationExtensions.issuingDistributionPoint(distributionPoint))
                }
            }
        }
        return coder.serializedBytes
    }
}
