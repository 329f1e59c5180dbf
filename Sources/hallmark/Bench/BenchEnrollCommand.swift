import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkStore
import X509

/// `hallmark bench enroll`: simulated devices enrolling concurrently over HTTPS keep-alive against
/// a `hallmark serve` child process, beside the in-process ceiling (CSR parse + verify + issue on
/// all cores) measured in the same run.
struct BenchEnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll", abstract: "Enrollment throughput and latency vs. the in-process crypto ceiling.")

    @Option(help: "Devices that enrol (one CSR each).")
    var devices = 6000
    @Option(help: "Concurrent keep-alive HTTPS connections.")
    var concurrency = 32
    @Option(help: "Extra allowlisted devices that never enrol (for the idle-memory figure).")
    var idleDevices = 100_000

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("hallmark bench enroll: \(devices) devices, \(concurrency) connections, \(idleDevices) idle allowlisted, \(cores) cores")

        let authority = try AuthorityFiles(dataDirectory: data).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let fleet = try await BenchFleet.make(count: devices, prefix: "B")
        let idle = try await BenchFleet.makeKeys(count: idleDevices, prefix: "IDLE")
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        _ = try registry.importAllowlist(
            .init(entries: fleet.map(\.entry) + idle), source: "bench", skipInvalid: false, now: Date())

        let ceiling = try await measureCeiling(fleet: fleet, authority: authority, cores: cores)
        print(String(format: "ceiling (in-process CSR parse + verify + issue, %d cores): %.0f ops/s", cores, ceiling))

        let server = try BenchServer.start(dataDirectory: data, passphrase: passphraseText)
        defer { server.stop() }
        try await Task.sleep(for: .seconds(1))
        let idleRSS = server.residentMegabytes()

        let cpuBefore = server.cpuSeconds()
        let loadCPUBefore = ProcessCPU.seconds(pid: getpid())
        let run = try await BenchLoad.run(
            fleet: fleet, port: server.port, trust: [authority.root], concurrency: concurrency)
        let serverCPU = server.cpuSeconds() - cpuBefore
        let loadCPU = ProcessCPU.seconds(pid: getpid()) - loadCPUBefore
        let peakRSS = server.peakResidentMegabytes()
        let issued = try registry.thingCount()

        print(String(format: "end-to-end: %.0f enrollments/s (%d ok, %d failed) in %.2f s", run.throughput, run.succeeded, run.failed, run.seconds))
        print(String(format: "latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms", run.p50 * 1000, run.p99 * 1000, run.max * 1000))
        print(String(format: "server CPU: %.0f µs per enrollment (ceiling: %.0f µs per operation per core); server used %.0f%% of %d cores",
                     serverCPU / Double(max(run.succeeded, 1)) * 1e6, Double(cores) / ceiling * 1e6,
                     serverCPU / run.seconds / Double(cores) * 100, cores))
        print(String(format: "load generator CPU (the simulated devices, same machine): %.0f µs per enrollment",
                     loadCPU / Double(max(run.succeeded, 1)) * 1e6))
        print(String(format: "ratio end-to-end / ceiling: %.2f (target >= 0.50)", run.throughput / ceiling))
        print(String(format: "server resident memory: idle with %d allowlisted devices %.0f MB (target < 200 MB); peak during run %.0f MB",
                     devices + idleDevices, idleRSS, peakRSS))
        print("registry: \(issued) things created for \(run.succeeded) successful enrollments")
        if run.failed > 0 || issued != devices { throw ExitCode.failure }
    }

    private func measureCeiling(fleet: [BenchDevice], authority: IssuingAuthority, cores: Int) async throws -> Double {
        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for core in 0..<cores {
                group.addTask {
                    for device in fleet[core...].striding(by: cores) {
                        let request = try EnrollmentRequest(der: device.csrDER)
                        let certificate = try authority.issueDeviceCertificate(
                            thingName: request.udid.rawValue, key: request.key, profile: .init(), now: Date())
                        _ = try certificate.derBytes()
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - started
        return Double(fleet.count) / elapsed.seconds
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension ArraySlice {
    func striding(by step: Int) -> [Element] {
        stride(from: startIndex, to: endIndex, by: step).map { self[$0] }
    }
}
