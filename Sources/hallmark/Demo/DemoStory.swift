import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServer
import HallmarkServices
import HallmarkStore
import Logging
import X509

/// The scenes of `hallmark demo`, in order.
struct DemoStory {
    let directory: URL
    let deviceCount: Int
    let report: DemoReport
    let quiet: Logger = {
        var logger = Logger(label: "hallmark.demo.device")
        logger.logLevel = .warning
        return logger
    }()

    func tell() async throws {
        let dataDirectory = directory.appendingPathComponent("data")
        let passphrase = try Passphrase(UUID().uuidString)

        report.scene("1. The OEM sets up its certificate authority")
        let files = AuthorityFiles(dataDirectory: dataDirectory)
        let authority = try files.initialise(organization: "Acme Sensors", passphrase: passphrase, now: Date())
        report.say("root CA: \(authority.root.subject) (P-384); issuing CA: \(authority.certificate.subject) (P-256)")
        report.say("keys sealed with scrypt + AES-GCM under the passphrase in \(files.directory.path)")

        report.scene("2. A low-cost factory makes \(deviceCount) devices; the chip vendor lists UDID + root-of-trust key")
        let trustPEM = try String(contentsOf: files.rootFile, encoding: .utf8)
        var fleet: [DeviceState] = []
        var csv = "udid,public_key,firmware_key\n"
        for index in 0...deviceCount {  // one extra device is kept back for the tampered-CSR scene
            let state = try DeviceState.manufacture(at: directory.appendingPathComponent("devices/\(index)"))
            try state.install(trustRoots: trustPEM)
            fleet.append(state)
            csv += "\(state.udid),\(Data(state.publicKey.spkiDER).base64EncodedString()),\(Data(try DeviceFirmware(state: state).firmwareKeySPKI()).base64EncodedString())\n"
        }
        let allowlistFile = directory.appendingPathComponent("allowlist.csv")
        try Data(csv.utf8).write(to: allowlistFile)
        report.say("allowlist exported: \(allowlistFile.lastPathComponent), \(fleet.count) rows; no private key left any device")

        report.scene("3. The OEM imports the allowlist")
        let registry = try Registry(path: dataDirectory.appendingPathComponent("registry.sqlite").path)
        let parsed = AllowlistParser().parse(Array(csv.utf8), format: .csv)
        let imported = try registry.importAllowlist(parsed, source: "allowlist.csv", skipInvalid: false, now: Date())
        report.expect(imported.imported == fleet.count, "\(imported.imported) devices on the allowlist")

        let server = try HallmarkServer(
            configuration: ServerConfiguration(dataDirectory: dataDirectory.path, httpsHost: "127.0.0.1", httpsPort: 0, logLevel: "error",
                                               mqttHost: "127.0.0.1", mqttPort: 0, revocationPort: 0),
            passphrase: passphrase)
        try await server.withRunning { ports in
            let port = ports.https
            report.say("hallmark serve is listening on https://127.0.0.1:\(port) (EST)")
            let endpoint = DeviceAgent.Server(host: "127.0.0.1", port: port)
            let genuine = Array(fleet.prefix(deviceCount))
            let reserved = fleet[deviceCount]
            try await enrolFleet(genuine, endpoint: endpoint, registry: registry)
            try await retryScene(genuine[0], endpoint: endpoint)
            try await renewalScene(genuine[1], endpoint: endpoint)
            try await attackScenes(genuine: genuine, reserved: reserved, endpoint: endpoint, registry: registry)
            try await brokerScenes(genuine, mqttPort: ports.mqtt, registry: registry, trust: authority.root)
            try await genuineScenes(
                httpsPort: port, mqttPort: ports.mqtt, registry: registry, trustPEM: trustPEM,
                createTenant: { id, name in
                    _ = try files.createTenant(id: id, name: name, in: registry, passphrase: passphrase, now: Date())
                })
            try await revocationScenes(
                genuine, endpoint: endpoint, mqttPort: ports.mqtt, revocationPort: ports.revocation, registry: registry,
                issuer: authority.certificate, root: authority.root)
            try await firmwareScenes(genuine, httpsPort: port, mqttPort: ports.mqtt, registry: registry, passphrase: passphrase)
            try await provisioningScene(mqttPort: ports.mqtt, registry: registry, authority: authority, trustPEM: trustPEM)
            try await defenderScene(
                failedOver: genuine[15], endpoint: endpoint, mqttPort: ports.mqtt, registry: registry, files: files, trustPEM: trustPEM)
            // The log signs the latest events a second after them.
            try await Task.sleep(for: .milliseconds(1500))
        }
        try logScene(dataDirectory: dataDirectory)
    }

    private func enrolFleet(_ devices: [DeviceState], endpoint: DeviceAgent.Server, registry: Registry) async throws {
        report.scene("4. First boot: each device sends a CSR signed by its root-of-trust key (zero touch)")
        let start = Date()
        let failures = await withTaskGroup(of: String?.self) { group in
            for device in devices {
                group.addTask {
                    do {
                        guard case .enrolled = try await DeviceAgent(state: device, server: endpoint, logger: quiet).boot() else {
                            return "\(device.udid) was already enrolled"
                        }
                        return nil
                    } catch {
                        return "\(device.udid): \(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
        }
        for failure in failures.prefix(3) { report.say("failed: \(failure)") }
        let enrolled = devices.count - failures.count
        report.say("\(enrolled) devices enrolled concurrently in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        report.expect(enrolled == devices.count, "every genuine device got its certificate")
        report.expect(try registry.thingCount() == devices.count, "\(devices.count) things created, each with the product's policy")
        if let first = try devices[0].certificate() {
            report.say("device \(devices[0].udid): certificate \(first.subject), serial \(first.serialHex)")
        }
    }

    private func retryScene(_ device: DeviceState, endpoint: DeviceAgent.Server) async throws {
        report.scene("5. A response is lost: the device asks again")
        let original = try device.certificate()
        try FileManager.default.removeItem(at: device.directory.appendingPathComponent("certificate.pem"))
        let again = try await DeviceAgent(state: device, server: endpoint, logger: quiet).enroll()
        report.expect(
            original?.serialNumber == again.serialNumber,
            "the retry got the same certificate (serial \(again.serialHex)); nothing new was issued")
    }

    private func renewalScene(_ device: DeviceState, endpoint: DeviceAgent.Server) async throws {
        report.scene("6. Renewal: the device re-enrols over mutual TLS with its current certificate")
        guard let current = try device.certificate() else { return report.fail("device has no certificate to renew") }
        let renewed = try await DeviceAgent(state: device, server: endpoint, logger: quiet).renew(using: current)
        report.expect(renewed.serialNumber != current.serialNumber, "simplereenroll issued a new certificate (serial \(renewed.serialHex))")
        report.say("the old certificate is now 'superseded'")
    }

    private func attackScenes(
        genuine: [DeviceState], reserved: DeviceState, endpoint: DeviceAgent.Server, registry: Registry
    ) async throws {
        report.scene("7. Attacks")
        let counterfeit = try DeviceState.manufacture(at: directory.appendingPathComponent("counterfeit"))
        try counterfeit.install(trustRoots: try String(contentsOf: reserved.directory.appendingPathComponent("trust.pem"), encoding: .utf8))
        try await expectRefusal(
            "a counterfeit device (UDID on no allowlist)", code: .unknownDevice, udid: counterfeit.udid,
            registry: registry
        ) {
            _ = try await DeviceAgent(state: counterfeit, server: endpoint, logger: quiet).enroll()
        }
        let foreignKey = Certificate.PrivateKey(P256Key.make())
        try await expectRefusal(
            "a device whose CSR carries a key that is not its root-of-trust key", code: .keyMismatch,
            udid: reserved.udid, registry: registry
        ) {
            try await enrol(reserved, csr: try reserved.makeCSR(key: foreignKey), endpoint: endpoint)
        }
        let victim = genuine[2]
        try await expectRefusal(
            "a clone replaying enrolled device \(victim.udid)'s UDID with a new key (the device is quarantined)", code: .cloneSuspected,
            udid: victim.udid, registry: registry
        ) {
            try await enrol(victim, csr: try victim.makeCSR(key: Certificate.PrivateKey(P256Key.make())), endpoint: endpoint)
        }
    }

    private func enrol(_ device: DeviceState, csr: CertificateSigningRequest, endpoint: DeviceAgent.Server) async throws {
        let tls = try HTTPSConnection.ClientTLS(trustRoots: device.trustRoots())
        _ = try await HTTPSConnection.with(host: endpoint.host, port: endpoint.port, tls: tls) { connection in
            try await ESTClient(connection: connection).enroll(csr)
        }
    }

    func expectRefusal(
        _ attack: String, code: HallmarkError.Code, udid: UDID, registry: Registry, _ attempt: () async throws -> Void
    ) async throws {
        do {
            try await attempt()
            report.fail("\(attack) was NOT refused")
        } catch let refusal as ESTClient.Refusal {
            let logged = try registry.events(udid: udid.rawValue, code: code.rawValue, limit: 5).contains { $0.decision == .refuse }
            report.expect(
                refusal.code == code.rawValue && logged,
                "\(attack): refused with HTTP \(refusal.status) \(refusal.code), event logged")
        }
    }
}
