import Crypto
import Foundation
import HallmarkCore
import HallmarkDevice
import Testing
import X509

/// Vendor manifests: a genuine one verifies entry by entry; every kind of tampering is refused
/// with its reason, on the entry it touched.
@Suite struct ManifestVerifierTests {
    let vendor: SimulatedVendor
    let chips: [(udid: UDID, key: DeviceKey, attestation: Certificate?)]
    let now = Date()

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vendor-\(UUID().uuidString)")
        vendor = try SimulatedVendor.create(at: directory, name: "Test Silicon")
        var chips: [(udid: UDID, key: DeviceKey, attestation: Certificate?)] = []
        for index in 1...3 {
            let udid = try UDID(validating: "SE-\(index)")
            let key = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
            chips.append((udid, key, try vendor.attestationCertificate(udid: udid, key: key)))
        }
        self.chips = chips
    }

    var trust: ManufacturerTrust {
        get throws {
            ManufacturerTrust(
                vendor: "test", manifestKey: try P256.Signing.PublicKey(pemRepresentation: String(contentsOf: vendor.manifestPublicKeyFile, encoding: .utf8)),
                attestationRoots: [vendor.attestationRoot])
        }
    }

    func entries(_ manifest: [UInt8]) throws -> [SecureElementManifest.SignedEntry] {
        try JSONDecoder().decode([SecureElementManifest.SignedEntry].self, from: Data(manifest))
    }

    func encode(_ entries: [SecureElementManifest.SignedEntry]) throws -> [UInt8] { Array(try JSONEncoder().encode(entries)) }

    @Test func aGenuineManifestVerifies() async throws {
        let result = try await ManifestVerifier.verify(try vendor.manifest(chips, lot: "L1"), trust: trust, now: now)
        #expect(result.problems.isEmpty)
        #expect(result.devices.map(\.udid) == chips.map(\.udid))
        #expect(result.devices.map(\.key) == chips.map(\.key))
        #expect(result.devices.allSatisfy { $0.lot == "L1" && $0.attestationChain.count == 1 })
    }

    @Test func aChangedEntryIsRefusedAndOnlyThatOne() async throws {
        var signed = try entries(try vendor.manifest(chips, lot: "L1"))
        // Swap entry 2's payload for one naming another key, keeping the vendor's signature.
        var claims = try JSONDecoder().decode(SecureElementManifest.Claims.self, from: Data(Base64URL.decode(signed[1].payload)!))
        let forged = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
        claims.publicKeySet.keys[0].x = Base64URL.encode(P256.Signing.PublicKey(try forged.publicKey)!.x963Representation[1...32])
        signed[1].payload = Base64URL.encode(try JSONEncoder().encode(claims))
        let result = try await ManifestVerifier.verify(try encode(signed), trust: trust, now: now)
        #expect(result.devices.map(\.udid) == [chips[0].udid, chips[2].udid])
        #expect(result.problems.map(\.index) == [2])
        #expect(result.problems.first?.error.code == .manifestSignatureInvalid)
    }

    @Test func anotherSignerIsRefused() async throws {
        let impostor = try SimulatedVendor.create(
            at: FileManager.default.temporaryDirectory.appendingPathComponent("impostor-\(UUID().uuidString)"), name: "Test Silicon")
        let result = try await ManifestVerifier.verify(try impostor.manifest(chips, lot: nil), trust: trust, now: now)
        #expect(result.devices.isEmpty)
        #expect(result.problems.count == 3)
        #expect(result.problems.allSatisfy { $0.error.code == .manifestSignatureInvalid })
    }

    @Test func aStrippedOrUnsignedEntryIsRefused() async throws {
        var signed = try entries(try vendor.manifest(chips, lot: nil))
        signed[0].signature = ""
        signed[1].protected = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8))
        signed[1].signature = ""
        let result = try await ManifestVerifier.verify(try encode(signed), trust: trust, now: now)
        #expect(result.problems.map(\.index) == [1, 2])
        #expect(result.problems.allSatisfy { $0.error.code == .manifestSignatureInvalid })
        #expect(result.problems[1].error.reason.contains("not signed ES256"))
    }

    @Test func anAlteredUnsignedHeaderIsRefused() async throws {
        var signed = try entries(try vendor.manifest(chips, lot: nil))
        signed[0].header?.uniqueId = "SE-999"
        let result = try await ManifestVerifier.verify(try encode(signed), trust: trust, now: now)
        #expect(result.problems.map(\.index) == [1])
        #expect(result.problems.first?.error.code == .manifestInvalid)
    }

    @Test func anAttestationChainFromAFakeRootWithTheSameNameIsRefused() async throws {
        let fake = try SimulatedVendor.create(
            at: FileManager.default.temporaryDirectory.appendingPathComponent("fake-\(UUID().uuidString)"), name: "Test Silicon")
        #expect(fake.attestationRoot.subject == vendor.attestationRoot.subject)
        var forged = chips
        forged[0].attestation = try fake.attestationCertificate(udid: chips[0].udid, key: chips[0].key)
        let result = try await ManifestVerifier.verify(try vendor.manifest(forged, lot: nil), trust: trust, now: now)
        #expect(result.problems.map(\.index) == [1])
        #expect(result.problems.first?.error.code == .attestationChainInvalid)
    }

    @Test func anAttestationCertificateForAnotherKeyIsRefused() async throws {
        var mixed = chips
        mixed[0].attestation = chips[1].attestation
        let result = try await ManifestVerifier.verify(try vendor.manifest(mixed, lot: nil), trust: trust, now: now)
        #expect(result.problems.map(\.index) == [1])
        #expect(result.problems.first?.error.code == .attestationChainInvalid)
    }

    @Test func garbageIsAClearRefusal() async throws {
        await #expect(throws: HallmarkError.self) {
            try await ManifestVerifier.verify(Array("not json".utf8), trust: trust, now: now)
        }
    }
}
