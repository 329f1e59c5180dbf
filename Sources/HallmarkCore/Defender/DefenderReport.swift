import Foundation

/// A Device Defender metrics report, as AWS IoT specifies it: long or short key names, in JSON
/// or CBOR, validated as AWS validates it (a header with an increasing report id and version
/// `1.0`, at least one of `metrics` and `custom_metrics`, ports and counts in range, remote
/// addresses `ip:port`). Unknown keys are refused rather than ignored.
public struct DefenderReport: Sendable, Equatable {
    public struct PortList: Sendable, Equatable {
        public var ports: [Int]
        public var total: Int
    }

    public struct ConnectionList: Sendable, Equatable {
        /// The remote addresses, `ip:port` as reported.
        public var remoteAddresses: [String]
        public var total: Int
    }

    public struct NetworkStats: Sendable, Equatable {
        public var bytesIn: Int64?
        public var bytesOut: Int64?
        public var packetsIn: Int64?
        public var packetsOut: Int64?
    }

    public enum CustomMetric: Sendable, Equatable {
        case number(Double)
        case numberList([Double])
        case stringList([String])
        case ipList([String])
    }

    /// The report id: AWS's devices use the time in seconds; it must increase per thing.
    public var reportID: Int64
    public var version: String
    public var listeningTCPPorts: PortList?
    public var listeningUDPPorts: PortList?
    public var establishedConnections: ConnectionList?
    public var networkStats: NetworkStats?
    public var customMetrics: [String: CustomMetric]

    /// The largest report taken, in bytes of its encoding.
    public static let maximumSize = 64 * 1024

    /// Decodes a report's payload in the topic's format (`json` or `cbor`; a COSE_Sign1's
    /// payload is CBOR).
    public static func decode(_ payload: [UInt8], format: DefenderTopic.Format) throws(HallmarkError) -> DefenderReport {
        guard payload.count <= maximumSize else {
            throw HallmarkError(
                .bodyTooLarge, "The report is \(payload.count) bytes; at most \(maximumSize) are taken.",
                remedy: "Report fewer connections or custom metrics per report.")
        }
        switch format {
        case .json:
            guard let object = try? JSONSerialization.jsonObject(with: Data(payload)), let item = CBOR(jsonObject: object) else {
                throw invalid("the payload is not a JSON object")
            }
            return try DefenderReport(item)
        case .cbor, .cose:
            let item: CBOR
            do { item = try CBOR(decoding: payload) } catch { throw invalid("the payload is not one CBOR item") }
            return try DefenderReport(item)
        }
    }

    /// Reads a report from its decoded form (JSON converted to CBOR's data model).
    public init(_ item: CBOR) throws(HallmarkError) {
        var top = try Fields(item, "the report")
        var header = try Fields(try top.required("header", "hed"), "header")
        guard let rid = try header.required("report_id", "rid").integer, rid > 0 else {
            throw Self.invalid("header.report_id must be a positive integer")
        }
        guard let version = try header.required("version", "v").text, version == "1.0" else {
            throw Self.invalid("header.version must be \"1.0\"")
        }
        try header.finish()
        reportID = rid
        self.version = version
        let metrics = try top.optional("metrics", "met")
        let custom = try top.optional("custom_metrics", "cmet")
        try top.finish()
        guard metrics != nil || custom != nil else { throw Self.invalid("a report needs metrics or custom_metrics") }
        customMetrics = [:]
        if let metrics {
            var fields = try Fields(metrics, "metrics")
            if let item = try fields.optional("listening_tcp_ports", "tp") { listeningTCPPorts = try Self.ports(item, "listening_tcp_ports") }
            if let item = try fields.optional("listening_udp_ports", "up") { listeningUDPPorts = try Self.ports(item, "listening_udp_ports") }
            if let item = try fields.optional("tcp_connections", "tc") { establishedConnections = try Self.connections(item) }
            if let item = try fields.optional("network_stats", "ns") { networkStats = try Self.networkStats(item) }
            try fields.finish()
        }
        if let custom {
            guard case .map(let pairs) = custom else { throw Self.invalid("custom_metrics must be a map") }
            for pair in pairs {
                guard let name = pair.key.text, SecurityProfile.isValidMetricName(name), !name.hasPrefix("aws:") else {
                    throw Self.invalid("a custom metric's name must match [a-zA-Z0-9:_-]{1,128}")
                }
                guard customMetrics[name] == nil else { throw Self.invalid("custom metric \(name) appears twice") }
                customMetrics[name] = try Self.customMetric(pair.value, name)
            }
        }
    }

    @Sendable static func invalid(_ what: String) -> HallmarkError {
        HallmarkError(
            .reportInvalid, "The metrics report is malformed: \(what).",
            remedy: "Send a Device Defender report as AWS IoT specifies it (long or short key names, header.report_id and header.version \"1.0\").")
    }

    private static func ports(_ item: CBOR, _ name: String) throws(HallmarkError) -> PortList {
        var fields = try Fields(item, name)
        var ports: [Int] = []
        if let list = try fields.optional("ports", "pts") {
            guard case .array(let entries) = list else { throw invalid("\(name).ports must be a list") }
            for entry in entries {
                var port = try Fields(entry, "\(name).ports[]")
                guard let number = try port.required("port", "pt").integer, (1...65535).contains(number) else {
                    throw invalid("\(name).ports[].port must be 1…65535")
                }
                if let interface = try port.optional("interface", "if"), interface.text == nil { throw invalid("\(name).ports[].interface must be text") }
                try port.finish()
                ports.append(Int(number))
            }
        }
        let total = try Self.total(&fields, name, counted: ports.count)
        try fields.finish()
        return PortList(ports: ports, total: total)
    }

    private static func connections(_ item: CBOR) throws(HallmarkError) -> ConnectionList {
        var outer = try Fields(item, "tcp_connections")
        guard let established = try outer.optional("established_connections", "ec") else {
            try outer.finish()
            return ConnectionList(remoteAddresses: [], total: 0)
        }
        try outer.finish()
        var fields = try Fields(established, "established_connections")
        var addresses: [String] = []
        if let list = try fields.optional("connections", "cs") {
            guard case .array(let entries) = list else { throw invalid("established_connections.connections must be a list") }
            for entry in entries {
                var connection = try Fields(entry, "connections[]")
                guard let remote = try connection.required("remote_addr", "rad").text, NetworkAddress.isHostPort(remote) else {
                    throw invalid("connections[].remote_addr must be \"ip:port\"")
                }
                if let port = try connection.optional("local_port", "lp"), !(port.integer.map { (0...65535).contains($0) } ?? false) {
                    throw invalid("connections[].local_port must be 0…65535")
                }
                if let interface = try connection.optional("local_interface", "li"), interface.text == nil {
                    throw invalid("connections[].local_interface must be text")
                }
                try connection.finish()
                addresses.append(remote)
            }
        }
        let total = try Self.total(&fields, "established_connections", counted: addresses.count)
        try fields.finish()
        return ConnectionList(remoteAddresses: addresses, total: total)
    }

    /// A list's `total`/`t`, a non-negative integer; the list's own length when it is left out.
    private static func total(_ fields: inout Fields, _ name: String, counted: Int) throws(HallmarkError) -> Int {
        guard let item = try fields.optional("total", "t") else { return counted }
        guard let value = item.integer, value >= 0 else { throw invalid("\(name).total must be a non-negative integer") }
        return Int(value)
    }

    private static func networkStats(_ item: CBOR) throws(HallmarkError) -> NetworkStats {
        var fields = try Fields(item, "network_stats")
        func count(_ long: String, _ short: String) throws(HallmarkError) -> Int64? {
            guard let value = try fields.optional(long, short) else { return nil }
            guard let count = value.integer, count >= 0 else { throw invalid("network_stats.\(long) must be a non-negative integer") }
            return count
        }
        let stats = NetworkStats(
            bytesIn: try count("bytes_in", "bi"), bytesOut: try count("bytes_out", "bo"),
            packetsIn: try count("packets_in", "pi"), packetsOut: try count("packets_out", "po"))
        try fields.finish()
        return stats
    }

    private static func customMetric(_ item: CBOR, _ name: String) throws(HallmarkError) -> CustomMetric {
        guard case .array(let values) = item, values.count == 1, case .map(let pairs) = values[0], pairs.count == 1,
            let kind = pairs[0].key.text
        else { throw invalid("custom metric \(name) must be a one-element list of {type: value}") }
        let value = pairs[0].value
        switch kind {
        case "number":
            guard let number = value.number else { throw invalid("custom metric \(name) must be a number") }
            return .number(number)
        case "number_list":
            guard case .array(let items) = value else { throw invalid("custom metric \(name) must be a list of numbers") }
            var numbers: [Double] = []
            for item in items {
                guard let number = item.number else { throw invalid("custom metric \(name) must be a list of numbers") }
                numbers.append(number)
            }
            return .numberList(numbers)
        case "string_list", "ip_list":
            guard case .array(let items) = value else { throw invalid("custom metric \(name) must be a list of strings") }
            var strings: [String] = []
            for item in items {
                guard let text = item.text, text.utf8.count <= 1024 else { throw invalid("custom metric \(name) must be a list of strings") }
                if kind == "ip_list", !NetworkAddress.isIP(text) { throw invalid("custom metric \(name) holds \(text.prefix(64)), which is no IP address") }
                strings.append(text)
            }
            return kind == "ip_list" ? .ipList(strings) : .stringList(strings)
        default:
            throw invalid("custom metric \(name) has type \(kind.prefix(40)); use number, number_list, string_list or ip_list")
        }
    }

    /// The report's datapoints by AWS metric id (`aws:…`) or custom metric name.
    public var datapoints: [String: MetricValue] {
        var out: [String: MetricValue] = [:]
        if let stats = networkStats {
            if let value = stats.bytesIn { out["aws:all-bytes-in"] = .number(Double(value)) }
            if let value = stats.bytesOut { out["aws:all-bytes-out"] = .number(Double(value)) }
            if let value = stats.packetsIn { out["aws:all-packets-in"] = .number(Double(value)) }
            if let value = stats.packetsOut { out["aws:all-packets-out"] = .number(Double(value)) }
        }
        if let tcp = listeningTCPPorts {
            out["aws:num-listening-tcp-ports"] = .number(Double(tcp.total))
            out["aws:listening-tcp-ports"] = .ports(tcp.ports)
        }
        if let udp = listeningUDPPorts {
            out["aws:num-listening-udp-ports"] = .number(Double(udp.total))
            out["aws:listening-udp-ports"] = .ports(udp.ports)
        }
        if let connections = establishedConnections {
            out["aws:num-established-tcp-connections"] = .number(Double(connections.total))
            out["aws:destination-ip-addresses"] = .addresses(connections.remoteAddresses.compactMap(NetworkAddress.host(ofHostPort:)))
        }
        for (name, metric) in customMetrics {
            out[name] = switch metric {
            case .number(let value): .number(value)
            case .numberList(let values): .numbers(values)
            case .stringList(let values): .strings(values)
            case .ipList(let values): .addresses(values)
            }
        }
        return out
    }
}

/// A metric's value at one datapoint.
public enum MetricValue: Sendable, Equatable {
    case number(Double)
    case numbers([Double])
    case strings([String])
    case ports([Int])
    case addresses([String])

    public var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The value as JSON text, for records and alarms.
    public var jsonText: String {
        switch self {
        case .number(let value): JSONText.number(value)
        case .numbers(let values): "[" + values.map(JSONText.number).joined(separator: ",") + "]"
        case .strings(let values), .addresses(let values): "[" + values.map(JSONText.quoted).joined(separator: ",") + "]"
        case .ports(let values): "[" + values.map(String.init).joined(separator: ",") + "]"
        }
    }
}

/// The entries of a map read once each by long or short name; what is left over is refused.
struct Fields {
    private var pairs: [String: CBOR] = [:]
    private let context: String
    private let invalid: @Sendable (String) -> HallmarkError

    init(_ item: CBOR, _ context: String, invalid: @escaping @Sendable (String) -> HallmarkError = DefenderReport.invalid) throws(HallmarkError) {
        self.context = context
        self.invalid = invalid
        guard case .map(let entries) = item else { throw invalid("\(context) must be a map") }
        for entry in entries {
            guard let key = entry.key.text else { throw invalid("\(context) has a key that is not text") }
            guard pairs.updateValue(entry.value, forKey: key) == nil else { throw invalid("\(context).\(key) appears twice") }
        }
    }

    mutating func optional(_ long: String, _ short: String) throws(HallmarkError) -> CBOR? {
        let a = pairs.removeValue(forKey: long)
        let b = pairs.removeValue(forKey: short)
        if a != nil && b != nil { throw invalid("\(context) has both \(long) and \(short)") }
        return a ?? b
    }

    mutating func required(_ long: String, _ short: String) throws(HallmarkError) -> CBOR {
        guard let value = try optional(long, short) else { throw invalid("\(context).\(long) is missing") }
        return value
    }

    func finish() throws(HallmarkError) {
        if let extra = pairs.keys.sorted().first { throw invalid("\(context) has an unknown key \(extra.prefix(40))") }
    }
}

extension CBOR {
    /// The value of an integer item, in range of Int64.
    public var integer: Int64? {
        switch self {
        case .unsigned(let value): value <= UInt64(Int64.max) ? Int64(value) : nil
        case .negative(let value): value < UInt64(Int64.max) ? -1 - Int64(value) : nil
        default: nil
        }
    }

    /// The value of a number item (integer or float), finite.
    public var number: Double? {
        switch self {
        case .double(let value): value.isFinite ? value : nil
        default: integer.map(Double.init)
        }
    }
}
