import Foundation
import HallmarkCore
import HallmarkTesting
import Testing
import X509

@Suite struct EnrollmentRulesTests {
    let rootOfTrust = Certificate.PrivateKey(P256Key.make())
    let udid = try! UDID(validating: "UNIT-0001")

    func request(key: Certificate.PrivateKey? = nil, cn: String? = nil) throws -> EnrollmentRequest {
        try EnrollmentRequest(der: TestPKI.der(TestPKI.csr(commonName: cn ?? udid.rawValue, key: key ?? rootOfTrust)))
    }

    func device(_ status: DeviceStatus = .allowed) throws -> DeviceRecord {
        DeviceRecord(
            tenant: "default", udid: udid, key: try DeviceKey(rootOfTrust.publicKey), status: status, source: "test",
            product: "default")
    }

    func certificate(key: Certificate.PrivateKey, status: CertificateStatus = .active, serial: String = "01") throws -> CertificateRecord {
        CertificateRecord(
            serial: serial, tenant: "default", thingName: udid.rawValue, udid: udid, fingerprint: "f\(serial)",
            keyFingerprint: try DeviceKey(key.publicKey).fingerprint, notBefore: Date(timeIntervalSince1970: 0),
            notAfter: Date(timeIntervalSince1970: 4_000_000_000), status: status, replacedBy: nil, der: [])
    }

    @Test func aCertificateThatExpiredOfflineIsRenewedOnlyWithinItsProductsWindow() throws {
        var expired = try certificate(key: rootOfTrust)
        expired.notAfter = Date(timeIntervalSince1970: 1_000_000)
        let day: TimeInterval = 86_400
        func decide(daysLate: Double, window: TimeInterval) throws -> EnrollmentDecision {
            EnrollmentRules.decideEnrollment(
                try request(), tenant: "default", device: try device(.enrolled), active: expired,
                now: expired.notAfter + daysLate * day, expiredRenewalWindow: window)
        }
        // Not handed its expired certificate back: refused, unless the product allows a renewal.
        #expect(try decide(daysLate: 1, window: 0).refusal?.code == .certificateExpired)
        #expect(try decide(daysLate: 1, window: 30 * day) == .issue(thingName: udid.rawValue, supersedes: "01"))
        #expect(try decide(daysLate: 31, window: 30 * day).refusal?.code == .certificateExpired)
        // A key other than the root-of-trust key is still a suspected clone.
        let other = EnrollmentRules.decideEnrollment(
            try request(key: Certificate.PrivateKey(P256Key.make())), tenant: "default", device: try device(.enrolled), active: expired,
            now: expired.notAfter + day, expiredRenewalWindow: 30 * day)
        #expect(other.refusal?.code == .cloneSuspected)
    }

    @Test func unknownDeviceIsRefused() throws {
        let decision = EnrollmentRules.decideEnrollment(
            try request(), tenant: "default", device: nil, active: nil)
        #expect(decision.refusal?.code == .unknownDevice)
    }

    @Test func allowlistedDeviceWithItsRootOfTrustKeyIsIssued() throws {
        let decision = EnrollmentRules.decideEnrollment(
            try request(), tenant: "default", device: try device(), active: nil)
        #expect(decision == .issue(thingName: udid.rawValue, supersedes: nil))
    }

    @Test func anotherKeyBeforeEnrollmentIsKeyMismatch() throws {
        let decision = EnrollmentRules.decideEnrollment(
            try request(key: .init(P256Key.make())), tenant: "default", device: try device(), active: nil)
        #expect(decision.refusal?.code == .keyMismatch)
    }

    @Test func anotherKeyAfterEnrollmentIsCloneSuspected() throws {
        let decision = EnrollmentRules.decideEnrollment(
            try request(key: .init(P256Key.make())), tenant: "default", device: try device(.enrolled),
            active: try certificate(key: rootOfTrust))
        #expect(decision.refusal?.code == .cloneSuspected)
    }

    @Test func retryReturnsTheActiveCertificate() throws {
        let decision = EnrollmentRules.decideEnrollment(
            try request(), tenant: "default", device: try device(.enrolled), active: try certificate(key: rootOfTrust, serial: "aa"))
        #expect(decision == .returnExisting(serial: "aa"))
    }

    @Test(arguments: [DeviceStatus.quarantined, .decommissioned])
    func heldDevicesAreRefused(status: DeviceStatus) throws {
        let decision = EnrollmentRules.decideEnrollment(
            try request(), tenant: "default", device: try device(status), active: nil)
        #expect(decision.refusal?.code == (status == .quarantined ? .deviceQuarantined : .deviceDecommissioned))
    }

    @Test func aGenuineDeviceOfAnotherTenantIsACounterfeitOEM() throws {
        let decision = EnrollmentRules.decideEnrollment(try request(), tenant: "knockoff", device: try device(), active: nil)
        #expect(decision.refusal?.code == .counterfeitOEM)
        #expect(decision.refusal?.reason.contains("default") == false)
    }

    @Test func anAttestedDeviceMayEnrolANewOperationalKey() throws {
        let operational = try request(key: .init(P256Key.make()))
        #expect(
            EnrollmentRules.decideEnrollment(operational, tenant: "default", device: try device(), active: nil, attested: true)
                == .issue(thingName: udid.rawValue, supersedes: nil))
        #expect(
            EnrollmentRules.decideEnrollment(operational, tenant: "default", device: try device(), active: nil).refusal?.code
                == .keyMismatch)
    }

    @Test func renewalSupersedesThePresentedCertificate() throws {
        let presented = try certificate(key: rootOfTrust, serial: "01")
        let decision = EnrollmentRules.decideRenewal(
            try request(), presented: presented, successor: nil, device: try device(.enrolled), now: Date())
        #expect(decision == .issue(thingName: udid.rawValue, supersedes: "01"))
    }

    @Test func repeatedRenewalReturnsTheSuccessor() throws {
        var presented = try certificate(key: rootOfTrust, status: .superseded, serial: "01")
        presented.replacedBy = "02"
        let successor = try certificate(key: rootOfTrust, serial: "02")
        let decision = EnrollmentRules.decideRenewal(
            try request(), presented: presented, successor: successor, device: try device(.enrolled), now: Date())
        #expect(decision == .returnExisting(serial: "02"))
    }

    @Test func renewalRefusals() throws {
        let active = try certificate(key: rootOfTrust)
        #expect(
            EnrollmentRules.decideRenewal(try request(), presented: nil, successor: nil, device: try device(), now: Date())
                .refusal?.code == .clientCertificateInvalid)
        #expect(
            EnrollmentRules.decideRenewal(
                try request(), presented: active, successor: nil, device: try device(),
                now: Date(timeIntervalSince1970: 4_100_000_000)
            ).refusal?.code == .certificateExpired)
        #expect(
            EnrollmentRules.decideRenewal(
                try request(cn: "UNIT-0002"), presented: active, successor: nil, device: try device(), now: Date()
            ).refusal?.code == .subjectMismatch)
        #expect(
            EnrollmentRules.decideRenewal(
                try request(), presented: try certificate(key: rootOfTrust, status: .revoked), successor: nil,
                device: try device(), now: Date()
            ).refusal?.code == .certificateRevoked)
        #expect(
            EnrollmentRules.decideRenewal(
                try request(), presented: try certificate(key: rootOfTrust, status: .inactive), successor: nil,
                device: try device(), now: Date()
            ).refusal?.code == .certificateNotActive)
        #expect(
            EnrollmentRules.decideRenewal(
                try request(), presented: active, successor: nil, device: try device(.quarantined), now: Date()
            ).refusal?.code == .deviceQuarantined)
    }
}
