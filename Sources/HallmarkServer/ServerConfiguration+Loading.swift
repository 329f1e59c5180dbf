import HallmarkCore

import Foundation

extension ServerConfiguration {
    /// Applies a JSON configuration file; keys are the property names (`httpsPort`, ...).
    /// - Throws: `config_invalid` naming the file when it cannot be read as configuration.
    public mutating func apply(file path: String) throws {
        struct Partial: Decodable {
            var dataDirectory: String?
            var httpsHost: String?
            var httpsPort: Int?
            var hostNames: [String]?
            var logLevel: String?
            var mqttHost: String?
            var mqttPort: Int?
            var mqttPlainPort: Int?
        }
        let partial: Partial
        do {
            partial = try JSONDecoder().decode(Partial.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw HallmarkError(
                .configInvalid, "The configuration file \(path) could not be read as JSON configuration.",
                remedy: "Give a JSON object with keys such as httpsPort, hostNames, logLevel.")
        }
        if let value = partial.dataDirectory { dataDirectory = value }
        if let value = partial.httpsHost { httpsHost = value }
        if let value = partial.httpsPort { httpsPort = value }
        if let value = partial.hostNames { hostNames = value }
        if let value = partial.logLevel { logLevel = value }
        if let value = partial.mqttHost { mqttHost = value }
        if let value = partial.mqttPort { mqttPort = value }
        if let value = partial.mqttPlainPort { mqttPlainPort = value }
    }

    /// Applies `HALLMARK_*` environment variables: `HALLMARK_DATA_DIR`, `HALLMARK_HTTPS_HOST`,
    /// `HALLMARK_HTTPS_PORT`, `HALLMARK_HOSTNAMES` (comma-separated), `HALLMARK_LOG_LEVEL`,
    /// `HALLMARK_MQTT_HOST`, `HALLMARK_MQTT_PORT`, `HALLMARK_MQTT_PLAIN_PORT`.
    public mutating func apply(environment: [String: String]) throws {
        func port(_ name: String) throws -> Int? {
            guard let value = environment[name] else { return nil }
            guard let port = Int(value), (0...65535).contains(port) else {
                throw HallmarkError(
                    .configInvalid, "\(name) is '\(value)', not a port number.", remedy: "Set a number from 0 to 65535.")
            }
            return port
        }
        if let value = environment["HALLMARK_DATA_DIR"] { dataDirectory = value }
        if let value = environment["HALLMARK_HTTPS_HOST"] { httpsHost = value }
        if let value = try port("HALLMARK_HTTPS_PORT") { httpsPort = value }
        if let value = environment["HALLMARK_MQTT_HOST"] { mqttHost = value }
        if let value = try port("HALLMARK_MQTT_PORT") { mqttPort = value }
        if let value = try port("HALLMARK_MQTT_PLAIN_PORT") { mqttPlainPort = value }
        if let value = environment["HALLMARK_HOSTNAMES"] {
            hostNames = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let value = environment["HALLMARK_LOG_LEVEL"] { logLevel = value }
    }
}
