import SwiftASN1
import X509

/// The X.509 extensions that point relying parties at revocation information, and those CRLs and
/// OCSP responses carry. swift-certificates has no types for them; each is a few DER nodes.
public enum RevocationExtensions {
    static let crlDistributionPointsOID: ASN1ObjectIdentifier = [2, 5, 29, 31]
    static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]
    static let issuingDistributionPointOID: ASN1ObjectIdentifier = [2, 5, 29, 28]
    static let reasonCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 21]
    static let ocspNoCheckOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5]
    static let ocspNonceOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2]
    static let ocspBasicOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]

    /// CRLDistributionPoints (RFC 5280 §4.2.1.13) with one distribution point, its full name a URI:
    /// `SEQUENCE { SEQUENCE { [0] { [0] { [6] uri } } } }`.
    public static func crlDistributionPoint(_ uri: String) throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try serializeFullName(uri, into: &coder)
            }
        }
        return Certificate.Extension(oid: crlDistributionPointsOID, critical: false, value: coder.serializedBytes[...])
    }

    /// AuthorityInformationAccess naming an OCSP responder (and, if given, where the issuer's
    /// certificate is).
    public static func authorityInformationAccess(ocsp: String, caIssuers: String? = nil) throws -> Certificate.Extension {
        var descriptions = [AuthorityInformationAccess.AccessDescription(method: .ocspServer, location: .uniformResourceIdentifier(ocsp))]
        if let caIssuers {
            descriptions.append(.init(method: .issuingCA, location: .uniformResourceIdentifier(caIssuers)))
        }
        return try Certificate.Extension(AuthorityInformationAccess(descriptions), critical: false)
    }

    /// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): a NULL, for a delegated responder's certificate.
    public static let ocspNoCheck = Certificate.Extension(oid: ocspNoCheckOID, critical: false, value: [0x05, 0x00])

    /// IssuingDistributionPoint (RFC 5280 §5.2.5), critical: the CRL's own URI and
    /// onlyContainsUserCerts, since Hallmark's issuing CAs certify end entities only.
    static func issuingDistributionPoint(_ uri: String) throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try serializeFullName(uri, into: &coder)
            try true.serialize(into: &coder, withIdentifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific))
        }
        return Certificate.Extension(oid: issuingDistributionPointOID, critical: true, value: coder.serializedBytes[...])
    }

    /// `distributionPoint [0] DistributionPointName { fullName [0] GeneralNames { [6] IA5String } }`.
    private static func serializeFullName(_ uri: String, into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                coder.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 6, tagClass: .contextSpecific)) {
                    $0.append(contentsOf: uri.utf8)
                }
            }
        }
    }

    /// An extension whose value is one DER node.
    static func wrapping(_ oid: ASN1ObjectIdentifier, critical: Bool = false, _ write: (inout DER.Serializer) throws -> Void) rethrows -> Certificate.Extension {
        var coder = DER.Serializer()
        try write(&coder)
        return Certificate.Extension(oid: oid, critical: critical, value: coder.serializedBytes[...])
    }

    /// An ENUMERATED, which SwiftASN1 has no type for.
    static func serializeEnumerated(_ value: Int, into coder: inout DER.Serializer) {
        precondition((0..<128).contains(value))
        coder.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(value)) }
    }
}
