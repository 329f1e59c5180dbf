import SwiftASN1
import X509

/// An RFC 6960 OCSP request, as much of it as a responder needs: the certificates asked about and
/// the nonce (RFC 8954). Anything that is not a well-formed request fails to parse, and is answered
/// `malformedRequest`; a signature on the request is accepted and not checked (Hallmark answers
/// anyone: revocation status is public).
public struct OCSPRequest: Sendable, Hashable {
    /// One certificate asked about.
    public struct CertID: Sendable, Hashable {
        public var issuer: IssuerIdentity
        /// The serial number's big-endian bytes, without a sign octet.
        public var serial: [UInt8]
        /// The CertID's exact DER, echoed in the answer.
        public var der: [UInt8]
    }

    /// The most certificates one request may ask about (openssl asks about one per `-cert`).
    public static let maximumCertificates = 16
    /// The largest request Hallmark reads: a request for 16 certificates with a nonce is under 2 KB.
    public static let maximumSize = 8192

    public var certificates: [CertID]
    /// The nonce extension's value (the DER of its OCTET STRING), if the request has one.
    public var nonce: [UInt8]?

    public init(certificates: [CertID], nonce: [UInt8]?) {
        self.certificates = certificates
        self.nonce = nonce
    }

    /// Parses a DER request. Throws ``Malformed`` for anything else, including a hash algorithm
    /// other than SHA-1 or SHA-256.
    public init(derEncoded bytes: [UInt8]) throws {
        guard !bytes.isEmpty, bytes.count <= Self.maximumSize else { throw Malformed("the request is empty or too large") }
        let root: ASN1Node
        do { root = try DER.parse(bytes) } catch { throw Malformed("the request is not DER") }
        var certificates: [CertID] = []
        var nonce: [UInt8]?
        do {
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbs = nodes.next() else { throw Malformed("the request has no tbsRequest") }
                try DER.sequence(tbs, identifier: .sequence) { nodes in
                    _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { version in
                        guard try Int(derEncoded: version) == 0 else { throw Malformed("the request's version is not v1") }
                    }
                    _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { _ in }
                    guard let list = nodes.next() else { throw Malformed("the request has no requestList") }
                    try DER.sequence(list, identifier: .sequence) { requests in
                        while let request = requests.next() {
                            guard certificates.count < Self.maximumCertificates else {
                                throw Malformed("the request asks about more than \(Self.maximumCertificates) certificates")
                            }
                            certificates.append(try Self.certID(request))
                        }
                    }
                    try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) { extensions in
                        nonce = try Self.nonce(in: extensions)
                    }
                    guard nodes.next() == nil else { throw Malformed("the tbsRequest has trailing fields") }
                }
                _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { _ in }
                guard nodes.next() == nil else { throw Malformed("the request has trailing fields") }
            }
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed("the request is not an OCSPRequest")
        }
        guard !certificates.isEmpty else { throw Malformed("the request asks about no certificate") }
        self.init(certificates: certificates, nonce: nonce)
    }

    /// `Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT OPTIONAL }`.
    private static func certID(_ request: ASN1Node) throws -> CertID {
        try DER.sequence(request, identifier: .sequence) { nodes in
            guard let certID = nodes.next() else { throw Malformed("a request has no CertID") }
            _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { _ in }
            guard nodes.next() == nil else { throw Malformed("a request has trailing fields") }
            guard case .constructed = certID.content else { throw Malformed("a CertID is not a SEQUENCE") }
            return try DER.sequence(certID, identifier: .sequence) { fields in
                guard let algorithmNode = fields.next() else { throw Malformed("a CertID has no hash algorithm") }
                let oid = try DER.sequence(algorithmNode, identifier: .sequence) { parts in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &parts)
                    if let parameters = parts.next() {
                        // Only an absent or NULL parameter is allowed for SHA-1 and SHA-2.
                        guard parameters.identifier == .null else { throw Malformed("a hash algorithm has parameters") }
                    }
                    guard parts.next() == nil else { throw Malformed("a hash algorithm has trailing fields") }
                    return oid
                }
                guard let algorithm = IssuerIdentity.HashAlgorithm(oid: oid) else {
                    throw Malformed("the hash algorithm \(oid) is neither SHA-1 nor SHA-256")
                }
                let nameHash = try ASN1OctetString(derEncoded: &fields).bytes
                let keyHash = try ASN1OctetString(derEncoded: &fields).bytes
                let serial = try ArraySlice<UInt8>(derEncoded: &fields)
                guard fields.next() == nil else { throw Malformed("a CertID has trailing fields") }
                let length = algorithm == .sha1 ? 20 : 32
                guard nameHash.count == length, keyHash.count == length else {
                    throw Malformed("a CertID's hashes are not \(length) bytes long")
                }
                var trimmed = serial.drop { $0 == 0 }
                if trimmed.isEmpty { trimmed = [0] }
                guard trimmed.count <= 20 else { throw Malformed("a serial number is longer than 20 octets") }
                return CertID(
                    issuer: IssuerIdentity(algorithm: algorithm, nameHash: Array(nameHash), keyHash: Array(keyHash)),
                    serial: Array(trimmed), der: Array(certID.encodedBytes))
            }
        }
    }

    /// The nonce among the request's extensions: the extnValue's bytes, an OCTET STRING whose
    /// contents are the nonce. Nil if there is none; an unknown critical extension is malformed.
    private static func nonce(in extensions: ASN1Node) throws -> [UInt8]? {
        var nonce: [UInt8]?
        try DER.sequence(extensions, identifier: .sequence) { nodes in
            while let node = nodes.next() {
                let ext = try Certificate.Extension(derEncoded: node)
                if ext.oid == RevocationExtensions.ocspNonceOID {
                    nonce = Array(ext.value)
                } else if ext.critical {
                    throw Malformed("the request has an unknown critical extension \(ext.oid)")
                }
            }
        }
        return nonce
    }

    /// Why a request was refused as `malformedRequest` (for the event log; never sent to the client).
    public struct Malformed: Error, CustomStringConvertible, Hashable {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
