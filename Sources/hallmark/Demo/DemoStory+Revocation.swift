import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkStore
import Revocation
import X509

/// The end-of-life scenes: a revocation the world can check with `openssl ocsp`, and a device
/// decommissioned while it is connected.
extension DemoStory {
    func revocationScenes(
        _ devices: [DeviceState], endpoint: DeviceAgent.Server, mqttPort: Int, revocationPort: Int, registry: Registry,
        issuer: Certificate, root: Certificate
    ) async throws {
        guard devices.count >= 10 else { return report.fail("the revocation scenes need at least 10 devices (--devices 10)") }
        report.scene("17. The world learns of a revocation: OCSP and the CRL, within a second")
        let stolen = devices[8]
        guard let certificate = try stolen.certificate() else { return report.fail("no certificate to revoke") }
        let work = directory.appendingPathComponent("revocation", isDirectory: true)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let certificateFile = work.appendingPathComponent("stolen.pem")
        let issuerFile = work.appendingPathComponent("issuing.pem")
        try Data(try certificate.serializeAsPEM().pemString.utf8).write(to: certificateFile)
        let rootFile = work.appendingPathComponent("root.pem")
        try Data(try issuer.serializeAsPEM().pemString.utf8).write(to: issuerFile)
        try Data(try root.serializeAsPEM().pemString.utf8).write(to: rootFile)
        let ask = [
            "ocsp", "-issuer", issuerFile.path, "-cert", certificateFile.path, "-url", "http://127.0.0.1:\(revocationPort)/ocsp",
            "-CAfile", rootFile.path,
        ]
        guard let before = Self.run("/usr/bin/openssl", ask) else {
            return report.fail("openssl is not installed here: this scene asks it")
        }
        report.expect(before.contains("stolen.pem: good") && before.contains("Response verify OK"), "`openssl ocsp` asks Hallmark's responder about device \(stolen.udid): good")
        let revokedAt = Date()
        try await registry.setCertificateStatus(
            certificate.serialHex, to: .revoked, reason: "demo: reported stolen", revocationReason: .keyCompromise, now: Date())
        var answer = ""
        while Date().timeIntervalSince(revokedAt) < 3 {
            answer = Self.run("/usr/bin/openssl", ask) ?? ""
            if answer.contains("stolen.pem: revoked") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let seen = Date().timeIntervalSince(revokedAt)
        report.expect(
            answer.contains("Reason: keyCompromise") && seen < 1,
            "revoked (keyCompromise): `openssl ocsp` says so \(String(format: "%.2f", seen)) s after `hallmark cert revoke --code keyCompromise`")
        let verify = ["verify", "-crl_check", "-crl_download", "-partial_chain", "-CAfile", issuerFile.path, certificateFile.path]
        var crl = ""
        while Date().timeIntervalSince(revokedAt) < 3 {
            crl = Self.run("/usr/bin/openssl", verify) ?? ""
            if crl.contains("certificate revoked") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let listed = Date().timeIntervalSince(revokedAt)
        report.expect(
            crl.contains("certificate revoked") && listed < 1,
            "`openssl verify -crl_check -crl_download` fetches the CRL the certificate names: revoked, \(String(format: "%.2f", listed)) s after")

        report.scene("18. End of life: a device is decommissioned while connected")
        let retired = devices[9]
        let (session, _) = try await TelemetryPublisher(state: retired, host: "localhost", port: mqttPort).connect()
        let decommissionedAt = Date()
        try registry.setDeviceStatus(retired.udid, to: .decommissioned, reason: "demo: end of life", now: Date())
        try await session.closed.get()
        let cut = Date().timeIntervalSince(decommissionedAt)
        report.expect(cut < 1, "`hallmark registry decommission` ended its session after \(String(format: "%.2f", cut)) s; its certificates are revoked (cessationOfOperation)")
        do {
            _ = try await TelemetryPublisher(state: retired, host: "localhost", port: mqttPort).connect()
            report.fail("the decommissioned device reconnected")
        } catch {
            report.expect(true, "MQTT refuses it")
        }
        try FileManager.default.removeItem(at: retired.directory.appendingPathComponent("certificate.pem"))
        try await expectRefusal("the decommissioned device enrolling again", code: .deviceDecommissioned, udid: retired.udid, registry: registry) {
            _ = try await DeviceAgent(state: retired, server: endpoint, logger: quiet).enroll()
        }
    }

    /// Runs a tool and returns what it printed (stdout and stderr), or nil if it is not installed.
    static func run(_ tool: String, _ arguments: [String]) -> String? {
        guard FileManager.default.isExecutableFile(atPath: tool) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }
}
