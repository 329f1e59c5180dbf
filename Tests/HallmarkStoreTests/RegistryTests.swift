import Foundation
import HallmarkCore
import HallmarkStore
import HallmarkTesting
import Testing
import X509

@Suite struct RegistryTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func registry() throws -> Registry { try Registry(path: directory.appendingPathComponent("registry.sqlite").path) }

    func entries(_ count: Int, prefix: String = "S") throws -> [(AllowlistEntry, Certificate.PrivateKey)] {
        try (1...count).map { index in
            let key = Certificate.PrivateKey(P256Key.make())
            return (AllowlistEntry(udid: try UDID(validating: "\(prefix)-\(index)"), key: try DeviceKey(key.publicKey), line: index + 1), key)
        }
    }

    func parsed(_ entries: [AllowlistEntry]) -> AllowlistParser.Result {
        var result = AllowlistParser.Result()
        result.entries = entries
        result.rowsRead = entries.count
        return result
    }

    @Test func importIsAllOrNothingUnlessSkipping() throws {
        let registry = try registry()
        let devices = try entries(3).map(\.0)
        #expect(try registry.importAllowlist(parsed(devices), source: "a.csv", skipInvalid: false, now: Date()).imported == 3)

        var conflicting = devices[0]
        conflicting.key = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
        let fresh = try entries(2, prefix: "T").map(\.0)
        let refused = try registry.importAllowlist(parsed([conflicting] + fresh), source: "b.csv", skipInvalid: false, now: Date())
        #expect(!refused.committed)
        #expect(refused.problems.first?.error.code == .allowlistConflict)
        #expect(try registry.device(fresh[0].udid) == nil)

        let skipped = try registry.importAllowlist(
            parsed([conflicting, devices[1]] + fresh), source: "b.csv", skipInvalid: true, now: Date())
        #expect(skipped.committed && skipped.imported == 2 && skipped.alreadyPresent == 1 && skipped.invalidCount == 1)
        #expect(try registry.device(fresh[0].udid)?.source == "b.csv")
        #expect(try registry.device(devices[0].udid)?.key == devices[0].key)
    }

    @Test func eventLogIsAppendOnly() async throws {
        let registry = try registry()
        try await registry.append(
            AuditEvent(at: Date(), tenant: "default", action: "test", decision: .refuse, code: "x", detail: "d"))
        #expect(throws: (any Error).self) { try registry.execute(sql: "UPDATE events SET code = 'y'") }
        #expect(throws: (any Error).self) { try registry.execute(sql: "DELETE FROM events") }
        #expect(try registry.events(limit: 10).count == 1)
    }

    @Test func racingEnrollmentsOfOneDeviceIssueExactlyOnce() async throws {
        let pki = try TestPKI()
        let registry = try registry()
        let (entry, key) = try entries(1)[0]
        _ = try registry.importAllowlist(parsed([entry]), source: "t", skipInvalid: false, now: Date())
        let service = EnrollmentHarness(registry: registry, authority: pki.authority)
        let csr = try TestPKI.der(TestPKI.csr(commonName: entry.udid.rawValue, key: key))
        let serials = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<40 { group.addTask { try await service.enroll(csr) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(serials).count == 1)
        #expect(try registry.certificates(udid: entry.udid).count == 1)
        #expect(try registry.events(udid: entry.udid.rawValue, code: "issued").count == 1)
        #expect(try registry.events(udid: entry.udid.rawValue, code: "returned_existing").count == 39)
    }

    @Test func committedIssuanceSurvivesReopening() async throws {
        let pki = try TestPKI()
        let (entry, key) = try entries(1)[0]
        let serial: String
        do {
            let registry = try registry()
            _ = try registry.importAllowlist(parsed([entry]), source: "t", skipInvalid: false, now: Date())
            serial = try await EnrollmentHarness(registry: registry, authority: pki.authority)
                .enroll(try TestPKI.der(TestPKI.csr(commonName: entry.udid.rawValue, key: key)))
        }
        let reopened = try registry()
        #expect(try reopened.activeCertificate(entry.udid)?.serial == serial)
        #expect(try reopened.device(entry.udid)?.status == .enrolled)
        #expect(try reopened.thing(named: entry.udid.rawValue)?.policies == [DefaultPolicy.name])
    }
}

/// Drives the registry's commit the way the EST handler does, without HTTP.
struct EnrollmentHarness: Sendable {
    let registry: Registry
    let authority: IssuingAuthority

    func enroll(_ der: [UInt8]) async throws -> String {
        let request = try EnrollmentRequest(der: der)
        let decide: @Sendable (Registry.EnrollmentView) -> EnrollmentDecision = { view in
            EnrollmentRules.decideEnrollment(request, device: view.device, active: view.active)
        }
        let view = try registry.enrollmentView(udid: request.udid)
        var candidate: CertificateRecord?
        if case .issue(let thing, _) = decide(view), let device = view.device {
            let certificate = try authority.issueDeviceCertificate(thingName: thing, key: request.key, profile: .init(), now: Date())
            let der = try certificate.derBytes()
            candidate = CertificateRecord(
                serial: Array(certificate.serialNumber.bytes).map { String(format: "%02x", $0) }.joined(), tenant: "default",
                thingName: thing, udid: device.udid, fingerprint: CertificateFingerprint.sha256(der: der),
                keyFingerprint: request.key.fingerprint, notBefore: certificate.notValidBefore,
                notAfter: certificate.notValidAfter, status: .active, replacedBy: nil, der: der)
        }
        let outcome = try await registry.commitEnrollment(
            udid: request.udid, presentedFingerprint: nil, decide: decide, candidate: candidate,
            event: AuditEvent(at: Date(), tenant: "default", action: "enroll", decision: .allow, code: "", udid: request.udid.rawValue, detail: ""))
        switch outcome {
        case .issued(let record), .existing(let record): return record.serial
        case .refused(let error): throw error
        }
    }
}
