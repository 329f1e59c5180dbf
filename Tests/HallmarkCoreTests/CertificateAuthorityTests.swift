import Foundation
@testable import HallmarkCore
import HallmarkTesting
import SwiftASN1
import Testing
import X509

@Suite struct CertificateAuthorityTests {
    @Test func serialsAscendWithTimeAndCarryEightyRandomBits() {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let first = CertificateProfiles.randomSerial(now: now)
        let sameMillisecond = CertificateProfiles.randomSerial(now: now)
        let later = CertificateProfiles.randomSerial(now: now + 0.001)
        for serial in [first, sameMillisecond, later] {
            #expect(serial.bytes.count == 16)
            #expect(serial.bytes.first! != 0 && serial.bytes.first! & 0x80 == 0)
        }
        // The first six bytes are the time in milliseconds, big-endian.
        let milliseconds = first.bytes.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(milliseconds == 1_795_000_000_000)
        #expect(Array(first.bytes.prefix(6)) == Array(sameMillisecond.bytes.prefix(6)))
        #expect(first.bytes.dropFirst(6) != sameMillisecond.bytes.dropFirst(6))
        #expect(later.bytes.hexString > first.bytes.hexString)
    }

    @Test func deviceCertificateFollowsTheProfile() async throws {
        let now = Date()
        let pki = try TestPKI(now: now)
        let key = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
        let certificate = try pki.authority.issueDeviceCertificate(
            thingName: "thing-1", key: key, profile: .init(validity: 86400 * 30), now: now)
        #expect(certificate.subject.description == "CN=thing-1")
        #expect(certificate.serialNumber.bytes.count == 16)
        #expect(certificate.serialNumber.bytes.first! & 0x80 == 0)
        #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try certificate.extensions.keyUsage == KeyUsage(digitalSignature: true))
        #expect(try certificate.extensions.extendedKeyUsage == ExtendedKeyUsage([.clientAuth]))
        #expect(try certificate.extensions.subjectKeyIdentifier != nil)
        #expect(
            try certificate.extensions.authorityKeyIdentifier?.keyIdentifier
                == pki.authority.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect(abs(certificate.notValidAfter.timeIntervalSince(now) - 86400 * 30) < 2)

        var verifier = Verifier(rootCertificates: CertificateStore([pki.root])) {
            RFC5280Policy(validationTime: now)
        }
        let result = await verifier.validate(leaf: certificate, intermediates: CertificateStore([pki.authority.certificate]))
        guard case .validCertificate = result else {
            Issue.record("chain did not validate: \(result)")
            return
        }
    }

    @Test func certificateNeverOutlivesItsIssuer() throws {
        let pki = try TestPKI()
        let key = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
        let certificate = try pki.authority.issueDeviceCertificate(
            thingName: "t", key: key, profile: .init(validity: 86400 * 365 * 50), now: Date())
        #expect(certificate.notValidAfter <= pki.authority.certificate.notValidAfter)
    }

    @Test func sealedKeyOpensOnlyWithItsPassphrase() throws {
        let key = Certificate.PrivateKey(P256Key.make())
        let cheap = (n: 1 << 10, r: 8, p: 1)
        let sealed = try SealedPrivateKey.seal(key, purpose: "issuing-ca", passphrase: Passphrase("correct horse"), cost: cheap)
        #expect(try sealed.open(passphrase: Passphrase("correct horse")).publicKey == key.publicKey)
        #expect(throws: HallmarkError(.passphraseWrong, "", remedy: "")) {
            try sealed.open(passphrase: Passphrase("wrong horse"))
        }
        var retargeted = sealed
        retargeted.purpose = "root-ca"
        #expect(throws: HallmarkError(.passphraseWrong, "", remedy: "")) {
            try retargeted.open(passphrase: Passphrase("correct horse"))
        }
        let json = String(decoding: try JSONEncoder().encode(sealed), as: UTF8.self)
        #expect(!json.contains("PRIVATE KEY"))
        #expect(throws: HallmarkError(.passphraseMissing, "", remedy: "")) { try Passphrase("short") }
        #expect(!"\(try Passphrase("correct horse"))".contains("horse"))
    }

    @Test func certsOnlyPKCS7RoundTrips() throws {
        let pki = try TestPKI()
        let der = try CertsOnlyPKCS7.encode(pki.authority.chain)
        let decoded = try CertsOnlyPKCS7.decode(der)
        #expect(Set(decoded) == Set(pki.authority.chain))
        // DER orders a SET OF by encoding: the same bytes whatever order the certificates come in,
        // and what swift-asn1's own SET OF serialization gives.
        let ders = try pki.authority.chain.map { try $0.derBytes() }
        #expect(try CertsOnlyPKCS7.encode(der: ders) == CertsOnlyPKCS7.encode(der: ders.reversed()))
        var reference = DER.Serializer()
        try reference.serializeSetOf(pki.authority.chain, identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
        #expect(der.suffix(reference.serializedBytes.count + 2).dropLast(2) == reference.serializedBytes[...])
        #expect(CertsOnlyPKCS7.derSetOrder([1, 2], [1, 2, 1]) && !CertsOnlyPKCS7.derSetOrder([1, 2, 0], [1, 2]))
    }
}
