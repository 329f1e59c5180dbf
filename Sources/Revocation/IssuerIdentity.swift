import Crypto
import SwiftASN1
import X509

import Foundation

/// How an OCSP request names an issuing CA (RFC 6960 §4.1.1): hashes of its subject's DER and of
/// its public key's BIT STRING contents, for each hash algorithm Hallmark answers for.
public struct IssuerIdentity: Sendable, Hashable {
    public enum HashAlgorithm: Sendable, Hashable, CaseIterable {
        case sha1, sha256

        init?(oid: ASN1ObjectIdentifier) {
            switch oid {
            case [1, 3, 14, 3, 2, 26]: self = .sha1
            case [2, 16, 840, 1, 101, 3, 4, 2, 1]: self = .sha256
            default: return nil
            }
        }

        var oid: ASN1ObjectIdentifier {
            switch self {
            case .sha1: [1, 3, 14, 3, 2, 26]
            case .sha256: [2, 16, 840, 1, 101, 3, 4, 2, 1]
            }
        }

        func hash(_ bytes: some DataProtocol) -> [UInt8] {
            switch self {
            case .sha1: Array(Insecure.SHA1.hash(data: bytes))
            case .sha256: Array(SHA256.hash(data: bytes))
            }
        }
    }

    public let algorithm: HashAlgorithm
    public let nameHash: [UInt8]
    public let keyHash: [UInt8]

    public init(algorithm: HashAlgorithm, nameHash: [UInt8], keyHash: [UInt8]) {
        self.algorithm = algorithm
        self.nameHash = nameHash
        self.keyHash = keyHash
    }

    /// The identity of a CA certificate under one algorithm.
    public init(_ issuer: Certificate, algorithm: HashAlgorithm) throws {
        var coder = DER.Serializer()
        try coder.serialize(issuer.subject)
        self.init(
            algorithm: algorithm, nameHash: algorithm.hash(coder.serializedBytes),
            keyHash: algorithm.hash(issuer.publicKey.subjectPublicKeyInfoBytes))
    }

    /// The key identifier that names an issuer in AKI and in OCSP's byKey: its SKI if it has one,
    /// else the SHA-1 of its key (RFC 5280 §4.2.1.2 method 1).
    public static func keyIdentifier(of issuer: Certificate) -> ArraySlice<UInt8> {
        if let ski = try? issuer.extensions.subjectKeyIdentifier { return ski.keyIdentifier }
        return ArraySlice(Insecure.SHA1.hash(data: issuer.publicKey.subjectPublicKeyInfoBytes))
    }
}
