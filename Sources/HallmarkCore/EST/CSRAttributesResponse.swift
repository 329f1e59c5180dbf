import SwiftASN1

/// The body of EST `/csrattrs` (RFC 7030 §4.5.2): what Hallmark wants in a CSR.
///
/// It asks for ECDSA with SHA-256 (an OID) and an EC key on P-256 or P-384 (an attribute of type
/// id-ecPublicKey whose values are the curves), which is how RFC 7030's own example names a curve.
public enum CSRAttributesResponse {
    static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    static let secp256r1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]

    /// The DER `CsrAttrs` SEQUENCE.
    public static func der() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { attrs in
            try attrs.serialize(ecdsaWithSHA256)
            try attrs.appendConstructedNode(identifier: .sequence) { attribute in
                try attribute.serialize(ecPublicKey)
                try attribute.serializeSetOf([secp256r1, secp384r1])
            }
        }
        return serializer.serializedBytes
    }
}
