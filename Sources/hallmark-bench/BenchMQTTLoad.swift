import Foundation
import HallmarkDevice
import HallmarkLoad
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A device identity the MQTT benchmark connects with.
struct BenchIdentity: Sendable {
    var thing: String
    var tls: NIOSSLContext
}

/// The loads of `hallmark bench mqtt`, run identically against each broker.
enum BenchMQTTLoad {
    /// Full mutual-TLS connections (TCP + TLS handshake + CONNECT/CONNACK + DISCONNECT) per second.
    static func connections(port: Int, identities: [BenchIdentity], workers: Int, seconds: Double) async throws -> (rate: Double, failures: Int) {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let counts = NIOLockedValueBox((ok: 0, failed: 0))
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                let identity = identities[worker % identities.count]
                group.addTask {
                    while ContinuousClock.now < deadline {
                        do {
                            let client = try await MQTTClient.connect(
                                host: "127.0.0.1", port: port, tls: identity.tls, serverHostname: "localhost",
                                clientID: identity.thing, version: .v311)
                            await client.disconnect()
                            counts.withLockedValue { $0.ok += 1 }
                        } catch {
                            counts.withLockedValue { $0.failed += 1 }
                        }
                    }
                }
            }
        }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        let result = counts.withLockedValue { $0 }
        return (Double(result.ok) / elapsed, result.failed)
    }

    /// Messages per second delivered to one subscriber of `things/+/temp` while every publisher
    /// publishes to its own topic as fast as the broker takes them.
    static func throughput(
        port: Int, publishers: [BenchIdentity], subscriber: BenchIdentity, qos: QoS, seconds: Double,
        brokerCPU: () -> Double
    ) async throws -> (delivered: Double, published: Int, lost: Int, cpuPerMessage: Double) {
        let received = NIOLockedValueBox(0)
        // The subscriber reads on a thread of its own: on the publishers' event loops it would fall
        // behind them and measure the load generator instead of the broker.
        let subscriberLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { subscriberLoop.shutdownGracefully { _ in } }
        let sub = try await MQTTClient.connect(
            host: "127.0.0.1", port: port, tls: subscriber.tls, serverHostname: "localhost", clientID: subscriber.thing,
            version: .v311, group: subscriberLoop, onMessage: { _ in received.withLockedValue { $0 += 1 } })
        let granted = try await sub.subscribe([Subscription(filter: "things/+/temp", qos: qos)])
        guard granted.first.map({ !$0.isFailure }) ?? false else { throw MQTTClient.Refused(reason: granted.first ?? .unspecifiedError, message: "subscribe") }
        let clients = try await withThrowingTaskGroup(of: (MQTTLoadPublisher, String).self) { group in
            for identity in publishers {
                group.addTask {
                    (try await MQTTLoadPublisher.connect(
                        host: "127.0.0.1", port: port, tls: identity.tls, serverHostname: "localhost", clientID: identity.thing,
                        version: .v311), identity.thing)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        let published = NIOLockedValueBox(0)
        let startCount = received.withLockedValue { $0 }
        let startCPU = brokerCPU()
        let started = ContinuousClock.now
        let deadline = NIODeadline.now() + .milliseconds(Int64(seconds * 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (client, thing) in clients {
                let topic = "things/\(thing)/temp"
                group.addTask {
                    // QoS 0: bursts of 64, the next once the socket has taken the last. QoS 1: 16 in
                    // flight per publisher, each acknowledgement sending the next.
                    let sent = try await client.publishRepeatedly(
                        topic: topic, payload: payload, qos: qos, window: qos == .atMostOnce ? 64 : 16, until: deadline)
                    published.withLockedValue { $0 += sent }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        let delivered = received.withLockedValue { $0 } - startCount
        let cpu = brokerCPU() - startCPU
        // What is still on its way arrives within moments; what has not by then was dropped.
        var settled = received.withLockedValue { $0 }
        for _ in 0..<30 {
            try await Task.sleep(for: .milliseconds(100))
            let now = received.withLockedValue { $0 }
            if now == settled { break }
            settled = now
        }
        let sent = published.withLockedValue { $0 }
        for (client, _) in clients { await client.disconnect() }
        await sub.disconnect()
        return (Double(delivered) / elapsed, sent, max(0, sent - (settled - startCount)), cpu / Double(max(delivered, 1)))
    }

    /// Opens idle mutual-TLS sessions and keeps them open; returns them for the caller to close.
    /// Each session uses client id `idle-N` with the one certificate (its policy allows `idle-*`).
    /// Opens `count` sessions that then stay silent (keep-alive 0), over mutual TLS with `tls`, else plain TCP.
    static func idleSessions(port: Int, tls: NIOSSLContext?, count: Int) async throws -> [MQTTClient] {
        var clients: [MQTTClient] = []
        clients.reserveCapacity(count)
        var next = 0
        while next < count {
            let batch = min(200, count - next)
            let opened = try await withThrowingTaskGroup(of: MQTTClient.self) { group in
                for index in next..<(next + batch) {
                    group.addTask {
                        try await MQTTClient.connect(
                            host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost",
                            clientID: "idle-\(index)", version: .v311, keepAlive: 0, cleanStart: true)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            clients += opened
            next += batch
        }
        return clients
    }
}
