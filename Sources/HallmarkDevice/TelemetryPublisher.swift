import HallmarkCore
import Logging
import MQTTCore
import NIOCore
import X509

import Foundation

/// A simulated thermometer: a slow daily swing around a set point, with a little noise.
public struct Thermometer: Sendable {
    public var setPoint: Double
    public init(setPoint: Double = 21) { self.setPoint = setPoint }

    public func reading(at date: Date) -> Double {
        let day = date.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400) / 86_400
        let value = setPoint + 2.5 * sin(2 * .pi * day) + Double.random(in: -0.15...0.15)
        return (value * 100).rounded() / 100
    }
}

/// The device's telemetry: connects to the broker with its certificate (client id = its thing
/// name, the certificate's subject CN) and publishes a thermometer reading every few seconds to
/// `things/<thing>/temperature` at QoS 1. A lost or refused connection is retried with back-off.
public struct TelemetryPublisher: Sendable {
    public var state: DeviceState
    public var host: String
    public var port: Int
    public var interval: Duration
    public var thermometer = Thermometer()
    let logger: Logger

    public init(state: DeviceState, host: String, port: Int, interval: Duration = .seconds(5), logger: Logger = Logger(label: "hallmark.device")) {
        self.state = state
        self.host = host
        self.port = port
        self.interval = interval
        self.logger = logger
    }

    /// The topic readings go to.
    public static func topic(thing: String) -> String { "things/\(thing)/temperature" }

    /// One reading as JSON.
    public static func payload(celsius: Double, at date: Date) -> String {
        #"{"temperature":\#(celsius),"unit":"C","at":"\#(ISO8601DateFormatter().string(from: date))"}"#
    }

    /// Connects with the device's current certificate; `onMessage` gets what its subscriptions deliver.
    public func connect(onMessage: (@Sendable (PublishPacket) -> Void)? = nil) async throws -> (client: MQTTClient, thing: String) {
        guard let certificate = try state.certificate() else {
            throw HallmarkError(.clientCertificateRequired, "Device \(state.udid) has no certificate yet.", remedy: "Boot it first (enrol).")
        }
        guard let thing = state.thingName() ?? certificate.subject.commonName else {
            throw HallmarkError(.subjectMismatch, "The device certificate names no thing (no subject CN).", remedy: "Enrol the device again.")
        }
        let tls = try HTTPSConnection.ClientTLS(trustRoots: state.trustRoots(), identity: ([certificate], state.privateKey))
        let client = try await MQTTClient.connect(
            host: host, port: port, tls: tls.context, serverHostname: host, clientID: thing, version: .v5, keepAlive: 30,
            onMessage: onMessage)
        return (client, thing)
    }

    /// Publishes `count` readings (nil: until cancelled), reconnecting with back-off. Returns how
    /// many readings the broker acknowledged.
    @discardableResult
    public func run(count: Int? = nil, backoff: RenewalSchedule = RenewalSchedule()) async throws -> Int {
        var sent = 0
        var attempt = 0
        while count.map({ sent < $0 }) ?? true {
            try Task.checkCancellation()
            do {
                let (client, thing) = try await connect()
                attempt = 0
                logger.info("telemetry connected", metadata: ["thing": "\(thing)"])
                defer { client.close() }
                while count.map({ sent < $0 }) ?? true {
                    let now = Date()
                    let json = Self.payload(celsius: thermometer.reading(at: now), at: now)
                    try await client.publish(topic: Self.topic(thing: thing), payload: ByteBuffer(string: json), qos: .atLeastOnce)
                    sent += 1
                    if count.map({ sent < $0 }) ?? true { try await Task.sleep(for: interval) }
                }
                await client.disconnect()
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempt += 1
                let delay = backoff.backoff(attempt: attempt, jitter: Double.random(in: 0...1))
                logger.warning("telemetry connection failed, retrying", metadata: ["error": "\(error)", "retry_in_seconds": "\(Int(delay))"])
                try await Task.sleep(for: .seconds(delay))
            }
        }
        return sent
    }
}
