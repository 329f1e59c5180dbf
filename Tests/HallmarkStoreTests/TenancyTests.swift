import Crypto
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import HallmarkTesting
import Testing
import X509

/// Tenants, ownership, production quotas and clones, against the registry on disk.
@Suite struct TenancyTests {
    let directory: URL
    let registry: Registry
    let vendor: SimulatedVendor
    let pki: TestPKI

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-tenancy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        vendor = try SimulatedVendor.create(at: directory.appendingPathComponent("vendor"), name: "Test Silicon")
        pki = try TestPKI()
    }

    struct Chip {
        var udid: UDID
        var key: Certificate.PrivateKey
        var deviceKey: DeviceKey
        var attestation: Certificate
    }

    func chips(_ count: Int, prefix: String) throws -> [Chip] {
        try (1...count).map { index in
            let key = Certificate.PrivateKey(P256Key.make())
            let udid = try UDID(validating: "\(prefix)-\(index)")
            let deviceKey = try DeviceKey(key.publicKey)
            return Chip(udid: udid, key: key, deviceKey: deviceKey, attestation: try vendor.attestationCertificate(udid: udid, key: deviceKey))
        }
    }

    /// A tenant that registered the vendor and claimed a manifest of `chips`.
    func owner(_ tenant: String, claiming chips: [Chip]) async throws {
        _ = try registry.createTenant(id: tenant, name: tenant, now: Date())
        try registry.registerVendor(
            tenant: tenant, id: "silicon",
            manifestKey: try P256.Signing.PublicKey(pemRepresentation: String(contentsOf: vendor.manifestPublicKeyFile, encoding: .utf8)),
            attestationCertificates: [vendor.attestationRoot], now: Date())
        let manifest = try vendor.manifest(chips.map { ($0.udid, $0.deviceKey, $0.attestation) }, lot: "L1")
        let report = try await ManifestImport(registry: registry).run(
            manifest, vendor: "silicon", tenant: tenant, claim: .all, skipInvalid: false, source: nil, now: Date())
        #expect(report.committed && report.claimed == chips.count)
    }

    func csr(_ chip: Chip, key: Certificate.PrivateKey? = nil) throws -> [UInt8] {
        try TestPKI.der(TestPKI.csr(commonName: chip.udid.rawValue, key: key ?? chip.key))
    }

    @Test func credentialsNameTheirTenantOnly() throws {
        let acme = try registry.createTenant(id: "acme", name: "Acme", now: Date())
        let globex = try registry.createTenant(id: "globex", name: "Globex", now: Date())
        #expect(try registry.tenant(forCredential: acme) == "acme")
        #expect(try registry.tenant(forCredential: globex) == "globex")
        #expect(try registry.tenant(forCredential: "hmk_admin_" + String(repeating: "0", count: 64)) == nil)
        let rotated = try registry.rotateTenantCredential("acme", now: Date())
        #expect(try registry.tenant(forCredential: acme) == nil)
        #expect(try registry.tenant(forCredential: rotated) == "acme")
        #expect(throws: HallmarkError.self) { try registry.createTenant(id: "Bad Id", name: "", now: Date()) }
        #expect(throws: HallmarkError.self) { try registry.createTenant(id: "acme", name: "", now: Date()) }
    }

    @Test func aGenuineChipInAnotherTenantsProductIsACounterfeitOEM() async throws {
        let chip = try chips(1, prefix: "SE")[0]
        try await owner("acme", claiming: [chip])
        _ = try registry.createTenant(id: "knockoff", name: "Knockoff", now: Date())
        // The knock-off cannot claim the chip from the same manifest...
        _ = try registry.registerVendor(
            tenant: "knockoff", id: "silicon",
            manifestKey: try P256.Signing.PublicKey(pemRepresentation: String(contentsOf: vendor.manifestPublicKeyFile, encoding: .utf8)),
            attestationCertificates: [], now: Date())
        let claim = try await ManifestImport(registry: registry).run(
            try vendor.manifest([(chip.udid, chip.deviceKey, nil)], lot: nil), vendor: "silicon", tenant: "knockoff", claim: .all,
            skipInvalid: false, source: nil, now: Date())
        #expect(!claim.committed && claim.problems.first?.error.code == .ownershipConflict)
        // ...nor enrol it.
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        await #expect(throws: HallmarkError(.counterfeitOEM, "", remedy: "")) {
            try await service.enroll(csrDER: try csr(chip), tenant: "knockoff", source: nil)
        }
        let theirs = try registry.events(tenant: "knockoff", limit: 50)
        #expect(theirs.contains { $0.code == "counterfeit_oem" })
        #expect(!theirs.contains { $0.detail.contains("acme") })
        let ours = try registry.events(udid: chip.udid.rawValue, code: "counterfeit_oem", tenant: "acme")
        #expect(ours.count == 1 && !ours[0].detail.contains("knockoff"))
        #expect(try registry.events(code: "ownership_conflict", tenant: "acme").count == 1)
        // The owner enrols it.
        let issued = try await service.enroll(csrDER: try csr(chip), tenant: "acme", source: nil)
        #expect(issued.record.tenant == "acme")
        // Another tenant cannot revoke, list or see it.
        await #expect(throws: HallmarkError(.notFound, "", remedy: "")) {
            try await registry.setCertificateStatus(issued.record.serial, to: .revoked, reason: "x", tenant: "knockoff", now: Date())
        }
        #expect(try registry.certificates(tenant: "knockoff").isEmpty)
        #expect(try registry.devices(tenant: "knockoff").isEmpty)
        #expect(throws: HallmarkError.self) {
            try registry.setDeviceStatus(chip.udid, to: .quarantined, reason: "x", tenant: "knockoff", now: Date())
        }
        #expect(try registry.device(chip.udid)?.status == .enrolled)
    }

    @Test func aTransferNeedsTheOwnerAndMovesTheDevice() async throws {
        let chip = try chips(1, prefix: "TR")[0]
        try await owner("acme", claiming: [chip])
        _ = try registry.createTenant(id: "globex", name: "Globex", now: Date())
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        let first = try await service.enroll(csrDER: try csr(chip), tenant: "acme", source: nil)
        await #expect(throws: HallmarkError.self) {
            try await registry.transferDevice(chip.udid, from: "globex", to: "globex", now: Date())
        }
        await #expect(throws: HallmarkError.self) {
            try await registry.transferDevice(chip.udid, from: "globex", to: "acme", now: Date())
        }
        try await registry.transferDevice(chip.udid, from: "acme", to: "globex", now: Date())
        #expect(try registry.certificate(fingerprint: first.record.fingerprint)?.status == .revoked)
        let second = try await service.enroll(csrDER: try csr(chip), tenant: "globex", source: nil)
        #expect(second.record.tenant == "globex" && second.isNew)
    }

    @Test func exactlyTheQuotaGetsInUnderConcurrency() async throws {
        _ = try registry.createTenant(id: "acme", name: "Acme", now: Date())
        let batch = try registry.createBatch(tenant: "acme", product: Registry.defaultProduct, quota: 20, now: Date())
        let devices = try chips(60, prefix: "Q")
        let outcomes = try await withThrowingTaskGroup(of: Registry.ProgrammingOutcome.self) { group in
            for chip in devices {
                group.addTask {
                    try await registry.registerProgrammedDevice(
                        batch: batch.report.id, udid: chip.udid, key: chip.deviceKey, source: nil, now: Date())
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let registered = outcomes.filter { if case .registered = $0 { return true } else { return false } }
        #expect(registered.count == 20)
        #expect(outcomes.filter { $0 == .refused(HallmarkError(.quotaExceeded, "", remedy: "")) }.count == 40)
        let report = try registry.batchReport(tenant: "acme", id: batch.report.id)
        #expect(report?.programmed == 20 && report?.refused == 40)
        #expect(try registry.devices(tenant: "acme", limit: 1000).count == 20)
        #expect(try registry.events(code: "overproduction", tenant: "acme").count == 1)
        // A repeat of a registered device counts once; another tenant's batch report is not found.
        let again = devices.first { chip in (try? registry.device(chip.udid)) != nil }!
        #expect(try await registry.registerProgrammedDevice(
            batch: batch.report.id, udid: again.udid, key: again.deviceKey, source: nil, now: Date()) == .alreadyRegistered)
        _ = try registry.createTenant(id: "globex", name: "Globex", now: Date())
        #expect(try registry.batchReport(tenant: "globex", id: batch.report.id) == nil)
    }

    @Test func anotherKeyForAnEnrolledDeviceQuarantinesIt() async throws {
        let chip = try chips(1, prefix: "CL")[0]
        try await owner("acme", claiming: [chip])
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        _ = try await service.enroll(csrDER: try csr(chip), tenant: "acme", source: nil)
        await #expect(throws: HallmarkError(.cloneSuspected, "", remedy: "")) {
            try await service.enroll(csrDER: try csr(chip, key: Certificate.PrivateKey(P256Key.make())), tenant: "acme", source: nil)
        }
        #expect(try registry.device(chip.udid)?.status == .quarantined)
        #expect(try registry.events(code: "clone_suspected", tenant: "acme").contains { $0.decision == .alarm })
        await #expect(throws: HallmarkError(.deviceQuarantined, "", remedy: "")) {
            try await service.enroll(csrDER: try csr(chip), tenant: "acme", source: nil)
        }
    }

    @Test func aProductMayOnlyAlarmOnAClone() async throws {
        let chip = try chips(1, prefix: "AL")[0]
        try await owner("acme", claiming: [chip])
        try registry.setCloneResponse(.alarm, tenant: "acme", product: Registry.defaultProduct, now: Date())
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        _ = try await service.enroll(csrDER: try csr(chip), tenant: "acme", source: nil)
        await #expect(throws: HallmarkError(.cloneSuspected, "", remedy: "")) {
            try await service.enroll(csrDER: try csr(chip, key: Certificate.PrivateKey(P256Key.make())), tenant: "acme", source: nil)
        }
        #expect(try registry.events(code: "clone_suspected", tenant: "acme").contains { $0.decision == .alarm })
        #expect(try registry.device(chip.udid)?.status == .enrolled)
    }

    @Test func attestationEnrollmentAcceptsANewOperationalKeyOnlyWithAGenuineIDevID() async throws {
        let chip = try chips(1, prefix: "AT")[0]
        try await owner("acme", claiming: [chip])
        let service = EnrollmentService(registry: registry, authority: pki.authority)
        let operational = Certificate.PrivateKey(P256Key.make())
        // Without the IDevID, a new key is not the device's.
        await #expect(throws: HallmarkError(.keyMismatch, "", remedy: "")) {
            try await service.enroll(csrDER: try csr(chip, key: operational), tenant: "acme", source: nil)
        }
        // An IDevID from a fake root with the same name is refused.
        let fake = try SimulatedVendor.create(at: directory.appendingPathComponent("fake"), name: "Test Silicon")
        await #expect(throws: HallmarkError(.attestationChainInvalid, "", remedy: "")) {
            try await service.enroll(
                csrDER: try csr(chip, key: operational), tenant: "acme",
                clientCertificate: try fake.attestationCertificate(udid: chip.udid, key: chip.deviceKey), source: nil)
        }
        // Another device's genuine IDevID does not attest this one.
        let other = try chips(1, prefix: "OT")[0]
        await #expect(throws: HallmarkError(.attestationChainInvalid, "", remedy: "")) {
            try await service.enroll(
                csrDER: try csr(chip, key: operational), tenant: "acme", clientCertificate: other.attestation, source: nil)
        }
        let issued = try await service.enroll(
            csrDER: try csr(chip, key: operational), tenant: "acme", clientCertificate: chip.attestation, source: nil)
        #expect(issued.record.keyFingerprint == (try DeviceKey(operational.publicKey)).fingerprint)
        #expect(
            try registry.events(udid: chip.udid.rawValue, code: "issued").first?.detail
                == "certificate \(issued.record.serial) issued; attested by the device's IDevID")
    }
}
