import Crypto
import SwiftASN1
import X509

import Foundation

/// The RFC 5280 profiles Hallmark issues. Every certificate carries a positive 16-byte serial (the
/// issuing time, then 80 random bits), SKI and (below the root) AKI, and is signed with ECDSA.
public enum CertificateProfiles {
    /// Clock skew tolerated for devices: certificates start this long before issuance.
    public static let backdating: TimeInterval = 5 * 60

    /// A positive serial number of 16 bytes with 80 random bits, ascending with `now`.
    public static func randomSerial(now: Date = Date()) -> Certificate.SerialNumber {
        // 16 bytes: the issuing time in milliseconds since 1970 (6 bytes, big-endian: the first
        // byte is 0x01 until 2039, and stays nonzero and below 0x80 for millennia, so the number
        // is positive and always 16 octets), then 80 bits from the system CSPRNG (two draws).
        // RFC 5280 and the CA/Browser Forum ask for a positive serial of at most 20 octets with
        // at least 64 random bits. The time prefix makes serials ascend, so the registry's serial
        // index grows at its end instead of at a random page.
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var bytes: [UInt8] = (0..<6).reversed().map { UInt8(truncatingIfNeeded: milliseconds >> (8 * UInt64($0))) }
        bytes.reserveCapacity(16)
        withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: generator.next() as UInt16) { bytes.append(contentsOf: $0) }
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// The self-signed root: P-384, CA without a path length limit, keyCertSign and cRLSign.
    public static func root(
        key: Certificate.PrivateKey, name: DistinguishedName, now: Date, years: Int = 20
    ) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: randomSerial(), publicKey: key.publicKey,
            notValidBefore: now - backdating, notValidAfter: now + Double(years) * 365.25 * 86400,
            issuer: name, subject: name, signatureAlgorithm: signatureAlgorithm(for: key),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key)
    }

    /// An issuing CA under the root: may sign end-entity certificates only (path length 0).
    public static func intermediate(
        publicKey: Certificate.PublicKey, name: DistinguishedName, issuer: Certificate,
        issuerKey: Certificate.PrivateKey, now: Date, years: Int = 10
    ) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: randomSerial(), publicKey: publicKey,
            notValidBefore: now - backdating, notValidAfter: now + Double(years) * 365.25 * 86400,
            issuer: issuer.subject, subject: name, signatureAlgorithm: signatureAlgorithm(for: issuerKey),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
                try authorityKeyIdentifier(of: issuer)
            },
            issuerPrivateKey: issuerKey)
    }

    /// A TLS server certificate for Hallmark's own listeners.
    public static func tlsServer(
        publicKey: Certificate.PublicKey, hostNames: [String], issuer: Certificate,
        issuerKey: Certificate.PrivateKey, now: Date, days: Int = 397
    ) throws -> Certificate {
        var names: [GeneralName] = []
        for host in hostNames {
            if let ip = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let subject = try DistinguishedName { CommonName(hostNames.first ?? "localhost") }
        return try Certificate(
            version: .v3, serialNumber: randomSerial(), publicKey: publicKey,
            notValidBefore: now - backdating, notValidAfter: now + Double(days) * 86400,
            issuer: issuer.subject, subject: subject, signatureAlgorithm: signatureAlgorithm(for: issuerKey),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectKeyIdentifier(hash: publicKey)
                try authorityKeyIdentifier(of: issuer)
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: issuerKey)
    }

    /// The signature algorithm that matches an ECDSA issuer key's size.
    public static func signatureAlgorithm(for key: Certificate.PrivateKey) -> Certificate.SignatureAlgorithm {
        P384.Signing.PublicKey(key.publicKey) != nil ? .ecdsaWithSHA384 : .ecdsaWithSHA256
    }

    /// The AKI extension naming an issuer by its SKI (or, lacking one, by the hash of its key).
    public static func authorityKeyIdentifier(of issuer: Certificate) throws -> AuthorityKeyIdentifier {
        if let ski = try issuer.extensions.subjectKeyIdentifier {
            return AuthorityKeyIdentifier(keyIdentifier: ski.keyIdentifier)
        }
        return AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: issuer.publicKey).keyIdentifier)
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            let bytes = parts.compactMap { UInt8($0) }
            return bytes.count == 4 ? bytes : nil
        }
        if text == "::1" { return Array(repeating: 0, count: 15) + [1] }
        return nil
    }
}
