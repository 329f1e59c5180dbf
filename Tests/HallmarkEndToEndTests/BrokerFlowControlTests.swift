import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkLoad
import HallmarkServer
import HallmarkServices
import HallmarkStore
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The broker's flow control, against a live in-process server over real sockets: a subscriber
/// that reads slowly slows its publishers down instead of losing their messages, and a subscriber
/// that stops reading holds no one back. (Serialized: each test needs the CPU to itself for its
/// rates to mean anything.)
@Suite(.serialized) struct BrokerFlowControlTests {
    /// The broker's bound on a session's queue (BrokerConfiguration's default).
    static let queueBound = 1000

    /// The subscriber works `perMessage` µs on each message on its one thread: 20,000 messages a
    /// second at most at QoS 0, 2,000 at QoS 1; the publisher goes as fast as the broker lets it.
    @Test(arguments: [(QoS.atMostOnce, UInt32(50), Int64(1)), (.atLeastOnce, 500, 2)])
    func slowSubscriberSlowsThePublisherAndLosesNothing(qos: QoS, perMessage: UInt32, seconds: Int64) async throws {
        try await withPlainBroker { port in
            let received = NIOLockedValueBox(0)
            let subscriberLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { subscriberLoop.shutdownGracefully { _ in } }
            let subscriber = try await MQTTClient.connect(
                host: "127.0.0.1", port: port, tls: nil, clientID: "slow-reader", version: .v311, group: subscriberLoop,
                onMessage: { _ in
                    usleep(perMessage)
                    received.withLockedValue { $0 += 1 }
                })
            _ = try await subscriber.subscribe([Subscription(filter: "flow/#", qos: qos)])
            let publisher = try await MQTTLoadPublisher.connect(host: "127.0.0.1", port: port, tls: nil, clientID: "fast-writer", version: .v311)
            let published = try await publisher.publishRepeatedly(
                topic: "flow/data", payload: ByteBuffer(repeating: 7, count: 64), qos: qos, window: 64,
                until: .now() + .seconds(seconds))
            let delivered = try await settledCount(received)
            await publisher.disconnect()
            await subscriber.disconnect()
            // The publisher offered far more than the queue holds; the subscriber got every one.
            #expect(published > 2 * Self.queueBound)
            #expect(delivered == published, "\(published - delivered) of \(published) messages lost")
        }
    }

    @Test func stalledSubscriberHoldsNoPublisherBack() async throws {
        try await withPlainBroker { port in
            let subscriberLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { subscriberLoop.shutdownGracefully { _ in } }
            let stalled = NIOLockedValueBox(false)
            // The first message stops the subscriber's thread for 8 seconds: it reads nothing more.
            let subscriber = try await MQTTClient.connect(
                host: "127.0.0.1", port: port, tls: nil, clientID: "stalled-reader", version: .v311, group: subscriberLoop,
                onMessage: { _ in
                    let first = stalled.withLockedValue { wasStalled in
                        defer { wasStalled = true }
                        return !wasStalled
                    }
                    if first { sleep(8) }
                })
            _ = try await subscriber.subscribe([Subscription(filter: "flow/#", qos: .atLeastOnce)])
            let publisher = try await MQTTLoadPublisher.connect(host: "127.0.0.1", port: port, tls: nil, clientID: "writer", version: .v311)
            let published = try await publisher.publishRepeatedly(
                topic: "flow/data", payload: ByteBuffer(repeating: 7, count: 64), qos: .atLeastOnce, window: 32,
                until: .now() + .seconds(7))
            await publisher.disconnect()
            subscriber.close()
            // Held back while the subscriber might still be reading (5 s), then free. Held for good, it
            // would get no further than about 1,500: half the queue, the subscriber's window of 100, and
            // one window of 32 per pause of at most 250 ms.
            #expect(published > 3 * Self.queueBound)
        }
    }

    /// The count once it has stopped moving.
    private func settledCount(_ counter: NIOLockedValueBox<Int>) async throws -> Int {
        var last = -1
        while true {
            try await Task.sleep(for: .milliseconds(300))
            let now = counter.withLockedValue { $0 }
            if now == last { return now }
            last = now
        }
    }

    /// A server with its plain-TCP MQTT listener (on loopback, open policy) for the test's duration.
    private func withPlainBroker(_ body: (Int) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-flow-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphrase = try Passphrase("flow-control-test-passphrase")
        try AuthorityFiles(dataDirectory: directory).initialise(organization: "Flow Test", passphrase: passphrase, now: Date())
        var configuration = ServerConfiguration(
            dataDirectory: directory.path, httpsHost: "127.0.0.1", httpsPort: 0, logLevel: "error",
            mqttHost: "127.0.0.1", mqttPort: 0, mqttPlainPort: 0, revocationPort: 0)
        // The publisher goes as fast as the broker lets it: the rate limit would be all it measured.
        configuration.broker.maximumPublishRate = 0
        let server = try HallmarkServer(configuration: configuration, passphrase: passphrase)
        try await server.withRunning { ports in
            guard let plain = ports.mqttPlain else {
                Issue.record("no plain listener")
                return
            }
            try await body(plain)
        }
    }
}
