/// One behaviour of a security profile: what is normal for a metric. A datapoint that does not
/// meet the criteria violates it; enough violating datapoints in a row raise an alarm, enough
/// normal ones clear it (AWS IoT Device Defender's Rules Detect).
public struct Behavior: Sendable, Equatable {
    public enum Operator: String, Sendable, Equatable {
        case lessThan = "less-than", lessThanEquals = "less-than-equals", greaterThan = "greater-than", greaterThanEquals = "greater-than-equals"
        case inCIDRSet = "in-cidr-set", notInCIDRSet = "not-in-cidr-set", inPortSet = "in-port-set", notInPortSet = "not-in-port-set"
        case inSet = "in-set", notInSet = "not-in-set"

        var isNumeric: Bool { [.lessThan, .lessThanEquals, .greaterThan, .greaterThanEquals].contains(self) }
    }

    /// What the datapoints are compared with.
    public enum Threshold: Sendable, Equatable {
        case number(Double)
        /// A percentile (0…100) of the latest datapoints of the profile's things.
        case statistic(Double)
        case cidrs([NetworkAddress.CIDR])
        case ports(Set<Int>)
        case numbers(Set<Double>)
        case strings(Set<String>)
    }

    /// Where a metric's datapoints come from.
    public enum Source: Sendable, Equatable {
        /// Measured by the broker: a count over `durationSeconds`, a message's size, or the
        /// connection's source address.
        case cloud
        /// Reported by the device.
        case device
        /// A custom metric reported by the device.
        case custom
    }

    public var name: String
    public var metric: String
    public var comparison: Operator
    public var threshold: Threshold
    /// For cloud-side counts: the window counted (AWS's 300, 600, 900, 1800 or 3600 seconds).
    public var durationSeconds: Int?
    public var datapointsToAlarm: Int
    public var datapointsToClear: Int
    /// Alarms are recorded but not announced (AWS's `suppressAlerts`); mitigations still apply.
    public var suppressAlerts: Bool

    static let cloudCounts: Set<String> = [
        "aws:num-messages-sent", "aws:num-messages-received", "aws:num-authorization-failures", "aws:num-connection-attempts",
        "aws:num-disconnects",
    ]
    static let deviceNumbers: Set<String> = [
        "aws:all-bytes-out", "aws:all-bytes-in", "aws:all-packets-out", "aws:all-packets-in", "aws:num-listening-tcp-ports",
        "aws:num-listening-udp-ports", "aws:num-established-tcp-connections",
    ]
    static let windows: Set<Int> = [300, 600, 900, 1800, 3600]

    public var source: Source {
        if Self.cloudCounts.contains(metric) || metric == "aws:message-byte-size" || metric == "aws:source-ip-address" { return .cloud }
        return metric.hasPrefix("aws:") ? .device : .custom
    }

    public init(
        name: String, metric: String, comparison: Operator, threshold: Threshold, durationSeconds: Int? = nil,
        datapointsToAlarm: Int = 1, datapointsToClear: Int = 1, suppressAlerts: Bool = false
    ) {
        self.name = name
        self.metric = metric
        self.comparison = comparison
        self.threshold = threshold
        self.durationSeconds = durationSeconds
        self.datapointsToAlarm = datapointsToAlarm
        self.datapointsToClear = datapointsToClear
        self.suppressAlerts = suppressAlerts
    }

    init(_ item: CBOR) throws(HallmarkError) {
        let invalid = SecurityProfile.invalid
        var fields = try Fields(item, "a behaviour", invalid: invalid)
        guard let name = try fields.required("name", "name").text, SecurityProfile.isValidMetricName(name) else {
            throw invalid("a behaviour's name must match [a-zA-Z0-9:_-]{1,128}")
        }
        guard let metric = try fields.required("metric", "metric").text, SecurityProfile.isValidMetricName(metric) else {
            throw invalid("behaviour \(name) needs a metric (an aws: id or a custom metric's name)")
        }
        if try fields.optional("metricDimension", "metricDimension") != nil {
            throw invalid("behaviour \(name): metric dimensions are not evaluated yet")
        }
        if let flag = try fields.optional("exportMetric", "exportMetric"), flag != .bool(false) {
            throw invalid("behaviour \(name): exportMetric is not supported")
        }
        let suppress = try fields.optional("suppressAlerts", "suppressAlerts")
        guard suppress == nil || suppress == .bool(true) || suppress == .bool(false) else { throw invalid("behaviour \(name): suppressAlerts must be true or false") }
        var criteria = try Fields(try fields.required("criteria", "criteria"), "behaviour \(name)'s criteria", invalid: invalid)
        try fields.finish()
        if try criteria.optional("mlDetectionConfig", "mlDetectionConfig") != nil {
            throw invalid("behaviour \(name): ML Detect is not offered; give a comparisonOperator and a value or statisticalThreshold")
        }
        guard let op = try criteria.required("comparisonOperator", "comparisonOperator").text, let comparison = Operator(rawValue: op) else {
            throw invalid("behaviour \(name): comparisonOperator must be one of AWS's operators")
        }
        func count(_ key: String, _ range: ClosedRange<Int64>) throws(HallmarkError) -> Int? {
            guard let value = try criteria.optional(key, key) else { return nil }
            guard let number = value.integer, range.contains(number) else { throw invalid("behaviour \(name): \(key) must be \(range.lowerBound)…\(range.upperBound)") }
            return Int(number)
        }
        let duration = try count("durationSeconds", 1...3600)
        let toAlarm = try count("consecutiveDatapointsToAlarm", 1...10) ?? 1
        let toClear = try count("consecutiveDatapointsToClear", 1...10) ?? 1
        let value = try criteria.optional("value", "value")
        let statistical = try criteria.optional("statisticalThreshold", "statisticalThreshold")
        try criteria.finish()
        let threshold: Threshold
        switch (value, statistical) {
        case (let value?, nil):
            threshold = try Self.threshold(value, comparison: comparison, behavior: name)
        case (nil, let statistical?):
            guard comparison.isNumeric, let statistic = statistical["statistic"]?.text, let percentile = Self.percentile(statistic) else {
                throw invalid("behaviour \(name): statisticalThreshold needs a numeric operator and a statistic p0…p100 (e.g. p90, p99.9)")
            }
            threshold = .statistic(percentile)
        default:
            throw invalid("behaviour \(name): give exactly one of value and statisticalThreshold")
        }
        self.init(
            name: name, metric: metric, comparison: comparison, threshold: threshold, durationSeconds: duration,
            datapointsToAlarm: toAlarm, datapointsToClear: toClear, suppressAlerts: suppress == .bool(true))
        try check()
    }

    /// The statistic `pNN` or `pNN.N` as a percentile.
    static func percentile(_ text: String) -> Double? {
        guard text.hasPrefix("p"), let value = Double(text.dropFirst()), (0...100).contains(value) else { return nil }
        return value
    }

    private static func threshold(_ value: CBOR, comparison: Operator, behavior name: String) throws(HallmarkError) -> Threshold {
        let invalid = SecurityProfile.invalid
        guard case .map(let pairs) = value, pairs.count == 1, let kind = pairs[0].key.text else {
            throw invalid("behaviour \(name): value must hold one of count, number, numbers, strings, cidrs, ports")
        }
        let item = pairs[0].value
        func list() throws(HallmarkError) -> [CBOR] {
            guard case .array(let items) = item, items.count <= 1000 else { throw invalid("behaviour \(name): value.\(kind) must be a list") }
            return items
        }
        switch kind {
        case "count":
            guard let count = item.integer, count >= 0 else { throw invalid("behaviour \(name): value.count must be a non-negative integer") }
            return .number(Double(count))
        case "number":
            guard let number = item.number else { throw invalid("behaviour \(name): value.number must be a number") }
            return .number(number)
        case "numbers":
            var numbers = Set<Double>()
            for entry in try list() {
                guard let number = entry.number else { throw invalid("behaviour \(name): value.numbers must be numbers") }
                numbers.insert(number)
            }
            return .numbers(numbers)
        case "strings":
            var strings = Set<String>()
            for entry in try list() {
                guard let text = entry.text else { throw invalid("behaviour \(name): value.strings must be strings") }
                strings.insert(text)
            }
            return .strings(strings)
        case "cidrs":
            var blocks: [NetworkAddress.CIDR] = []
            for entry in try list() {
                guard let text = entry.text, let block = NetworkAddress.CIDR(text) else { throw invalid("behaviour \(name): value.cidrs must be CIDR blocks") }
                blocks.append(block)
            }
            return .cidrs(blocks)
        case "ports":
            var ports = Set<Int>()
            for entry in try list() {
                guard let port = entry.integer, (0...65535).contains(port) else { throw invalid("behaviour \(name): value.ports must be 0…65535") }
                ports.insert(Int(port))
            }
            return .ports(ports)
        default:
            throw invalid("behaviour \(name): value.\(kind.prefix(40)) is not one of count, number, numbers, strings, cidrs, ports")
        }
    }

    /// Refuses a metric, operator and value that do not go together (as AWS validates them).
    private func check() throws(HallmarkError) {
        let invalid = SecurityProfile.invalid
        let numeric: Bool = switch threshold {
        case .number, .statistic: true
        default: false
        }
        switch metric {
        case _ where Self.cloudCounts.contains(metric):
            guard comparison.isNumeric, numeric else { throw invalid("behaviour \(name): \(metric) takes a numeric operator and a count") }
            guard let duration = durationSeconds, Self.windows.contains(duration) else {
                throw invalid("behaviour \(name): \(metric) needs durationSeconds of 300, 600, 900, 1800 or 3600")
            }
        case "aws:message-byte-size":
            guard comparison.isNumeric, numeric else { throw invalid("behaviour \(name): \(metric) takes a numeric operator and a count") }
        case "aws:source-ip-address", "aws:destination-ip-addresses":
            guard comparison == .inCIDRSet || comparison == .notInCIDRSet, case .cidrs = threshold else {
                throw invalid("behaviour \(name): \(metric) takes in-cidr-set or not-in-cidr-set and cidrs")
            }
        case "aws:listening-tcp-ports", "aws:listening-udp-ports":
            guard comparison == .inPortSet || comparison == .notInPortSet, case .ports = threshold else {
                throw invalid("behaviour \(name): \(metric) takes in-port-set or not-in-port-set and ports")
            }
        case _ where Self.deviceNumbers.contains(metric):
            guard comparison.isNumeric, numeric else { throw invalid("behaviour \(name): \(metric) takes a numeric operator and a count") }
        case _ where metric.hasPrefix("aws:"):
            throw invalid("behaviour \(name): \(metric) is not a metric Hallmark measures")
        default:
            // A custom metric: a number, or a set of numbers, strings or addresses.
            switch (comparison, threshold) {
            case (_, .number), (_, .statistic): guard comparison.isNumeric else { throw invalid("behaviour \(name): a number takes a numeric operator") }
            case (.inSet, .numbers), (.notInSet, .numbers), (.inSet, .strings), (.notInSet, .strings), (.inCIDRSet, .cidrs), (.notInCIDRSet, .cidrs): break
            default: throw invalid("behaviour \(name): custom metric \(metric) takes a number, or in-set/not-in-set with numbers or strings, or a cidr set")
            }
        }
    }

    /// Whether a datapoint is normal for this behaviour. A statistical threshold needs the
    /// fleet's value (nil while too few things have reported: the datapoint counts as normal).
    public func isNormal(_ value: MetricValue, statisticalThreshold: Double? = nil) -> Bool {
        switch (threshold, value) {
        case (.number(let limit), .number(let number)): return compare(number, limit)
        case (.statistic, .number(let number)):
            guard let limit = statisticalThreshold else { return true }
            return compare(number, limit)
        case (.cidrs(let blocks), .addresses(let addresses)):
            let inside = addresses.map { address in blocks.contains { $0.contains(address) } }
            return comparison == .inCIDRSet ? inside.allSatisfy { $0 } : !inside.contains(true)
        case (.ports(let set), .ports(let ports)):
            return comparison == .inPortSet ? ports.allSatisfy(set.contains) : !ports.contains(where: set.contains)
        case (.numbers(let set), .numbers(let numbers)):
            return comparison == .inSet ? numbers.allSatisfy(set.contains) : !numbers.contains(where: set.contains)
        case (.strings(let set), .strings(let strings)):
            return comparison == .inSet ? strings.allSatisfy(set.contains) : !strings.contains(where: set.contains)
        default:
            // A datapoint of another type than the behaviour expects (a custom metric reported
            // with a different type) is not evaluated.
            return true
        }
    }

    private func compare(_ value: Double, _ limit: Double) -> Bool {
        switch comparison {
        case .lessThan: value < limit
        case .lessThanEquals: value <= limit
        case .greaterThan: value > limit
        case .greaterThanEquals: value >= limit
        default: true
        }
    }
}

/// A behaviour's standing for one thing: consecutive violating and normal datapoints, and
/// whether it is in alarm.
public struct BehaviorState: Sendable, Equatable {
    public var violating = 0
    public var normal = 0
    public var inAlarm = false

    public init(inAlarm: Bool = false) { self.inAlarm = inAlarm }

    public enum Transition: String, Sendable, Equatable {
        case inAlarm = "in-alarm"
        case cleared = "alarm-cleared"
    }

    /// Counts one datapoint; returns the transition it causes, if any.
    public mutating func record(normal isNormal: Bool, _ behavior: Behavior) -> Transition? {
        if isNormal {
            violating = 0
            normal += 1
            guard inAlarm, normal >= behavior.datapointsToClear else { return nil }
            inAlarm = false
            return .cleared
        }
        normal = 0
        violating += 1
        guard !inAlarm, violating >= behavior.datapointsToAlarm else { return nil }
        inAlarm = true
        return .inAlarm
    }
}

/// Statistical thresholds over a fleet's datapoints.
public enum FleetStatistic {
    /// The `p`th percentile (0…100) of values, nearest-rank.
    public static func percentile(_ p: Double, of values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank - 1, 0), sorted.count - 1)]
    }
}
