import Crypto
import SwiftASN1
import HallmarkCore
import HallmarkTesting
import Testing
import X509

import Foundation

@Suite("Bring-your-own CA: proof of possession and provisioning templates")
struct CARegistrationTests {
    let pki = try! TestPKI()
    let now = Date()
    let code = String(repeating: "ab", count: 32)

    /// A certificate signed by the test root (the OEM CA here).
    func signed(by key: Certificate.PrivateKey, issuer: DistinguishedName, subject: DistinguishedName) throws -> Certificate {
        let leafKey = Certificate.PrivateKey(P256Key.make())
        return try Certificate(
            version: .v3, serialNumber: CertificateProfiles.randomSerial(), publicKey: leafKey.publicKey,
            notValidBefore: now - 60, notValidAfter: now + 3600, issuer: issuer, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA384, extensions: Certificate.Extensions(), issuerPrivateKey: key)
    }

    @Test("a verification certificate signed by the CA over the registration code is accepted; the id is the CA's SHA-256")
    func accepted() throws {
        let proof = try signed(by: pki.rootKey, issuer: pki.root.subject, subject: try DistinguishedName { CommonName(code) })
        let id = try CARegistration.verify(caCertificate: pki.root, verificationCertificate: proof, registrationCode: code, now: now)
        #expect(id == CertificateFingerprint.sha256(pki.root))
    }

    @Test("the wrong code, another signer with the same issuer name, and a non-CA certificate are refused")
    func refused() throws {
        let wrongCode = try signed(by: pki.rootKey, issuer: pki.root.subject, subject: try DistinguishedName { CommonName("0" + code.dropFirst()) })
        #expect(throws: HallmarkError(.caRegistrationInvalid, "", remedy: "")) {
            try CARegistration.verify(caCertificate: pki.root, verificationCertificate: wrongCode, registrationCode: code, now: now)
        }
        let impostor = try signed(
            by: Certificate.PrivateKey(P384Key.make()), issuer: pki.root.subject, subject: try DistinguishedName { CommonName(code) })
        #expect(throws: HallmarkError(.caRegistrationInvalid, "", remedy: "")) {
            try CARegistration.verify(caCertificate: pki.root, verificationCertificate: impostor, registrationCode: code, now: now)
        }
        let leaf = try signed(by: pki.rootKey, issuer: pki.root.subject, subject: try DistinguishedName { CommonName("leaf") })
        #expect(throws: HallmarkError(.caRegistrationInvalid, "", remedy: "")) {
            try CARegistration.verify(caCertificate: leaf, verificationCertificate: leaf, registrationCode: code, now: now)
        }
        #expect(throws: HallmarkError(.caRegistrationInvalid, "", remedy: "")) {
            let proof = try signed(by: pki.rootKey, issuer: pki.root.subject, subject: try DistinguishedName { CommonName(code) })
            try CARegistration.verify(caCertificate: pki.root, verificationCertificate: proof, registrationCode: code, now: now + 86_400 * 4000)
        }
    }

    @Test("a template names things from certificate fields, and refuses names it cannot make")
    func template() throws {
        let template = try ProvisioningTemplate(json: Data(#"{"product": "p", "thingName": "oem-${iot:Certificate.Subject.CommonName}"}"#.utf8))
        let good = try signed(by: pki.rootKey, issuer: pki.root.subject, subject: try DistinguishedName { CommonName("sensor-7") })
        #expect(try template.thingName(for: good) == "oem-sensor-7")
        let spaced = try signed(by: pki.rootKey, issuer: pki.root.subject, subject: try DistinguishedName { CommonName("bad name") })
        #expect(throws: HallmarkError(.provisioningFailed, "", remedy: "")) { try template.thingName(for: spaced) }
        let bySerial = try ProvisioningTemplate(json: Data(#"{"product": "p", "thingName": "${iot:Certificate.Subject.SerialNumber}"}"#.utf8))
        #expect(throws: HallmarkError(.provisioningFailed, "", remedy: "")) { try bySerial.thingName(for: good) }
        let serialNumbered = try signed(
            by: pki.rootKey, issuer: pki.root.subject,
            subject: DistinguishedName([RelativeDistinguishedName(.init(type: [2, 5, 4, 5], printableString: "SN-0042"))]))
        #expect(try bySerial.thingName(for: serialNumbered) == "SN-0042")
    }

    @Test("templates with unknown variables, unclosed variables, bad characters or the wrong shape are refused")
    func invalidTemplates() {
        for json in [
            #"{"product": "p", "thingName": "${iot:Nope}"}"#, #"{"product": "p", "thingName": "x-${iot:ClientId"}"#,
            #"{"product": "p", "thingName": "a b"}"#, #"{"thingName": "x"}"#, "[]",
        ] {
            #expect(throws: HallmarkError(.provisioningTemplateInvalid, "", remedy: "")) { try ProvisioningTemplate(json: Data(json.utf8)) }
        }
    }
}
