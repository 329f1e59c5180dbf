import ArgumentParser
import Foundation
import HallmarkServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run Hallmark: EST enrollment over HTTPS and the MQTT broker over mutual TLS.",
        discussion: """
            Settings come from --config FILE (a JSON object of the keys below), then the environment, then flags, each overriding the one before:

            \(ServerConfiguration.keysHelp)
            """)

    @OptionGroup var data: DataOptions

    @Option(help: "A JSON configuration file (its keys are listed below).")
    var config: String?

    @Option(help: "Write the bound HTTPS port to this file once listening.")
    var portFile: String?

    @Option(help: "Write the bound MQTT port to this file once listening.")
    var mqttPortFile: String?

    @Option(help: "Write the bound revocation (CRL, OCSP) port to this file once listening.")
    var revocationPortFile: String?

    @Option(help: "Write the bound Prometheus (/metrics) port to this file once listening.")
    var metricsPortFile: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settings: [String] = []

    /// The settings' flags as (name, value): `--key value` or `--key=value`.
    func settingFlags() throws -> [(String, String)] {
        var flags: [(String, String)] = []
        var rest = settings[...]
        while let token = rest.popFirst() {
            guard token.hasPrefix("--"), token.count > 2 else { throw ValidationError("Unexpected argument '\(token)'.") }
            let body = token.dropFirst(2)
            if let equals = body.firstIndex(of: "=") {
                flags.append((String(body[..<equals]), String(body[body.index(after: equals)...])))
            } else {
                guard let value = rest.popFirst() else { throw ValidationError("\(token) needs a value.") }
                flags.append((String(body), value))
            }
        }
        return flags
    }

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
            var flags = try settingFlags()
            if let value = data.dataDirectory { flags.append(("data-dir", value)) }
            // Repeated --hostname flags add up.
            let hostNames = flags.filter { $0.0 == "hostname" }.map(\.1)
            flags.removeAll { $0.0 == "hostname" }
            if !hostNames.isEmpty { flags.append(("hostname", hostNames.joined(separator: ","))) }
            try configuration.apply(flags: flags)

            let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let server = try HallmarkServer(configuration: configuration, passphrase: try data.passphrase())
            let portFile = self.portFile
            let mqttPortFile = self.mqttPortFile
            let revocationPortFile = self.revocationPortFile
            let metricsPortFile = self.metricsPortFile
            let revocationHost = configuration.revocationHost
            let group = try await server.makeServiceGroup { ports in
                // The others first: a script waiting on the HTTPS file then finds them all.
                if let mqttPortFile { try? Data("\(ports.mqtt)\n".utf8).write(to: URL(fileURLWithPath: mqttPortFile)) }
                if let revocationPortFile {
                    try? Data("\(ports.revocation)\n".utf8).write(to: URL(fileURLWithPath: revocationPortFile))
                }
                if let metricsPortFile, let port = ports.metrics {
                    try? Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: metricsPortFile))
                }
                if let portFile { try? Data("\(ports.https)\n".utf8).write(to: URL(fileURLWithPath: portFile)) }
                var line = "hallmark: HTTPS (EST) on port \(ports.https), MQTT (mutual TLS) on port \(ports.mqtt)"
                if let plain = ports.mqttPlain { line += ", plain MQTT on 127.0.0.1:\(plain)" }
                line += ", revocation (CRL, OCSP) on \(revocationHost):\(ports.revocation)"
                if let port = ports.metrics { line += ", Prometheus on port \(port)" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            try await group.run()
        }
    }
}
