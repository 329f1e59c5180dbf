import SwiftASN1
import X509

/// The "certs-only" PKCS#7 / CMS SignedData that EST (RFC 7030 §4.1.3, §4.2.3) answers with:
/// a SignedData with no signers whose `certificates` field carries the certificates.
public enum CertsOnlyPKCS7 {
    static let signedData: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 7, 2]
    static let data: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 7, 1]

    /// Encodes certificates as a DER ContentInfo holding a degenerate SignedData.
    public static func encode(_ certificates: [Certificate]) throws -> [UInt8] {
        try encode(der: certificates.map { try $0.derBytes() })
    }

    /// The same, from certificates already in DER (an enrollment's answer: no re-encoding).
    public static func encode(der certificates: [[UInt8]]) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { contentInfo in
            try contentInfo.serialize(signedData)
            try contentInfo.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { explicit in
                try explicit.appendConstructedNode(identifier: .sequence) { body in
                    try body.serialize(1)  // version
                    body.appendConstructedNode(identifier: .set) { _ in }  // digestAlgorithms
                    try body.appendConstructedNode(identifier: .sequence) { encap in
                        try encap.serialize(data)
                    }
                    // certificates [0] IMPLICIT SET OF: DER orders the elements by their encodings.
                    body.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { set in
                        for certificate in certificates.sorted(by: derSetOrder) { set.serializeRawBytes(certificate) }
                    }
                    body.appendConstructedNode(identifier: .set) { _ in }  // signerInfos
                }
            }
        }
        return serializer.serializedBytes
    }

    /// X.690 §11.6: encodings compared as octet strings, the shorter padded with zeros at its end.
    static func derSetOrder(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            if x != y { return x < y }
        }
        return false
    }

    /// Decodes the certificates of a certs-only ContentInfo.
    /// - Throws: when the bytes are not a ContentInfo of type SignedData.
    public static func decode(_ der: [UInt8]) throws -> [Certificate] {
        let root = try DER.parse(der)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            let type = try ASN1ObjectIdentifier(derEncoded: &nodes)
            guard type == signedData else {
                throw ASN1Error.invalidASN1Object(reason: "ContentInfo is not SignedData")
            }
            return try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { node in
                try DER.sequence(node, identifier: .sequence) { body in
                    _ = try Int(derEncoded: &body)
                    _ = body.next()  // digestAlgorithms
                    _ = body.next()  // encapContentInfo
                    var certificates: [Certificate] = []
                    while let next = body.next() {
                        if next.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                            guard case .constructed(let children) = next.content else { continue }
                            for child in children {
                                certificates.append(try Certificate(derEncoded: child))
                            }
                        }
                    }
                    return certificates
                }
            }
        }
    }
}
