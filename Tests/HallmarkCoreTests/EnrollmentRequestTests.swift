import Crypto
import HallmarkCore
import HallmarkTesting
import SwiftASN1
import Testing
import X509

@Suite struct EnrollmentRequestTests {
    @Test func validCSRYieldsUDIDAndKey() throws {
        let key = Certificate.PrivateKey(P256Key.make())
        let request = try EnrollmentRequest(der: TestPKI.der(TestPKI.csr(commonName: "DEV-42", key: key)))
        #expect(request.udid.rawValue == "DEV-42")
        #expect(request.key == (try DeviceKey(key.publicKey)))
    }

    @Test func p384KeysAreAccepted() throws {
        let key = Certificate.PrivateKey(P384Key.make())
        let request = try EnrollmentRequest(der: TestPKI.der(TestPKI.csr(commonName: "DEV-384", key: key)))
        #expect(request.key.algorithm == .p384)
    }

    @Test func udidFromSerialNumberWhenNoCN() throws {
        let key = Certificate.PrivateKey(P256Key.make())
        let subject = DistinguishedName([
            RelativeDistinguishedName(
                try RelativeDistinguishedName.Attribute(type: [2, 5, 4, 5], printableString: "SN-0007"))
        ])
        let csr = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: key, attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
        #expect(try EnrollmentRequest(der: TestPKI.der(csr)).udid.rawValue == "SN-0007")
    }

    @Test func tamperedSignatureIsRefused() throws {
        var der = try TestPKI.der(TestPKI.csr(commonName: "DEV-1", key: .init(P256Key.make())))
        der[der.count - 1] ^= 0x01
        #expect(throws: HallmarkError(.csrSignatureInvalid, "", remedy: "")) { try EnrollmentRequest(der: der) }
    }

    @Test func garbageIsMalformed() {
        #expect(throws: HallmarkError(.csrMalformed, "", remedy: "")) { try EnrollmentRequest(der: [0x30, 0x03, 0x02, 0x01, 0x00]) }
        #expect(throws: HallmarkError(.csrMalformed, "", remedy: "")) { try EnrollmentRequest(der: []) }
    }

    @Test(arguments: ["", String(repeating: "A", count: 65), "has space", "semi;colon", "ünïcode"])
    func badUDIDsAreRefused(text: String) {
        #expect(throws: HallmarkError(.udidInvalid, "", remedy: "")) { try UDID(validating: text) }
    }

    @Test func estBodyAcceptsBase64WithLineBreaksPEMAndDER() throws {
        let der: [UInt8] = Array(0...200).map { UInt8($0) }
        let encoded = ESTBody.encode(der)
        #expect(try ESTBody.decode(Array(encoded.utf8)) == der)
        let pem = "-----BEGIN CERTIFICATE REQUEST-----\n\(encoded)-----END CERTIFICATE REQUEST-----\n"
        #expect(try ESTBody.decode(Array(pem.utf8)) == der)
        let raw: [UInt8] = [0x30, 0x81, 0x90, 0x00]
        #expect(try ESTBody.decode(raw) == raw)
        #expect(throws: HallmarkError(.bodyEncodingInvalid, "", remedy: "")) { try ESTBody.decode(Array("%%%".utf8)) }
    }
}
