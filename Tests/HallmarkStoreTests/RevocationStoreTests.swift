import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import HallmarkTesting
import Revocation
import Testing
import X509

/// What CRLs and OCSP read of the registry, and decommissioning, against a real SQLite registry.
@Suite struct RevocationStoreTests {
    let directory: URL
    let pki: TestPKI

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-revocation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        pki = try TestPKI()
    }

    var issuer: String { pki.authority.keyIdentifier }

    /// A registry with `count` enrolled devices; their certificates.
    func enrolled(_ count: Int) async throws -> (Registry, [CertificateRecord]) {
        let (registry, _, records) = try await enrolledWithKeys(count)
        return (registry, records)
    }

    /// A registry with `count` enrolled devices; their keys and certificates.
    func enrolledWithKeys(_ count: Int) async throws -> (Registry, [Certificate.PrivateKey], [CertificateRecord]) {
        let registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        let keys = (1...count).map { _ in Certificate.PrivateKey(P256Key.make()) }
        var parsed = AllowlistParser.Result()
        parsed.entries = try keys.enumerated().map { index, key in
            AllowlistEntry(udid: try UDID(validating: "R-\(index + 1)"), key: try DeviceKey(key.publicKey), line: index + 2)
        }
        parsed.rowsRead = count
        _ = try registry.importAllowlist(parsed, source: "r.csv", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        var records: [CertificateRecord] = []
        for (index, key) in keys.enumerated() {
            let csr = try TestPKI.der(TestPKI.csr(commonName: "R-\(index + 1)", key: key))
            records.append(try await service.enroll(csrDER: csr, source: nil).record)
        }
        return (registry, keys, records)
    }

    @Test func issuedCertificatesAreFiledUnderTheirCA() async throws {
        let (registry, records) = try await enrolled(2)
        #expect(records.allSatisfy { $0.issuerKeyID == issuer })
        #expect(try registry.revocationStatus(issuer: issuer, serial: records[0].serial) == .good)
        // Another issuer's key id: the first byte changed (an issuer's own may start with 00).
        let other = (issuer.hasPrefix("00") ? "01" : "00") + issuer.dropFirst(2)
        #expect(try registry.revocationStatus(issuer: other, serial: records[0].serial) == nil)
        #expect(try registry.revocationStatus(issuer: issuer, serial: "01ff") == nil)
        #expect(try registry.revokedCertificates(issuer: issuer, now: Date()).isEmpty)
    }

    @Test func aRevocationCarriesItsReasonAndAHoldIsLifted() async throws {
        let (registry, records) = try await enrolled(2)
        let now = Date()
        try await registry.setCertificateStatus(records[0].serial, to: .revoked, reason: "stolen", revocationReason: .keyCompromise, now: now)
        try await registry.setCertificateStatus(records[1].serial, to: .inactive, reason: "held", now: now)
        let entries = try registry.revokedCertificates(issuer: issuer, now: now)
        #expect(Set(entries.map(\.reason)) == [.keyCompromise, .certificateHold])
        #expect(Set(entries.map { $0.serial.hexString }) == Set(records.map(\.serial)))
        guard case .revoked(_, .keyCompromise) = try registry.revocationStatus(issuer: issuer, serial: records[0].serial) else {
            Issue.record("not revoked for key compromise")
            return
        }
        try await registry.setCertificateStatus(records[1].serial, to: .active, reason: "found", now: now)
        #expect(try registry.revocationStatus(issuer: issuer, serial: records[1].serial) == .good)
        #expect(try registry.revokedCertificates(issuer: issuer, now: now).count == 1)
        // An expired certificate leaves the CRL (RFC 5280 §3.3).
        #expect(try registry.revokedCertificates(issuer: issuer, now: records[0].notAfter + 1).isEmpty)
    }

    @Test func decommissioningRevokesEverythingAndOnlyRecommissioningUndoesIt() async throws {
        let (registry, records) = try await enrolled(1)
        let udid = try #require(records[0].udid)
        try registry.setDeviceStatus(udid, to: .decommissioned, reason: "end of life", now: Date())
        guard case .revoked(_, .cessationOfOperation) = try registry.revocationStatus(issuer: issuer, serial: records[0].serial) else {
            Issue.record("the certificate was not revoked for cessation of operation")
            return
        }
        #expect(try registry.thing(named: records[0].thingName, tenant: Registry.defaultTenant)?.status == .inactive)
        #expect(try registry.device(udid)?.status == .decommissioned)
        #expect { try registry.setDeviceStatus(udid, to: .allowed, reason: "quietly", now: Date()) } throws: {
            ($0 as? HallmarkError)?.code == .deviceDecommissioned
        }
        try registry.recommission(udid, reason: "refurbished", now: Date())
        #expect { try registry.recommission(udid, reason: "again", now: Date()) } throws: {
            ($0 as? HallmarkError)?.code == .deviceStatusInvalid
        }
        #expect(try registry.device(udid)?.status == .allowed)
        #expect(try registry.thing(named: records[0].thingName, tenant: Registry.defaultTenant)?.status == .active)
        guard case .revoked = try registry.revocationStatus(issuer: issuer, serial: records[0].serial) else {
            Issue.record("recommissioning brought an old certificate back")
            return
        }
        let codes = try registry.events(limit: 5).map(\.code)
        #expect(codes.contains("status_recommissioned") && codes.contains("status_decommissioned"))
        #expect(try registry.events(limit: 5).first { $0.code == "status_decommissioned" }?.detail.contains("1 certificate revoked") == true)
    }

    /// A renewal of the device's certificate; the new record.
    func renew(_ record: CertificateRecord, registry: Registry, key: Certificate.PrivateKey) async throws -> CertificateRecord {
        let csr = try TestPKI.der(TestPKI.csr(commonName: record.udid!.rawValue, key: key))
        let presented = try Certificate(derEncoded: record.der)
        return try await EnrollmentService(registry: registry, authority: pki.authority)
            .reenroll(csrDER: csr, clientCertificate: presented, source: nil).record
    }

    @Test func aSupersededCertificateRetiresWhenItsReplacementIsUsedOrItsGraceEnds() async throws {
        let (registry, keys, records) = try await enrolledWithKeys(2)
        let first = try await renew(records[0], registry: registry, key: keys[0])
        let second = try await renew(records[1], registry: registry, key: keys[1])
        #expect(try registry.revocationStatus(issuer: issuer, serial: records[0].serial) == .good)
        // The device connected with its new certificate: the old one is revoked, superseded.
        #expect(try await registry.retireSuperseded(replacedBy: [first.serial, "0badbeef"], now: Date()) == 1)
        guard case .revoked(_, .superseded) = try registry.revocationStatus(issuer: issuer, serial: records[0].serial) else {
            Issue.record("the replaced certificate was not retired")
            return
        }
        #expect(try await registry.retireSuperseded(replacedBy: [first.serial], now: Date()) == 0)
        // The other device never connected: within the week's grace its old certificate stays good.
        #expect(try await registry.retireSupersededPastGrace(now: Date() + 86_400) == 0)
        #expect(try await registry.retireSupersededPastGrace(now: Date() + 8 * 86_400) == 1)
        guard case .revoked(_, .superseded) = try registry.revocationStatus(issuer: issuer, serial: records[1].serial) else {
            Issue.record("the certificate past its grace was not retired")
            return
        }
        #expect(try registry.revocationStatus(issuer: issuer, serial: second.serial) == .good)
        #expect(try registry.events(limit: 10).filter { $0.code == "certificate_retired" }.count == 2)
    }

    @Test func expiryIsAnnouncedOnce() async throws {
        let (registry, records) = try await enrolled(1)
        #expect(try await registry.warnExpiring(now: Date()) == 0)
        let soon = records[0].notAfter - 10 * 86_400
        #expect(try await registry.warnExpiring(now: soon) == 1)
        #expect(try await registry.warnExpiring(now: soon + 86_400) == 0)
        let event = try #require(try registry.events(limit: 3).first { $0.code == "certificate_expiring" })
        #expect(event.serial == records[0].serial && event.action == .certificateExpiry && event.detail.hasPrefix("expires in 10 days"))
    }
}
