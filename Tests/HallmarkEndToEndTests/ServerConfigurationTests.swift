import Foundation
import HallmarkBroker
import HallmarkCore
import HallmarkServer
import Testing

/// `hallmark serve`'s settings, read through the one table of keys.
@Suite struct ServerConfigurationTests {
    @Test func namesFollowFromTheKey() throws {
        let key = try #require(ServerConfiguration.keys.first { $0.name == "mqttKeepAliveMax" })
        #expect(key.environment == "HALLMARK_MQTT_KEEP_ALIVE_MAX")
        #expect(key.flag == "mqtt-keep-alive-max")
        let names = ServerConfiguration.keys.map(\.name)
        #expect(Set(names).count == names.count, "a key listed twice")
        #expect(Set(ServerConfiguration.keys.map(\.flag)).count == names.count)
    }

    @Test func fileEnvironmentAndFlagsOverrideInThatOrder() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"httpsPort": 9000, "mqttKeepAliveMax": 300, "hostNames": ["a.example", "b.example"], "mqttTelemetry": false}"#.utf8)
            .write(to: file)
        var configuration = ServerConfiguration()
        try configuration.apply(file: file.path)
        #expect(configuration.httpsPort == 9000)
        #expect(configuration.broker.keepAliveMaximum == 300)
        #expect(configuration.hostNames == ["a.example", "b.example"])
        #expect(configuration.broker.recordTelemetry == false)
        try configuration.apply(environment: ["HALLMARK_HTTPS_PORT": "9001", "HALLMARK_MQTT_MAX_QUEUED_MESSAGES": "50"])
        #expect(configuration.httpsPort == 9001)
        #expect(configuration.broker.maximumQueuedMessages == 50)
        try configuration.apply(flags: [("https-port", "9002"), ("mqtt-topic-alias-max", "0")])
        #expect(configuration.httpsPort == 9002)
        #expect(configuration.broker.topicAliasMaximum == 0)
    }

    @Test(arguments: [
        [("log-level", "loud")], [("https-port", "70000")], [("mqtt-keep-alive-max", "0")], [("mqtt-telemetry", "maybe")],
        [("no-such-flag", "1")], [("mqtt-plain-policy", "/nonexistent/policy.json")], [("revocation-url", "ftp://x")],
        [("ocsp-signer", "anyone")], [("crl-validity", "5")],
    ])
    func anInvalidValueIsConfigInvalid(flags: [(String, String)]) {
        var configuration = ServerConfiguration()
        #expect { try configuration.apply(flags: flags) } throws: { ($0 as? HallmarkError)?.code == .configInvalid }
    }

    @Test func anUnknownFileKeyIsConfigInvalid() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"httpPort": 9000}"#.utf8).write(to: file)
        var configuration = ServerConfiguration()
        #expect { try configuration.apply(file: file.path) } throws: { ($0 as? HallmarkError)?.code == .configInvalid }
    }

    @Test func keepAliveIsHeldToItsBounds() {
        var broker = BrokerConfiguration()
        broker.keepAliveMinimum = 30
        broker.keepAliveMaximum = 1200
        #expect(broker.keepAlive(requested: 60) == 60)
        #expect(broker.keepAlive(requested: 5) == 30)
        #expect(broker.keepAlive(requested: 3000) == 1200)
        #expect(broker.keepAlive(requested: 0) == 1200)
    }
}

extension ServerConfigurationTests {
    /// docs/configuration.md lists every key with its flag and environment variable.
    @Test func theDocsNameEveryKey() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for key in ServerConfiguration.keys {
            #expect(text.contains("`\(key.name)` | `--\(key.flag)`"), "docs/configuration.md lacks \(key.name)")
            #expect(text.contains("`\(key.environment)`"), "docs/configuration.md lacks \(key.environment)")
        }
    }
}
