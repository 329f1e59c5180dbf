import SwiftASN1
import X509

import Foundation

/// RFC 6960 OCSP responses: an unsuccessful status alone, or a BasicOCSPResponse signed by the CA
/// or by its delegated responder (`byKey`: the SHA-1 of the signer's public key).
public enum OCSPResponse {
    /// `OCSPResponseStatus`.
    public enum Status: Int, Sendable, Hashable {
        case successful = 0
        case malformedRequest = 1
        case internalError = 2
        case tryLater = 3
        case sigRequired = 5
        case unauthorized = 6
    }

    /// A certificate's status in one answer.
    public enum CertificateStatus: Sendable, Hashable {
        case good
        case revoked(at: Date, reason: RevocationReason)
        case unknown
    }

    /// One SingleResponse.
    public struct Single: Sendable, Hashable {
        /// The CertID as the request gave it (its DER).
        public var certID: [UInt8]
        public var status: CertificateStatus
        public var thisUpdate: Date
        /// Always set: clients (swift-certificates among them) refuse an answer without it.
        public var nextUpdate: Date

        public init(certID: [UInt8], status: CertificateStatus, thisUpdate: Date, nextUpdate: Date) {
            self.certID = certID
            self.status = status
            self.thisUpdate = thisUpdate
            self.nextUpdate = nextUpdate
        }
    }

    /// Who signs answers: the CA's key, or a delegated responder's with its certificate (sent in `certs`).
    public struct Signer: Sendable {
        public let signer: RevocationSigner
        /// The responder's certificate when it is not the CA's own; sent with every answer.
        public let delegate: Certificate?
        /// `ResponderID byKey`.
        let keyHash: [UInt8]
        /// The delegate's DER, written once.
        let delegateDER: [UInt8]?

        public init(key: Certificate.PrivateKey, certificate: Certificate, delegated: Bool) throws {
            signer = try RevocationSigner(key: key)
            delegate = delegated ? certificate : nil
            keyHash = IssuerIdentity.HashAlgorithm.sha1.hash(certificate.publicKey.subjectPublicKeyInfoBytes)
            if delegated {
                var coder = DER.Serializer()
                try coder.serialize(certificate)
                delegateDER = coder.serializedBytes
            } else {
                delegateDER = nil
            }
        }
    }

    /// An unsuccessful response: the status alone (RFC 6960 §2.3).
    public static func unsuccessful(_ status: Status) -> [UInt8] {
        precondition(status != .successful)
        return [0x30, 0x03, 0x0a, 0x01, UInt8(status.rawValue)]
    }

    /// A successful response with the given answers, signed.
    /// - Parameter nonce: the request's nonce extension value, echoed as it came.
    public static func successful(
        _ responses: [Single], producedAt: Date, nonce: [UInt8]?, signer: Signer
    ) throws -> [UInt8] {
        let tbs = try responseData(responses, producedAt: producedAt, nonce: nonce, keyHash: signer.keyHash)
        let basic = try signer.signer.signed(tbs) { coder in
            guard let certificate = signer.delegateDER else { return }
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { $0.serializeRawBytes(certificate) }
            }
        }
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            RevocationExtensions.serializeEnumerated(Status.successful.rawValue, into: &coder)
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(RevocationExtensions.ocspBasicOID)
                    try coder.serialize(ASN1OctetString(contentBytes: basic[...]))
                }
            }
        }
        return coder.serializedBytes
    }

    /// `ResponseData`: version v1 (absent), responderID byKey [2], producedAt, responses, and the nonce.
    static func responseData(_ responses: [Single], producedAt: Date, nonce: [UInt8]?, keyHash: [UInt8]) throws -> [UInt8] {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(ASN1OctetString(contentBytes: keyHash[...]), explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific)
            try coder.serialize(DERTime.generalized(producedAt))
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                for response in responses { try serialize(response, into: &coder) }
            }
            if let nonce {
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(Certificate.Extension(oid: RevocationExtensions.ocspNonceOID, critical: false, value: nonce[...]))
                    }
                }
            }
        }
        return coder.serializedBytes
    }

    static func serialize(_ single: Single, into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(single.certID)
            switch single.status {
            case .good:
                coder.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { _ in }
            case .revoked(let at, let reason):
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { coder in
                    try coder.serialize(DERTime.generalized(at))
                    try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                        RevocationExtensions.serializeEnumerated(reason.rawValue, into: &$0)
                    }
                }
            case .unknown:
                coder.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) { _ in }
            }
            try coder.serialize(DERTime.generalized(single.thisUpdate))
            try coder.serialize(DERTime.generalized(single.nextUpdate), explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
        }
    }
}
