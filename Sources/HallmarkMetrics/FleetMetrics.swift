import Prometheus
import Synchronization

/// Hallmark's metrics in the Prometheus exposition format (swift-prometheus), named as
/// Prometheus asks: the `hallmark_` prefix, base units, `_total` on counters, and no thing names
/// or serials as labels (a label's values are error codes and outcomes, a closed set).
///
/// Counters count in this process, where things happen (the broker, EST, Device Defender);
/// what the registry knows across processes and restarts (certificates issued and revoked, active
/// violations, audit findings) is read when scraped, by ``Sampler``s.
public final class FleetMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public let mqttConnectionsAccepted: Counter
    public let mqttMessagesReceived: Counter
    public let mqttMessagesDelivered: Counter
    public let mqttAuthorizationDenials: Counter
    public let mqttPublishesThrottled: Counter
    public let enrollments: Counter
    public let defenderReportsAccepted: Counter
    public let defenderReportsRejected: Counter
    private let refusalCounters = Mutex<[String: Counter]>([:])
    private let sampled = Mutex<[String: Gauge]>([:])
    private let samplers = Mutex<[@Sendable () -> [Sample]]>([])

    /// A value read at scrape time: a gauge, with at most one label.
    public struct Sample: Sendable {
        public var name: String
        public var help: String
        public var label: (String, String)?
        public var value: Double

        public init(name: String, help: String, label: (String, String)? = nil, value: Double) {
            self.name = name
            self.help = help
            self.label = label
            self.value = value
        }
    }

    static func counter(_ registry: PrometheusCollectorRegistry, _ subsystem: String?, _ name: String, _ help: String, labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "hallmark", subsystem: subsystem, metricName: name, unitName: "total", helpText: help),
            labels: labels)
    }

    public init(version: String) {
        let registry = self.registry
        registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "hallmark", metricName: "build", unitName: "info", helpText: "Hallmark's version (always 1)."),
            labels: [("version", version)]
        ).set(to: 1.0)
        mqttConnectionsAccepted = Self.counter(
            registry, "mqtt", "connections_accepted", "MQTT connections admitted (CONNACK success).")
        mqttMessagesReceived = Self.counter(registry, "mqtt", "messages_received", "PUBLISH packets routed from clients.")
        mqttMessagesDelivered = Self.counter(registry, "mqtt", "messages_delivered", "PUBLISH packets written to subscribers.")
        mqttAuthorizationDenials = Self.counter(
            registry, "mqtt", "authorization_denials", "Publishes and subscriptions a policy refused.")
        mqttPublishesThrottled = Self.counter(
            registry, "mqtt", "publish_throttles", "Times a connection's reads paused because it published faster than mqttMaxPublishRate.")
        enrollments = Self.counter(registry, "est", "enrollments", "Certificates answered over EST (new and repeated).")
        defenderReportsAccepted = Self.counter(
            registry, "defender", "reports", "Device Defender reports and security events, by outcome.", labels: [("outcome", "accepted")])
        defenderReportsRejected = Self.counter(
            registry, "defender", "reports", "Device Defender reports and security events, by outcome.", labels: [("outcome", "rejected")])
    }

    /// Counts a refusal of an MQTT connection or an EST enrollment, by Hallmark's error code.
    public func refused(_ what: Refusal, code: String) {
        labelled(what.subsystem, what.metricName, what.help, [("code", code)]).increment()
    }

    /// The counter of one metric's one set of labels, made the first time it is counted.
    private func labelled(_ subsystem: String?, _ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        let key = ([subsystem ?? "", name] + labels.flatMap { [$0.0, $0.1] }).joined(separator: "\u{0}")
        return refusalCounters.withLock { counters in
            if let known = counters[key] { return known }
            let made = Self.counter(registry, subsystem, name, help, labels: labels)
            counters[key] = made
            return made
        }
    }

    public enum Refusal: String, Sendable {
        case mqttConnection, enrollment

        var subsystem: String { self == .mqttConnection ? "mqtt" : "est" }
        var metricName: String { self == .mqttConnection ? "connections_refused" : "enrollment_refusals" }
        var help: String {
            self == .mqttConnection ? "MQTT connections refused, by Hallmark's error code." : "EST enrollments refused, by Hallmark's error code."
        }
    }

    /// Counts a connection a listener ended before it proved itself, by listener (`mqtt`, `https`)
    /// and reason (`handshake_timeout`, `request_timeout`, `idle_timeout`, `too_many_pending`, `too_many_connections`).
    public func connectionDropped(listener: String, reason: String) {
        labelled(nil, "connections_dropped", "Connections a listener ended before they proved themselves, by listener and reason.",
                 [("listener", listener), ("reason", reason)]).increment()
    }

    /// Adds values read at each scrape.
    public func addSampler(_ sampler: @escaping @Sendable () -> [Sample]) {
        samplers.withLock { $0.append(sampler) }
    }

    /// The exposition text.
    public func render() -> String {
        for sample in samplers.withLock({ $0 }).flatMap({ $0() }) {
            let key = sample.name + "\u{0}" + (sample.label.map { $0.0 + "=" + $0.1 } ?? "")
            let gauge = sampled.withLock { gauges in
                if let known = gauges[key] { return known }
                let made = registry.makeGauge(
                    descriptor: MetricNameDescriptor(namespace: "hallmark", metricName: sample.name, unitName: "", helpText: sample.help),
                    labels: sample.label.map { [$0] } ?? [])
                gauges[key] = made
                return made
            }
            gauge.set(to: sample.value)
        }
        return registry.emitToString()
    }
}
