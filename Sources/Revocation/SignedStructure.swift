import Crypto
import SwiftASN1
import X509

/// ECDSA signing of a DER structure, the way X.509 does it: `SEQUENCE { tbs, AlgorithmIdentifier,
/// BIT STRING signature }`. swift-certificates keeps its AlgorithmIdentifier type internal, so the
/// two ECDSA identifiers Hallmark's CAs use are written here.
public struct RevocationSigner: Sendable {
    let key: Certificate.PrivateKey
    let algorithm: Certificate.SignatureAlgorithm
    let algorithmOID: ASN1ObjectIdentifier

    /// A signer for a P-256 (ecdsa-with-SHA256) or P-384 (ecdsa-with-SHA384) key.
    public init(key: Certificate.PrivateKey) throws {
        self.key = key
        if P256.Signing.PublicKey(key.publicKey) != nil {
            algorithm = .ecdsaWithSHA256
            algorithmOID = [1, 2, 840, 10045, 4, 3, 2]
        } else if P384.Signing.PublicKey(key.publicKey) != nil {
            algorithm = .ecdsaWithSHA384
            algorithmOID = [1, 2, 840, 10045, 4, 3, 3]
        } else {
            throw RevocationEncodingError("only P-256 and P-384 keys sign CRLs and OCSP responses here")
        }
    }

    /// The AlgorithmIdentifier: `SEQUENCE { OID }`, no parameters (RFC 5758).
    func serializeAlgorithm(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { try $0.serialize(algorithmOID) }
    }

    /// Signs the DER of `tbs` and returns the whole signed structure's DER.
    func signed(
        _ tbs: [UInt8], trailer: (inout DER.Serializer) throws -> Void = { _ in }
    ) throws -> [UInt8] {
        let signature = try key.sign(bytes: tbs, signatureAlgorithm: algorithm).rawRepresentation
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbs)
            try serializeAlgorithm(into: &coder)
            try coder.serialize(ASN1BitString(bytes: signature[...]))
            try trailer(&coder)
        }
        return coder.serializedBytes
    }
}

/// A structure that could not be encoded (a programming error, never a client's).
public struct RevocationEncodingError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
