import Foundation
import HallmarkCore
import HallmarkServices
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
        #expect(try registry.events(limit: 1).first.map { "\($0.decision) \($0.code) \($0.source ?? "")" } == "refuse allowlist_invalid b.csv")

        let skipped = try registry.importAllowlist(
            parsed([conflicting, devices[1]] + fresh), source: "b.csv", skipInvalid: true, now: Date())
        #expect(skipped.committed && skipped.imported == 2 && skipped.alreadyPresent == 1 && skipped.invalidCount == 1)
        #expect(try registry.device(fresh[0].udid)?.source == "b.csv")
        #expect(try registry.device(devices[0].udid)?.key == devices[0].key)
    }

    @Test func anImportWhoseFileCannotBeReadToItsEndWritesNothing() throws {
        struct DiskGone: Error {}
        let registry = try registry()
        var rows = try entries(3).map { AllowlistRow.entry($0.0) }.makeIterator()
        #expect(throws: DiskGone.self) {
            try registry.importAllowlist(
                nextRow: {
                    guard let row = rows.next() else { throw DiskGone() }
                    return row
                }, source: "cut.csv", skipInvalid: true, now: Date())
        }
        #expect(try registry.devices(limit: 10).isEmpty)
    }

    @Test func aReportListsTheFirstProblemsAndCountsThemAll() throws {
        let registry = try registry()
        let bad = (1...1_200).map { line in
            AllowlistRow.problem(
                AllowlistProblem(line: line, udid: nil, severity: .invalid, error: HallmarkError(.allowlistInvalid, "bad", remedy: "fix")))
        }
        var rows = (bad + (try entries(2)).map { AllowlistRow.entry($0.0) }).makeIterator()
        let report = try registry.importAllowlist(nextRow: { rows.next() }, source: "bad.csv", skipInvalid: true, now: Date())
        #expect(report.committed && report.imported == 2 && report.rowsRead == 1_202)
        #expect(report.invalidCount == 1_200 && report.problems.count == Registry.ImportReport.problemsKept)
        #expect(report.problems.first?.line == 1)
    }

    @Test func eventLogIsAppendOnly() async throws {
        let registry = try registry()
        try await registry.append(
            AuditEvent(at: Date(), tenant: "default", action: .enroll, decision: .refuse, code: "x", detail: "d"))
        #expect(throws: (any Error).self) { try registry.execute(sql: "UPDATE events SET code = 'y'") }
        #expect(throws: (any Error).self) { try registry.execute(sql: "DELETE FROM events") }
        #expect(try registry.events(limit: 10).count == 1)
    }

    @Test func racingEnrollmentsOfOneDeviceIssueExactlyOnce() async throws {
        let pki = try TestPKI()
        let registry = try registry()
        let (entry, key) = try entries(1)[0]
        _ = try registry.importAllowlist(parsed([entry]), source: "t", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        let csr = try TestPKI.der(TestPKI.csr(commonName: entry.udid.rawValue, key: key))
        let serials = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<40 { group.addTask { try await service.enroll(csrDER: csr, source: nil).record.serial } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(serials).count == 1)
        #expect(try registry.certificates(udid: entry.udid).count == 1)
        #expect(try registry.events(udid: entry.udid.rawValue, code: "issued").count == 1)
        #expect(try registry.events(udid: entry.udid.rawValue, code: "returned_existing").count == 39)
    }

    /// The index that finds a device's certificates also keeps it from holding two active ones.
    @Test func theDatabaseRefusesASecondActiveCertificateForADevice() async throws {
        let pki = try TestPKI()
        let registry = try registry()
        let (entry, key) = try entries(1)[0]
        _ = try registry.importAllowlist(parsed([entry]), source: "t", skipInvalid: false, now: Date())
        let issued = try await EnrollmentService(registry: registry, authority: pki.authority)
            .enroll(csrDER: try TestPKI.der(TestPKI.csr(commonName: entry.udid.rawValue, key: key)), source: nil)
        func insert(status: String, fingerprint: String) throws {
            try registry.execute(
                sql: """
                    INSERT INTO certificates (fingerprint, serial, tenant_id, thing_name, udid, key_fingerprint,
                        not_before, not_after, status, issued_at, der)
                    SELECT '\(fingerprint)', '\(fingerprint)', tenant_id, thing_name, udid, key_fingerprint,
                        not_before, not_after, '\(status)', issued_at, der FROM certificates WHERE serial = '\(issued.record.serial)'
                    """)
        }
        #expect(throws: (any Error).self) { try insert(status: "active", fingerprint: "second-active") }
        try insert(status: "superseded", fingerprint: "older-1")
        try insert(status: "revoked", fingerprint: "older-2")
        #expect(try registry.certificates(udid: entry.udid).count == 3)
        #expect(try registry.activeCertificate(entry.udid)?.serial == issued.record.serial)
    }

    @Test func commitAfterTheDeviceWasImportedAsksForAFreshRead() async throws {
        let pki = try TestPKI()
        let registry = try registry()
        let (entry, key) = try entries(1)[0]
        let csr = try TestPKI.der(TestPKI.csr(commonName: entry.udid.rawValue, key: key))
        let request = try EnrollmentRequest(der: csr)
        let decide: @Sendable (Registry.EnrollmentView) -> EnrollmentDecision = { view in
            EnrollmentRules.decideEnrollment(request, tenant: Registry.defaultTenant, device: view.device, active: view.active)
        }
        // Read before the device is on the allowlist: the decision is to refuse, so nothing is signed.
        guard case .refuse = decide(try await registry.enrollmentView(udid: entry.udid)) else {
            Issue.record("an unknown device must be refused")
            return
        }
        _ = try registry.importAllowlist(parsed([entry]), source: "t", skipInvalid: false, now: Date())
        let outcome = try await registry.commitEnrollment(
            udid: entry.udid, presentedFingerprint: nil, decide: decide, candidate: nil,
            event: AuditEvent(
                at: Date(), tenant: Registry.defaultTenant, action: .enroll, decision: .allow, code: "", udid: entry.udid.rawValue,
                detail: ""))
        guard case .stale = outcome else {
            Issue.record("expected .stale, got \(outcome)")
            return
        }
        #expect(try registry.events(udid: entry.udid.rawValue).isEmpty)
        #expect(try registry.certificates(udid: entry.udid).isEmpty)

        let issued = try await EnrollmentService(registry: registry, authority: pki.authority).enroll(csrDER: csr, source: nil)
        #expect(issued.isNew)
        #expect(try registry.events(udid: entry.udid.rawValue, code: "issued").count == 1)
    }

    @Test func committedIssuanceSurvivesReopening() async throws {
        let pki = try TestPKI()
        let (entry, key) = try entries(1)[0]
        let serial: String
        do {
            let registry = try registry()
            _ = try registry.importAllowlist(parsed([entry]), source: "t", skipInvalid: false, now: Date())
            serial = try await EnrollmentService(registry: registry, authority: pki.authority)
                .enroll(csrDER: try TestPKI.der(TestPKI.csr(commonName: entry.udid.rawValue, key: key)), source: nil)
                .record.serial
        }
        let reopened = try registry()
        #expect(try reopened.activeCertificate(entry.udid)?.serial == serial)
        #expect(try reopened.device(entry.udid)?.status == .enrolled)
        #expect(try reopened.thing(named: entry.udid.rawValue)?.policies == [DefaultPolicy.name])
    }

    /// The writer's commits no longer checkpoint themselves (SQLite's automatic checkpoint is
    /// replaced): a checkpoint on a thread of its own must still copy a large log into the file.
    @Test func largeCommitIsCheckpointedIntoTheDatabaseFile() async throws {
        let registry = try registry()
        let file = directory.appendingPathComponent("registry.sqlite").path
        func size() throws -> Int { try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0 }
        let before = try size()
        // About 6,000 pages of 2 KiB in one commit: past the 4,000-frame threshold.
        let devices = try (1...30_000).map { index in
            AllowlistEntry(udid: try UDID(validating: "CP-\(index)"), key: try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey), line: index)
        }
        #expect(try registry.importAllowlist(parsed(devices), source: "big.csv", skipInvalid: false, now: Date()).imported == 30_000)
        let deadline = Date().addingTimeInterval(20)
        while try size() < before + 8_000_000, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try size() >= before + 8_000_000, "the log was not copied into the database file")
        #expect(try registry.device(try UDID(validating: "CP-30000")) != nil)
    }
}
