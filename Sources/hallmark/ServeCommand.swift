import ArgumentParser
import Foundation
import HallmarkServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run Hallmark: EST enrollment over HTTPS and the MQTT broker over mutual TLS.")

    @OptionGroup var data: DataOptions

    @Option(help: "A JSON configuration file (keys: httpsHost, httpsPort, hostNames, logLevel, mqttHost, mqttPort, mqttPlainPort).")
    var config: String?

    @Option(help: "Address of the HTTPS listener (default 0.0.0.0).")
    var httpsHost: String?

    @Option(help: "Port of the HTTPS listener (default 8443; 0 picks a free port).")
    var httpsPort: Int?

    @Option(help: "Address of the MQTT (mutual TLS) listener (default 0.0.0.0).")
    var mqttHost: String?

    @Option(help: "Port of the MQTT (mutual TLS) listener (default 8883; 0 picks a free port).")
    var mqttPort: Int?

    @Option(help: "Port of a plain-TCP MQTT listener on 127.0.0.1, for local development and conformance tests (off by default).")
    var mqttPlainPort: Int?

    @Option(help: "Write the bound MQTT port to this file once listening.")
    var mqttPortFile: String?

    @Option(name: .customLong("hostname"), help: "A host name or IP for the server certificate (repeatable).")
    var hostNames: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String?

    @Option(help: "Write the bound HTTPS port to this file once listening.")
    var portFile: String?

    func run() async throws {
        // Swift concurrency stays on its own thread pool. Installing NIO's event loops as its
        // global executor saved CPU but can deadlock a loop: swift-async-algorithms 1.1.4's
        // `merge` (in Hummingbird's date cache) holds a lock across a suspension (upstream issue
        // #430), and with sticky loop executors the lock's holder waits behind the thread blocked
        // on it. `hallmark serve` once hung on SIGTERM that way.
        try await reporting {
            var configuration = ServerConfiguration(dataDirectory: data.resolvedDataDirectory)
            if let config { try configuration.apply(file: config) }
            try configuration.apply(environment: ProcessInfo.processInfo.environment)
            if let value = data.dataDirectory { configuration.dataDirectory = value }
            if let httpsHost { configuration.httpsHost = httpsHost }
            if let httpsPort { configuration.httpsPort = httpsPort }
            if !hostNames.isEmpty { configuration.hostNames = hostNames }
            if let logLevel { configuration.logLevel = logLevel }
            if let mqttHost { configuration.mqttHost = mqttHost }
            if let mqttPort { configuration.mqttPort = mqttPort }
            if let mqttPlainPort { configuration.mqttPlainPort = mqttPlainPort }

            let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let server = try HallmarkServer(configuration: configuration, passphrase: try data.passphrase())
            let portFile = self.portFile
            let mqttPortFile = self.mqttPortFile
            let group = try server.makeServiceGroup { ports in
                // The MQTT file first: a script waiting on the HTTPS file then finds both.
                if let mqttPortFile { try? Data("\(ports.mqtt)\n".utf8).write(to: URL(fileURLWithPath: mqttPortFile)) }
                if let portFile { try? Data("\(ports.https)\n".utf8).write(to: URL(fileURLWithPath: portFile)) }
                var line = "hallmark: HTTPS (EST) on port \(ports.https), MQTT (mutual TLS) on port \(ports.mqtt)"
                if let plain = ports.mqttPlain { line += ", plain MQTT on 127.0.0.1:\(plain)" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            try await group.run()
        }
    }
}
