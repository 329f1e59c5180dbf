import Foundation

/// A `hallmark serve` child process for benchmarks, with its memory read from /proc.
final class BenchServer: @unchecked Sendable {
    let process: Process
    let port: Int

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    static func start(dataDirectory: URL, passphrase: String) throws -> BenchServer {
        let portFile = dataDirectory.appendingPathComponent("port")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = [
            "serve", "--data-dir", dataDirectory.path, "--https-host", "127.0.0.1", "--https-port", "0", "--mqtt-host", "127.0.0.1", "--mqtt-port", "0",
            "--port-file", portFile.path, "--log-level", "error",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["HALLMARK_PASSPHRASE"] = passphrase
        process.environment = environment
        try process.run()
        for _ in 0..<200 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return BenchServer(process: process, port: port)
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
    func cpuSeconds() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func status(_ field: String) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field) })
        else { return 0 }
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kilobytes / 1024
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
