import Crypto
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import NIOConcurrencyHelpers
import X509

/// Genuine devices only: vendor manifests, attestation, counterfeit chips and OEMs, over-production, clones.
extension DemoStory {
    /// - Parameter createTenant: Creates a tenant with its own issuing CA (id, display name).
    func genuineScenes(
        httpsPort: Int, mqttPort: Int, registry: Registry, trustPEM: String,
        createTenant: (String, String) throws -> Void
    ) async throws {
        report.scene("12. A chip vendor ships a signed manifest; OEM Tessera claims its chips")
        try createTenant("tessera", "Tessera Meters")
        let vendor = try SimulatedVendor.create(at: directory.appendingPathComponent("vendor"), name: "Simulated Silicon")
        var chips: [DeviceState] = []
        for index in 0..<4 {
            let chip = try DeviceState.manufacture(at: directory.appendingPathComponent("tessera/\(index)"))
            try chip.install(trustRoots: trustPEM)
            try chip.install(attestation: try vendor.attestationCertificate(udid: chip.udid, key: chip.publicKey))
            chips.append(chip)
        }
        let manifest = try vendor.manifest(
            try chips.map { ($0.udid, $0.publicKey, try $0.attestationCertificate()) }, lot: "LOT-7")
        try registry.registerVendor(
            tenant: "tessera", id: "simsilicon",
            manifestKey: try P256.Signing.PublicKey(pemRepresentation: String(contentsOf: vendor.manifestPublicKeyFile, encoding: .utf8)),
            attestationCertificates: [vendor.attestationRoot], now: Date())
        let importer = ManifestImport(registry: registry)
        let tampered = try await importer.run(
            try Self.alterSecondEntry(manifest), vendor: "simsilicon", tenant: "tessera", claim: .all, skipInvalid: false,
            source: "demo", now: Date())
        report.expect(
            !tampered.committed && tampered.problems.map(\.index) == [2]
                && tampered.problems[0].error.code == .manifestSignatureInvalid,
            "a copy of the manifest with entry 2's key swapped is refused (manifest_signature_invalid); nothing claimed")
        let claimed = try await importer.run(
            manifest, vendor: "simsilicon", tenant: "tessera", claim: .lot("LOT-7"), skipInvalid: false, source: "demo", now: Date())
        report.expect(claimed.committed && claimed.claimed == 4, "the genuine manifest verifies entry by entry; Tessera claims lot LOT-7: \(claimed.claimed) chips")
        let tessera = DeviceAgent.Server(host: "127.0.0.1", port: httpsPort, label: "tessera")
        let operational = try await DeviceAgent(state: chips[0], server: tessera, logger: quiet).enroll()
        let attested = try registry.events(udid: chips[0].udid.rawValue, code: "issued", tenant: "tessera").first
        report.expect(
            attested?.detail.contains("IDevID") == true,
            "chip \(chips[0].udid) enrolled at /.well-known/est/tessera over TLS with its factory IDevID, chained to the vendor's root")
        let tesseraCA = try registry.tenantIssuingCA("tessera")
        report.expect(
            tesseraCA.map { operational.issuer == $0.subject && $0.publicKey.isValidSignature(operational.signature, for: operational) } == true,
            "its operational certificate is signed by Tessera's own issuing CA (\(operational.issuer.commonName ?? "?")), not another OEM's")

        report.scene("13. A counterfeit chip: on no manifest")
        let counterfeit = try DeviceState.manufacture(at: directory.appendingPathComponent("tessera/counterfeit"))
        try counterfeit.install(trustRoots: trustPEM)
        try await expectRefusal("a chip no vendor listed", code: .unknownDevice, udid: counterfeit.udid, registry: registry) {
            _ = try await DeviceAgent(state: counterfeit, server: tessera, logger: quiet).enroll()
        }

        report.scene("14. A counterfeit OEM builds its products with genuine chips")
        try createTenant("knockoff", "Knock-off Gadgets")
        let grey = chips[1]
        let knockoff = DeviceAgent.Server(host: "127.0.0.1", port: httpsPort, label: "knockoff")
        try await expectRefusal(
            "Tessera's chip \(grey.udid) in a Knock-off product", code: .counterfeitOEM, udid: grey.udid, registry: registry
        ) {
            _ = try await DeviceAgent(state: grey, server: knockoff, logger: quiet).enroll()
        }
        let told = try registry.events(udid: grey.udid.rawValue, code: "counterfeit_oem", tenant: "tessera")
        report.expect(
            told.count == 1 && !told[0].detail.contains("knockoff"),
            "Tessera sees that one of its chips tried to join another fleet, without learning whose")

        report.scene("15. Over-production: a batch of 10, and the factory programs 12")
        let batch = try registry.createBatch(tenant: "tessera", product: Registry.defaultProduct, quota: 10, now: Date())
        var run: [DeviceState] = []
        for index in 0..<12 {
            run.append(try DeviceState.manufacture(at: directory.appendingPathComponent("factory/\(index)")))
        }
        let station = ProgrammingStation(
            server: .init(host: "127.0.0.1", port: httpsPort), credential: batch.stationCredential, trustPEM: trustPEM)
        let results = try await station.register(run)
        let refused = results.filter { $0.code != nil }
        report.expect(
            results.count - refused.count == 10 && refused.count == 2 && refused.allSatisfy { $0.code == "quota_exceeded" },
            "the programming station registered 10 devices against batch \(batch.report.id); devices 11 and 12 were refused (quota_exceeded)")
        let alarm = try registry.events(code: "overproduction", tenant: "tessera").first
        let report15 = try registry.batchReport(tenant: "tessera", id: batch.report.id)
        report.expect(
            alarm?.decision == .alarm && report15?.programmed == 10 && report15?.refused == 2,
            "an overproduction alarm was raised; `hallmark batch report`: 10 programmed, 2 refused")

        try await cloneScene(chips[2], tessera: tessera, mqttPort: mqttPort, registry: registry)
    }

    private func cloneScene(_ original: DeviceState, tessera: DeviceAgent.Server, mqttPort: Int, registry: Registry) async throws {
        report.scene("16. A cloned device: its flash, key and certificate copied onto a second board")
        _ = try await DeviceAgent(state: original, server: tessera, logger: quiet).enroll()
        let cloneDirectory = directory.appendingPathComponent("tessera/clone")
        try FileManager.default.copyItem(at: original.directory, to: cloneDirectory)
        let clone = try DeviceState.load(from: cloneDirectory)
        var sessions: [MQTTClient] = []
        // Both boards run the same firmware: each reconnects when the other takes its session over.
        for board in [original, clone, original, clone] {
            let (client, _) = try await TelemetryPublisher(state: board, host: "localhost", port: mqttPort).connect()
            sessions.append(client)
        }
        var status = try registry.device(original.udid)?.status
        for _ in 0..<20 where status != .quarantined {
            try await Task.sleep(for: .milliseconds(100))
            status = try registry.device(original.udid)?.status
        }
        let alarm = try registry.events(udid: original.udid.rawValue, code: "clone_suspected", tenant: "tessera").first
        report.expect(
            status == .quarantined && alarm?.decision == .alarm,
            "clone_suspected: one identity kept taking its own session over; the device is quarantined")
        // The live session (the last board to connect) is ended by the quarantine.
        let closed = NIOLockedValueBox(false)
        sessions.last?.closed.whenComplete { _ in closed.withLockedValue { $0 = true } }
        for _ in 0..<20 where !closed.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(100)) }
        let cut = closed.withLockedValue { $0 }
        do {
            _ = try await TelemetryPublisher(state: clone, host: "localhost", port: mqttPort).connect()
            report.fail("the quarantined identity connected again")
        } catch let refusal as MQTTClient.Refused {
            report.expect(
                cut && refusal.reason == .notAuthorized,
                "its live session was ended (DISCONNECT 0x98) and both boards are refused until an operator releases the device")
        }
        for session in sessions { session.close() }
    }

    /// The manifest with the second entry's key replaced, the vendor's signature left as it was.
    static func alterSecondEntry(_ manifest: [UInt8]) throws -> [UInt8] {
        var entries = try JSONDecoder().decode([SecureElementManifest.SignedEntry].self, from: Data(manifest))
        var claims = try JSONDecoder().decode(SecureElementManifest.Claims.self, from: Data(Base64URL.decode(entries[1].payload) ?? []))
        let forged = P256.Signing.PrivateKey().publicKey.x963Representation
        claims.publicKeySet.keys[0].x = Base64URL.encode(forged[1...32])
        claims.publicKeySet.keys[0].y = Base64URL.encode(forged[33...64])
        entries[1].payload = Base64URL.encode(try JSONEncoder().encode(claims))
        return Array(try JSONEncoder().encode(entries))
    }
}
