import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServer
import HallmarkServices
import HallmarkStore
import Testing
import X509

/// The device agent against a live in-process server over real TLS.
@Suite struct AgentEnrollmentTests {
    @Test func agentEnrolsRenewsAndRetriesIdempotently() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let passphrase = try Passphrase("agent-test-passphrase")
        let files = AuthorityFiles(dataDirectory: data)
        try files.initialise(organization: "Agent Test", passphrase: passphrase, now: Date())
        let device = try DeviceState.manufacture(at: directory.appendingPathComponent("device"))
        try device.install(trustRoots: String(contentsOf: files.rootFile, encoding: .utf8))
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        _ = try registry.importAllowlist(
            .init(entries: [AllowlistEntry(udid: device.udid, key: device.publicKey, line: 2)]), source: "test",
            skipInvalid: false, now: Date())

        let server = try HallmarkServer(
            configuration: .init(dataDirectory: data.path, httpsHost: "127.0.0.1", httpsPort: 0, logLevel: "error", mqttHost: "127.0.0.1", mqttPort: 0, revocationPort: 0),
            passphrase: passphrase)
        try await server.withRunning { ports in
            let endpoint = DeviceAgent.Server(host: "127.0.0.1", port: ports.https)
            let agent = DeviceAgent(state: device, server: endpoint)
            guard case .enrolled(let first) = try await agent.boot() else {
                Issue.record("first boot did not enrol")
                return
            }
            guard case .current = try await agent.boot() else {
                Issue.record("second boot should find the certificate current")
                return
            }
            // Many simultaneous first-enrollment requests for the same device: one certificate.
            let serials = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        let certificate = try await DeviceAgent(state: device, server: endpoint).enroll()
                        return certificate.serialHex
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(serials == [first])

            let renewing = DeviceAgent(state: device, server: endpoint, schedule: .init(fraction: 0.05))
            guard case .renewed(let second) = try await renewing.boot(now: Date() + 86400 * 30) else {
                Issue.record("boot past the renewal time did not renew")
                return
            }
            #expect(second != first)
            #expect(try registry.certificate(serial: first)?.status == .superseded)
            #expect(try registry.activeCertificate(device.udid)?.serial == second)
        }
    }
}
