import ArgumentParser
import Crypto
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import Logging
import TransparencyLog

/// `hallmark-bench log`: the CPU the transparency log adds per enrollment, beside the CPU of the
/// enrollment itself, in one process: devices enrol through `EnrollmentService` over a real
/// registry (CSR checks, signing, the SQLite commit, the event), then the log makes leaves of
/// those events and signs checkpoints as `serve` does (one a second while the tree grows). The
/// enrollment's CPU here leaves out TLS and HTTP, so the share printed is an upper bound of the
/// share in `serve`.
struct BenchLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "The transparency log's CPU per enrollment, beside the enrollment's own.")

    @Option(help: "Devices that enrol.")
    var devices = 5000
    @Option(help: "Enrollments per second the checkpoint rate is reckoned at (serve signs one checkpoint a second while the tree grows).")
    var rate = 2000

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-log-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphrase = try Passphrase("bench-\(UUID().uuidString)")
        let authority = try AuthorityFiles(dataDirectory: directory).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let fleet = try await BenchFleet.make(count: devices, prefix: "LOG")
        let registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        _ = try registry.importAllowlist(.init(entries: fleet.map(\.entry)), source: "bench", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: authority)
        let pid = getpid()

        let enrollStart = ProcessCPU.seconds(pid: pid)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for part in 0..<4 {
                group.addTask {
                    for device in stride(from: part, to: fleet.count, by: 4).map({ fleet[$0] }) {
                        _ = try await service.enroll(csrDER: device.csrDER, source: nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        let enrollCPU = ProcessCPU.seconds(pid: pid) - enrollStart

        let signer = Checkpoint.Signer(name: "bench/log", key: Curve25519.Signing.PrivateKey())
        let log = try TransparencyLogService(store: registry, signer: signer, logger: Logger(label: "bench"))
        let events = try registry.eventCount().count
        let checkpoints = max(1, devices / max(rate, 1))
        let logStart = ProcessCPU.seconds(pid: pid)
        try await log.catchUp(force: true)
        for _ in 1..<checkpoints { try await log.catchUp(force: true) }
        let logCPU = ProcessCPU.seconds(pid: pid) - logStart

        let perEnrollment = enrollCPU / Double(devices) * 1e6
        let logPerEnrollment = logCPU / Double(devices) * 1e6
        print("hallmark-bench log: \(devices) enrollments, \(events) events, \(checkpoints) checkpoints signed")
        print(String(format: "  enrollment (in process, no TLS or HTTP): %.0f µs CPU each", perEnrollment))
        print(String(format: "  transparency log (leaves + checkpoints):  %.1f µs CPU per enrollment", logPerEnrollment))
        print(String(format: "  share: %.1f %% of the enrollment's CPU (target < 5 %%)", logPerEnrollment / perEnrollment * 100))
        guard log.signedSize == events else {
            print("the log signed \(log.signedSize) of \(events) events")
            throw ExitCode.failure
        }
    }
}
