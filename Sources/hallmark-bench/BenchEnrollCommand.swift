import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import X509

/// `hallmark-bench enroll`: simulated devices enrolling concurrently over HTTPS keep-alive against
/// a `hallmark serve` child process, beside two references measured in the same round: the
/// in-process ceiling (CSR parse + verify + issue on all cores), just before the loads and again
/// just after them, and the same load against the registry-free reference (`hallmark-bench
/// registry-free-est`: the same TLS, HTTP, EST and crypto with no registry), just after the server's.
struct BenchEnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll", abstract: "Enrollment throughput and latency vs. the in-process crypto ceiling and a registry-free reference.")

    @Option(help: "Devices that enrol in each round (one CSR each).")
    var devices = 6000
    @Option(help: "Rounds, each the same number of new devices enrolling between two measurements of the ceiling: this machine's speed drifts, so each round's ratio pairs figures taken a few seconds apart.")
    var rounds = 3
    @Option(help: "Concurrent keep-alive HTTPS connections.")
    var concurrency = 32
    @Option(help: "Extra allowlisted devices that never enrol (for the idle-memory figure).")
    var idleDevices = 100_000
    @OptionGroup var binary: HallmarkBinaryOption

    /// One load's figures.
    private struct Measured {
        var load: BenchLoad.Result
        var serverCPU: Double
        var loadCPU: Double
        /// Bytes written to storage, from the load's start until the server is idle again.
        var storageWrites: Double

        private var enrolled: Double { Double(max(load.succeeded, 1)) }
        /// The server's CPU time per successful enrollment, in µs.
        var serverMicroseconds: Double { serverCPU / enrolled * 1e6 }
        /// The load generator's CPU time per successful enrollment, in µs.
        var loadMicroseconds: Double { loadCPU / enrolled * 1e6 }
    }

    /// One round's figures.
    private struct Round {
        var ceilingBefore: Double
        var ceilingAfter: Double
        /// The mean of the measurements on either side of the loads.
        var ceiling: Double { (ceilingBefore + ceilingAfter) / 2 }
        var server: Measured
        var registryFree: Measured
        var ratio: Double { server.load.throughput / ceiling }
        var registryFreeRatio: Double { registryFree.load.throughput / ceiling }
    }

    func run() async throws {
        guard rounds >= 1, devices >= 1 else { throw ValidationError("--rounds and --devices must be at least 1.") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("hallmark-bench enroll: \(rounds) rounds of \(devices) devices, \(concurrency) connections, \(idleDevices) idle allowlisted, \(cores) cores")

        let authority = try AuthorityFiles(dataDirectory: data).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let fleet = try await BenchFleet.make(count: devices * rounds, prefix: "B")
        let idle = try await BenchFleet.makeKeys(count: idleDevices, prefix: "IDLE")
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        _ = try registry.importAllowlist(
            .init(entries: fleet.map(\.entry) + idle), source: "bench", skipInvalid: false, now: Date())
        registry.checkpoint()

        let server = try BenchServer.start(hallmark: binary.executable(), dataDirectory: data, passphrase: passphraseText)
        defer { server.stop() }
        let registryFree = try BenchServer.startRegistryFree(dataDirectory: data, passphrase: passphraseText)
        defer { registryFree.stop() }
        try await Task.sleep(for: .seconds(1))
        print(String(format: "server resident memory, idle with %d allowlisted devices: %.0f MB (target < 200 MB)",
                     fleet.count + idleDevices, server.residentMegabytes()))

        var results: [Round] = []
        try await server.settle()
        for index in 0..<rounds {
            let devices = Array(fleet[(index * self.devices)..<((index + 1) * self.devices)])
            // The ceiling while the servers are idle, the load on each, the ceiling again: figures
            // seconds apart, and a drift of the machine's speed during the round is split evenly.
            let ceilingBefore = try await measureCeiling(fleet: devices, authority: authority, cores: cores)
            let measured = try await drive(server, with: devices, trust: authority.root)
            let reference = try await drive(registryFree, with: devices, trust: authority.root)
            let ceilingAfter = try await measureCeiling(fleet: devices, authority: authority, cores: cores)
            let round = Round(ceilingBefore: ceilingBefore, ceilingAfter: ceilingAfter, server: measured, registryFree: reference)
            results.append(round)
            print(String(format: "round %d: ceiling %.0f ops/s (%.0f µs per operation per core; %.0f before the loads, %.0f after)",
                         index + 1, round.ceiling, Double(cores) / round.ceiling * 1e6, ceilingBefore, ceilingAfter))
            print("  hallmark serve:       " + describe(measured, cores: cores) + String(format: "; ratio %.2f", round.ratio))
            print("  without the registry: " + describe(reference, cores: cores) + String(format: "; ratio %.2f", round.registryFreeRatio))
            print("  " + budget(round, cores: cores))
        }
        let peakRSS = server.peakResidentMegabytes()
        let issued = try registry.thingCount()
        let succeeded = results.map(\.server.load.succeeded).reduce(0, +)
        let failed = results.map(\.server.load.failed).reduce(0, +) + results.map(\.registryFree.load.failed).reduce(0, +)
        let ratios = results.map(\.ratio).sorted()
        let registryFreeRatios = results.map(\.registryFreeRatio).sorted()

        print(String(format: "end-to-end: %.0f enrollments/s, median of %d rounds (%d ok, %d failed)",
                     median(results.map(\.server.load.throughput)), rounds, succeeded, failed))
        print(String(format: "ceiling (in-process CSR parse + verify + issue, %d cores): %.0f ops/s, median", cores, median(results.map(\.ceiling))))
        print(String(format: "ratio end-to-end / ceiling: %.2f, median of the rounds' ratios (%.2f–%.2f) (target >= 0.50)",
                     median(ratios), ratios.first ?? 0, ratios.last ?? 0))
        print(String(format: "ratio without the registry / ceiling: %.2f, median (%.2f–%.2f) (the bound TLS, HTTP and EST set on this machine)",
                     median(registryFreeRatios), registryFreeRatios.first ?? 0, registryFreeRatios.last ?? 0))
        print(String(format: "server resident memory, peak during the rounds: %.0f MB", peakRSS))
        print("registry: \(issued) things created for \(succeeded) successful enrollments")
        if failed > 0 || issued != fleet.count { throw ExitCode.failure }
    }

    /// Drives `target` with the devices' enrollments and waits until it is idle again.
    private func drive(_ target: BenchServer, with devices: [BenchDevice], trust: Certificate) async throws -> Measured {
        let cpuBefore = target.cpuSeconds()
        let loadCPUBefore = ProcessCPU.seconds(pid: getpid())
        let writesBefore = target.storageWrites()
        let load = try await BenchLoad.run(fleet: devices, port: target.port, trust: [trust], concurrency: concurrency)
        let serverCPU = target.cpuSeconds() - cpuBefore
        let loadCPU = ProcessCPU.seconds(pid: getpid()) - loadCPUBefore
        try await target.settle()
        return Measured(load: load, serverCPU: serverCPU, loadCPU: loadCPU, storageWrites: target.storageWrites() - writesBefore)
    }

    /// What a ratio of 0.50 leaves the server in this round: at half the ceiling, all the cores
    /// together have twice the ceiling's time per operation for each enrollment; the load generator
    /// takes its share, and the server's crypto is the ceiling's own work.
    private func budget(_ round: Round, cores: Int) -> String {
        let crypto = Double(cores) / round.ceiling * 1e6
        let loadGenerator = round.server.loadMicroseconds
        return String(
            format: "at a ratio of 0.50 the %d cores give %.0f µs per enrollment in all: the load generator takes %.0f, the crypto %.0f, leaving %.0f for TLS, HTTP, EST and the registry (spent: %.0f without the registry, %.0f with it)",
            cores, 2 * crypto, loadGenerator, crypto, crypto - loadGenerator, round.registryFree.serverMicroseconds - crypto,
            round.server.serverMicroseconds - crypto)
    }

    private func describe(_ measured: Measured, cores: Int) -> String {
        let load = measured.load
        return String(
            format: "%.0f/s (%d ok, %d failed), p50 %.1f ms, p99 %.1f ms; CPU per enrollment: server %.0f µs (%.0f%% of %d cores used), load generator %.0f µs; storage writes %.1f KB per enrollment",
            load.throughput, load.succeeded, load.failed, load.p50 * 1000, load.p99 * 1000, measured.serverMicroseconds,
            measured.serverCPU / load.seconds / Double(cores) * 100, cores, measured.loadMicroseconds,
            measured.storageWrites / Double(max(load.succeeded, 1)) / 1024)
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
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
