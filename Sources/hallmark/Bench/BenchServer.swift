import Foundation

/// A `hallmark serve` child process for benchmarks, with its memory read from /proc.
final class BenchServer: @unchecked Sendable {
    let process: Process
    let port: Int
    let mqttPort: Int

    private init(process: Process, port: Int, mqttPort: Int) {
        self.process = process
        self.port = port
        self.mqttPort = mqttPort
    }

    static func start(dataDirectory: URL, passphrase: String) throws -> BenchServer {
        let portFile = dataDirectory.appendingPathComponent("port")
        let mqttPortFile = dataDirectory.appendingPathComponent("mqtt-port")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = [
            "serve", "--data-dir", dataDirectory.path, "--https-host", "127.0.0.1", "--https-port", "0", "--mqtt-host", "127.0.0.1", "--mqtt-port", "0",
            "--port-file", portFile.path, "--mqtt-port-file", mqttPortFile.path, "--log-level", "error",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["HALLMARK_PASSPHRASE"] = passphrase
        process.environment = environment
        try process.run()
        for _ in 0..<200 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let mqttText = try? String(contentsOf: mqttPortFile, encoding: .utf8),
                let mqttPort = Int(mqttText.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return BenchServer(process: process, port: port, mqttPort: mqttPort)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "hallmark serve did not start"])
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
