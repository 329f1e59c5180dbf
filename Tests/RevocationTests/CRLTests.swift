import Crypto
import SwiftASN1
import Testing
import X509

import Foundation

@testable import Revocation

@Suite struct CRLTests {
    let pki: RevocationFixtures
    init() throws { pki = try RevocationFixtures() }

    func crl(entries: [CertificateRevocationList.Entry]) throws -> [UInt8] {
        try CertificateRevocationList(
            issuer: pki.issuing, number: 1_700_000_000_123, thisUpdate: pki.now, nextUpdate: pki.now + 3600,
            distributionPoint: "http://127.0.0.1:1/crl/test.crl", entries: entries
        ).signed(by: RevocationSigner(key: pki.issuingKey))
    }

    /// The CRL's three parts: the TBSCertList's nodes, the signed bytes, the signature.
    func parts(_ der: [UInt8]) throws -> (tbs: [ASN1Node], signed: [UInt8], signature: [UInt8]) {
        try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
            let tbsNode = nodes.next()!
            _ = nodes.next()
            let signature = try ASN1BitString(derEncoded: &nodes)
            let tbs = children(tbsNode)
            return (tbs, Array(tbsNode.encodedBytes), Array(signature.bytes))
        }
    }

    @Test func theIssuerSignsAVersion2CRLWithItsExtensions() throws {
        let (tbs, signed, signature) = try parts(try crl(entries: []))
        #expect(try Int(derEncoded: tbs[0]) == 1)
        #expect(try DistinguishedName(derEncoded: tbs[2]) == pki.issuing.subject)
        let key = try #require(P256.Signing.PublicKey(pki.issuing.publicKey))
        #expect(key.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: signed)))
        // No entries: thisUpdate, nextUpdate, then the extensions (no empty revokedCertificates).
        #expect(tbs.count == 6)
        let extensions = try DER.explicitlyTagged(tbs[5], tagNumber: 0, tagClass: .contextSpecific) { node in
            try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: node)
        }
        #expect(extensions.map(\.oid) == [[2, 5, 29, 35], [2, 5, 29, 20], [2, 5, 29, 28]])
        #expect(extensions.map(\.critical) == [false, false, true])
        #expect(try UInt64(derEncoded: extensions[1].value) == 1_700_000_000_123)
    }

    @Test func entriesCarryTheirReasonButUnspecified() throws {
        let revokedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let (tbs, _, _) = try parts(
            try crl(entries: [
                .init(serial: [0x01, 0xFF], revokedAt: revokedAt, reason: .superseded),
                .init(serial: [0x02], revokedAt: revokedAt, reason: .unspecified),
            ]))
        #expect(tbs.count == 7)
        let entries = children(tbs[5])
        #expect(entries.count == 2)
        let first = children(entries[0])
        #expect(try ArraySlice<UInt8>(derEncoded: first[0]) == [0x01, 0xFF])
        #expect(try UTCTime(derEncoded: first[1]) == UTCTime(year: 2027, month: 1, day: 15, hours: 8, minutes: 0, seconds: 0))
        let reason = try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: first[2])
        #expect(reason.map(\.oid) == [[2, 5, 29, 21]] && Array(reason[0].value) == [0x0a, 0x01, 0x04])
        let second = children(entries[1])
        #expect(second.count == 2)
    }

    @Test func timesAfter2049AreGeneralized() throws {
        var coder = DER.Serializer()
        try DERTime.serializeTime(Date(timeIntervalSince1970: 2_556_143_999), into: &coder)  // 2050-12-31T23:59:59Z
        #expect(try GeneralizedTime(derEncoded: coder.serializedBytes) == GeneralizedTime(
            year: 2050, month: 12, day: 31, hours: 23, minutes: 59, seconds: 59, fractionalSeconds: 0))
    }

    @Test func calendarFieldsMatchFoundationsAcrossCenturies() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let date = Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000...6_000_000_000, using: &generator)))
            let f = DERTime.fields(date)
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let expected: [Int] = [c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!]
            #expect([f.year, f.month, f.day, f.hours, f.minutes, f.seconds] == expected)
        }
    }

    @Test func theResponderCertificateIsForOCSPSigningOnly() throws {
        let delegate = try ResponderCertificate.issue(issuer: pki.issuing, issuerKey: pki.issuingKey, now: pki.now, lifetime: 86400)
        let certificate = delegate.certificate
        #expect(try certificate.extensions.extendedKeyUsage == ExtendedKeyUsage([.ocspSigning]))
        #expect(certificate.extensions.first { $0.oid == ExtensionOID.extendedKeyUsage }?.critical == false)
        #expect(certificate.extensions.contains { $0.oid == [1, 3, 6, 1, 5, 5, 7, 48, 1, 5] })
        #expect(pki.issuing.publicKey.isValidSignature(certificate.signature, for: certificate))
        #expect(certificate.notValidAfter <= pki.issuing.notValidAfter)
    }
}

/// A constructed node's children.
func children(_ node: ASN1Node) -> [ASN1Node] {
    guard case .constructed(let nodes) = node.content else { return [] }
    return Array(nodes)
}

private typealias ExtensionOID = ASN1ObjectIdentifier.X509ExtensionID
