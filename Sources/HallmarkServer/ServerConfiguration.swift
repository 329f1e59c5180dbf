import Foundation

/// Everything `hallmark serve` needs to know. Defaults suit one machine; a JSON file, the
/// environment and flags override them, in that order.
public struct ServerConfiguration: Sendable, Equatable, Codable {
    /// Where the registry and CA live.
    public var dataDirectory: String
    /// The HTTPS (EST, health) listener's address.
    public var httpsHost: String
    public var httpsPort: Int
    /// Host names and IPs in the TLS server certificate; `localhost` and `127.0.0.1` always are.
    public var hostNames: [String]
    /// Log level: trace, debug, info, notice, warning, error, critical.
    public var logLevel: String
    /// The MQTT broker's mutual-TLS listener (default port 8883).
    public var mqttHost: String
    public var mqttPort: Int
    /// The broker's optional plain-TCP listener, on 127.0.0.1 only; off unless set.
    public var mqttPlainPort: Int?

    public init(
        dataDirectory: String = "./hallmark-data", httpsHost: String = "0.0.0.0", httpsPort: Int = 8443,
        hostNames: [String] = [], logLevel: String = "info", mqttHost: String = "0.0.0.0", mqttPort: Int = 8883,
        mqttPlainPort: Int? = nil
    ) {
        self.mqttHost = mqttHost
        self.mqttPort = mqttPort
        self.mqttPlainPort = mqttPlainPort
        self.dataDirectory = dataDirectory
        self.httpsHost = httpsHost
        self.httpsPort = httpsPort
        self.hostNames = hostNames
        self.logLevel = logLevel
    }

    /// The SAN list of the server certificate: the configured names plus localhost and 127.0.0.1.
    public var serverCertificateNames: [String] {
        var names: [String] = []
        for name in hostNames + ["localhost", "127.0.0.1"] where !names.contains(name) { names.append(name) }
        return names
    }
}
