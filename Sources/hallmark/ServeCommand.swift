import ArgumentParser
import Foundation
import HallmarkServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run Hallmark: EST enrollment over HTTPS, health check.")

    @OptionGroup var data: DataOptions

    @Option(help: "A JSON configuration file (keys: httpsHost, httpsPort, hostNames, logLevel).")
    var config: String?

    @Option(help: "Address of the HTTPS listener (default 0.0.0.0).")
    var httpsHost: String?

    @Option(help: "Port of the HTTPS listener (default 8443; 0 picks a free port).")
    var httpsPort: Int?

    @Option(name: .customLong("hostname"), help: "A host name or IP for the server certificate (repeatable).")
    var hostNames: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String?

    @Option(help: "Write the bound HTTPS port to this file once listening.")
    var portFile: String?

    func run() async throws {
        try await reporting {
            var configuration = ServerConfiguration(dataDirectory: data.resolvedDataDirectory)
            if let config { try configuration.apply(file: config) }
            try configuration.apply(environment: ProcessInfo.processInfo.environment)
            if let value = data.dataDirectory { configuration.dataDirectory = value }
            if let httpsHost { configuration.httpsHost = httpsHost }
            if let httpsPort { configuration.httpsPort = httpsPort }
            if !hostNames.isEmpty { configuration.hostNames = hostNames }
            if let logLevel { configuration.logLevel = logLevel }

            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
                return handler
            }
            let server = try HallmarkServer(configuration: configuration, passphrase: try data.passphrase())
            let portFile = self.portFile
            let group = try server.makeServiceGroup { port in
                if let portFile { try? Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: portFile)) }
                FileHandle.standardError.write(Data("hallmark: HTTPS (EST) listening on port \(port)\n".utf8))
            }
            try await group.run()
        }
    }
}
