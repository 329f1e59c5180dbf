import Foundation

/// A Mosquitto broker started beside Hallmark's for the MQTT benchmark, with the same CA, a server
/// certificate from it, client certificates required, and an ACL equivalent to Hallmark's default
/// policy (each client only under `things/<its certificate CN>/`, plus one reader). Its queue per
/// client is unbounded (`max_queued_messages 0`): with its default of 1,000 it acknowledges QoS 1
/// messages it then drops when the subscriber falls behind, and the figure would measure loss
/// rather than throughput.
final class MosquittoServer: @unchecked Sendable {
    let process: Process
    let port: Int
    /// A listener without TLS, for the idle sessions' share of TLS.
    let plainPort: Int
    let directory: URL

    static var executable: String? {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(directory: URL, caChainPEM: String, certificatePEM: String, keyPEM: String, reader: String) throws {
        guard let executable = Self.executable else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "mosquitto is not installed (Debian: apt install mosquitto)"])
        }
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        self.directory = directory
        let port = try Self.freePort()
        let plainPort = try Self.freePort()
        func write(_ name: String, _ text: String) throws -> String {
            let url = directory.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return url.path
        }
        let acl = try write("acl", "pattern readwrite things/%u/#\n\nuser \(reader)\ntopic read things/#\n")
        let config = try write("mosquitto.conf", """
            listener \(port) 127.0.0.1
            cafile \(try write("ca.pem", caChainPEM))
            certfile \(try write("server.pem", certificatePEM))
            keyfile \(try write("server.key", keyPEM))
            require_certificate true
            use_identity_as_username true
            listener \(plainPort) 127.0.0.1
            allow_anonymous true
            acl_file \(acl)
            persistence false
            max_queued_messages 0
            log_dest stderr
            log_type error

            """)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", config]
        process.standardOutput = FileHandle.nullDevice
        let logURL = directory.appendingPathComponent("mosquitto.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: logURL)
        try process.run()
        self.port = port
        self.plainPort = plainPort
        // Wait until it accepts connections.
        for _ in 0..<100 {
            if Self.accepts(port: port) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        let log = (try? String(contentsOf: directory.appendingPathComponent("mosquitto.log"), encoding: .utf8)) ?? ""
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "mosquitto did not start: \(log)"])
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: a child spawned from this process inherits its blocked SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    func residentMegabytes() -> Double { ProcessCPU.statusMegabytes(pid: process.processIdentifier, field: "VmRSS:") }

    func cpuSeconds() -> Double { ProcessCPU.seconds(pid: process.processIdentifier) }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// CPU time and memory of a child process, from /proc.
enum ProcessCPU {
    /// A memory line of /proc/PID/status (`VmRSS:`, `VmHWM:`), in MB.
    static func statusMegabytes(pid: Int32, field: String) -> Double {
        number(after: field, in: "status", of: pid) / 1024
    }

    /// CPU time (user + system), in seconds.
    static func seconds(pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Bytes the process has caused to be written to storage (`write_bytes` of /proc/PID/io,
    /// counted when a page is first dirtied).
    static func storageWrites(pid: Int32) -> Double {
        number(after: "write_bytes:", in: "io", of: pid)
    }

    /// The number after `key` on its line of /proc/PID/`file`, or 0.
    private static func number(after key: String, in file: String, of pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) })
        else { return 0 }
        return Double(line.dropFirst(key.count).split(whereSeparator: \.isWhitespace).first ?? "0") ?? 0
    }

    /// Pins every thread of a process to the given CPUs (`taskset -a -p -c`). Returns whether it worked.
    @discardableResult
    static func pin(pid: Int32, cpus: String) -> Bool {
        let taskset = Process()
        taskset.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        taskset.arguments = ["-a", "-p", "-c", cpus, String(pid)]
        taskset.standardOutput = FileHandle.nullDevice
        taskset.standardError = FileHandle.nullDevice
        guard (try? taskset.run()) != nil else { return false }
        taskset.waitUntilExit()
        return taskset.terminationStatus == 0
    }
}
