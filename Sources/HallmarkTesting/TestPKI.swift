import Crypto
import HallmarkCore
import SwiftASN1
import X509

import Foundation

/// Builds throwaway PKIs for tests: a Hallmark-shaped root and issuing CA, and hostile variants
/// (a fake root with the same name and another key, expired or not-yet-valid leaves).
public struct TestPKI: Sendable {
    public let rootKey: Certificate.PrivateKey
    public let root: Certificate
    public let authority: IssuingAuthority

    /// A root and issuing CA named after `organization`, valid from `now`.
    public init(organization: String = "Test OEM", now: Date = Date()) throws {
        let rootKey = Certificate.PrivateKey(P384Key.make())
        let rootName = try DistinguishedName {
            OrganizationName(organization)
            CommonName("\(organization) Root CA")
        }
        let root = try CertificateProfiles.root(key: rootKey, name: rootName, now: now)
        let issuingKey = Certificate.PrivateKey(P256Key.make())
        let issuing = try CertificateProfiles.intermediate(
            publicKey: issuingKey.publicKey,
            name: try DistinguishedName {
                OrganizationName(organization)
                CommonName("\(organization) Issuing CA 1")
            }, issuer: root, issuerKey: rootKey, now: now)
        self.rootKey = rootKey
        self.root = root
        self.authority = IssuingAuthority(certificate: issuing, privateKey: issuingKey, root: root)
    }

    /// A CSR with subject CN = `commonName`, signed by `key`.
    public static func csr(commonName: String, key: Certificate.PrivateKey) throws -> CertificateSigningRequest {
        try DeviceCSR.make(commonName: commonName, key: key)
    }

    /// The DER of a CSR.
    public static func der(_ csr: CertificateSigningRequest) throws -> [UInt8] {
        try csr.derBytes()
    }
}
