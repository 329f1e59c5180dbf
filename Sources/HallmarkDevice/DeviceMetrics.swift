import HallmarkCore

import Foundation

/// What the device agent measures of its own network, as Device Defender's metrics: listening
/// TCP and UDP ports, established TCP connections, and bytes and packets in and out since the
/// last report. Read from Linux's `/proc/net` (`tcp`, `tcp6`, `udp`, `udp6`, `dev`); elsewhere
/// every list is empty.
public struct DeviceMetrics: Sendable, Equatable {
    public var listeningTCPPorts: [Int] = []
    public var listeningUDPPorts: [Int] = []
    /// `ip:port` of each established connection's remote end.
    public var establishedConnections: [(remote: String, localPort: Int)] = []
    public var totals = NetworkTotals()
    public var custom: [String: Double] = [:]

    public struct NetworkTotals: Sendable, Equatable {
        public var bytesIn: Int64 = 0
        public var bytesOut: Int64 = 0
        public var packetsIn: Int64 = 0
        public var packetsOut: Int64 = 0
    }

    public init() {}

    public static func == (lhs: DeviceMetrics, rhs: DeviceMetrics) -> Bool {
        lhs.listeningTCPPorts == rhs.listeningTCPPorts && lhs.listeningUDPPorts == rhs.listeningUDPPorts
            && lhs.establishedConnections.map(\.remote) == rhs.establishedConnections.map(\.remote) && lhs.totals == rhs.totals && lhs.custom == rhs.custom
    }

    /// Measures now.
    public static func collect(procNet: URL = URL(fileURLWithPath: "/proc/net")) -> DeviceMetrics {
        var metrics = DeviceMetrics()
        for file in ["tcp", "tcp6"] {
            for socket in sockets(procNet.appendingPathComponent(file)) {
                if socket.state == "0A" { metrics.listeningTCPPorts.append(socket.localPort) }
                if socket.state == "01", let remote = socket.remote { metrics.establishedConnections.append((remote, socket.localPort)) }
            }
        }
        for file in ["udp", "udp6"] {
            for socket in sockets(procNet.appendingPathComponent(file)) where socket.state == "07" && socket.remote == nil {
                metrics.listeningUDPPorts.append(socket.localPort)
            }
        }
        metrics.listeningTCPPorts = Array(Set(metrics.listeningTCPPorts)).sorted()
        metrics.listeningUDPPorts = Array(Set(metrics.listeningUDPPorts)).sorted()
        metrics.totals = interfaces(procNet.appendingPathComponent("dev"))
        return metrics
    }

    struct Socket {
        var localPort: Int
        var remote: String?
        var state: String
    }

    /// `/proc/net/tcp`'s rows: `sl local_address rem_address st …`, addresses as hex `IP:PORT`.
    static func sockets(_ file: URL) -> [Socket] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, let local = address(fields[1]), let remote = address(fields[2]) else { return nil }
            return Socket(localPort: local.port, remote: remote.port == 0 ? nil : remote.text, state: String(fields[3]))
        }
    }

    static func address(_ field: Substring) -> (text: String, port: Int)? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1], radix: 16), let bytes = [UInt8](hexString: String(parts[0])) else { return nil }
        // The kernel writes each 32-bit word in host (little-endian) order.
        var ordered: [UInt8] = []
        for word in stride(from: 0, to: bytes.count, by: 4) { ordered += bytes[word..<min(word + 4, bytes.count)].reversed() }
        if ordered.count == 4 { return (ordered.map(String.init).joined(separator: ".") + ":\(port)", port) }
        if ordered.count == 16 {
            if ordered[0..<10].allSatisfy({ $0 == 0 }) && ordered[10] == 0xff && ordered[11] == 0xff {
                return (ordered[12...].map(String.init).joined(separator: ".") + ":\(port)", port)
            }
            let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(ordered[$0]) << 8 | UInt16(ordered[$0 + 1]), radix: 16) }
            return ("[" + groups.joined(separator: ":") + "]:\(port)", port)
        }
        return nil
    }

    /// `/proc/net/dev`: per interface, received bytes and packets, then transmitted.
    static func interfaces(_ file: URL) -> NetworkTotals {
        var totals = NetworkTotals()
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return totals }
        for line in text.split(separator: "\n").dropFirst(2) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let numbers = line[line.index(after: colon)...].split(separator: " ").compactMap { Int64($0) }
            guard numbers.count >= 10 else { continue }
            totals.bytesIn += numbers[0]
            totals.packetsIn += numbers[1]
            totals.bytesOut += numbers[8]
            totals.packetsOut += numbers[9]
        }
        return totals
    }

    /// The report as Device Defender's CBOR (long key names, as AWS's own collector writes),
    /// network figures as deltas since `previous`.
    public func report(id: Int64, since previous: NetworkTotals?) -> [UInt8] {
        func count(_ value: Int64) -> CBOR { .unsigned(UInt64(max(0, value))) }
        let delta = previous.map {
            NetworkTotals(
                bytesIn: totals.bytesIn - $0.bytesIn, bytesOut: totals.bytesOut - $0.bytesOut, packetsIn: totals.packetsIn - $0.packetsIn,
                packetsOut: totals.packetsOut - $0.packetsOut)
        } ?? NetworkTotals()
        func ports(_ list: [Int]) -> CBOR {
            .map([
                CBORPair(.text("ports"), .array(list.map { .map([CBORPair(.text("port"), .unsigned(UInt64($0)))]) })),
                CBORPair(.text("total"), .unsigned(UInt64(list.count))),
            ])
        }
        let connections = CBOR.array(
            establishedConnections.prefix(256).map {
                .map([CBORPair(.text("remote_addr"), .text($0.remote)), CBORPair(.text("local_port"), .unsigned(UInt64($0.localPort)))])
            })
        var top = [
            CBORPair(.text("header"), .map([CBORPair(.text("report_id"), .unsigned(UInt64(id))), CBORPair(.text("version"), .text("1.0"))])),
            CBORPair(
                .text("metrics"),
                .map([
                    CBORPair(.text("listening_tcp_ports"), ports(listeningTCPPorts)),
                    CBORPair(.text("listening_udp_ports"), ports(listeningUDPPorts)),
                    CBORPair(
                        .text("network_stats"),
                        .map([
                            CBORPair(.text("bytes_in"), count(delta.bytesIn)), CBORPair(.text("bytes_out"), count(delta.bytesOut)),
                            CBORPair(.text("packets_in"), count(delta.packetsIn)), CBORPair(.text("packets_out"), count(delta.packetsOut)),
                        ])),
                    CBORPair(
                        .text("tcp_connections"),
                        .map([
                            CBORPair(
                                .text("established_connections"),
                                .map([CBORPair(.text("connections"), connections), CBORPair(.text("total"), .unsigned(UInt64(establishedConnections.count)))]))
                        ])),
                ])),
        ]
        if !custom.isEmpty {
            top.append(
                CBORPair(
                    .text("custom_metrics"),
                    .map(custom.sorted { $0.key < $1.key }.map { CBORPair(.text($0.key), .array([.map([CBORPair(.text("number"), .double($0.value))])])) })))
        }
        return CBOR.map(top).encoded
    }
}
