import Foundation

/// A `hallmark serve` (or `hallmark-bench registry-free-est`) child process for benchmarks, with its CPU,
/// memory and storage writes read from /proc.
final class BenchServer: @unchecked Sendable {
    let process: Process
    let port: Int
    let mqttPort: Int
    /// The MQTT listener without TLS (0 if none).
    var plainPort = 0
    /// The revocation listener (CRLs, OCSP; 0 for the registry-free reference).
    var revocationPort = 0

    private init(process: Process, port: Int, mqttPort: Int) {
        self.process = process
        self.port = port
        self.mqttPort = mqttPort
    }

    /// Starts `hallmark serve` on the data directory, HTTPS and MQTT on free ports of 127.0.0.1
    /// (and a plain MQTT listener, with the default open policy, on `plainPort` if given).
    static func start(
        hallmark: URL, dataDirectory: URL, passphrase: String, plainPort: Int? = nil, extraArguments: [String] = []
    ) throws -> BenchServer {
        let portFile = dataDirectory.appendingPathComponent("port")
        let mqttPortFile = dataDirectory.appendingPathComponent("mqtt-port")
        let revocationPortFile = dataDirectory.appendingPathComponent("revocation-port")
        let (process, ports) = try launch(
            hallmark,
            [
                "serve", "--data-dir", dataDirectory.path, "--https-host", "127.0.0.1", "--https-port", "0", "--mqtt-host", "127.0.0.1",
                "--mqtt-port", "0", "--port-file", portFile.path, "--mqtt-port-file", mqttPortFile.path, "--log-level", "error",
                "--revocation-port", "0", "--revocation-port-file", revocationPortFile.path,
                // The load comes from one address, many connections at once, as fast as it can;
                // Mosquitto beside it has no such limits either.
                "--max-pending-per-address", "0", "--mqtt-max-publish-rate", "0",
            ] + (plainPort.map { ["--mqtt-plain-port", String($0)] } ?? []) + extraArguments,
            passphrase: passphrase, portFiles: [portFile, mqttPortFile, revocationPortFile])
        let server = BenchServer(process: process, port: ports[0], mqttPort: ports[1])
        server.plainPort = plainPort ?? 0
        server.revocationPort = ports[2]
        return server
    }

    /// Starts `hallmark-bench registry-free-est` (HTTPS only; `mqttPort` is 0), signing with the
    /// data directory's CA.
    static func startRegistryFree(dataDirectory: URL, passphrase: String) throws -> BenchServer {
        let portFile = dataDirectory.appendingPathComponent("registry-free-port")
        let (process, ports) = try launch(
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
            ["registry-free-est", "--data-dir", dataDirectory.path, "--port-file", portFile.path],
            passphrase: passphrase, portFiles: [portFile])
        return BenchServer(process: process, port: ports[0], mqttPort: 0)
    }

    /// Runs `executable` with `arguments` and waits until it has written each port file.
    private static func launch(_ executable: URL, _ arguments: [String], passphrase: String, portFiles: [URL]) throws -> (Process, [Int]) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HALLMARK_PASSPHRASE"] = passphrase
        process.environment = environment
        try process.run()
        for _ in 0..<200 {
            let ports = portFiles.compactMap { file in
                (try? String(contentsOf: file, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            if ports.count == portFiles.count { return (process, ports) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "\(executable.lastPathComponent) \(arguments.prefix { !$0.hasPrefix("--") }.joined(separator: " ")) did not start"])
    }

    /// VmRSS, in MB.
    func residentMegabytes() -> Double { status("VmRSS:") }
    /// VmHWM (peak resident), in MB.
    func peakResidentMegabytes() -> Double { status("VmHWM:") }

    /// CPU time (user + system) the server has used, in seconds.
    func cpuSeconds() -> Double { ProcessCPU.seconds(pid: process.processIdentifier) }

    /// Bytes the server has caused to be written to storage.
    func storageWrites() -> Double { ProcessCPU.storageWrites(pid: process.processIdentifier) }

    /// Waits until the server is idle, for at most 10 s: its CPU time (counted in 10 ms ticks) has
    /// not moved in 100 ms, so a checkpoint after the last load has finished.
    func settle() async throws {
        var last = cpuSeconds()
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(100))
            let now = cpuSeconds()
            if now - last < 0.002 { return }
            last = now
        }
    }

    private func status(_ field: String) -> Double { ProcessCPU.statusMegabytes(pid: process.processIdentifier, field: field) }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
