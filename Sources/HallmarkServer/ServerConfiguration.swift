import HallmarkBroker
import HallmarkCore
import HallmarkServices
import SwiftASN1
import X509

import Foundation

/// Everything `hallmark serve` needs to know. Defaults suit one machine; a JSON file, the
/// environment and flags override them, in that order, each through the one table of keys
/// (``ServerConfiguration/keys``).
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
    /// The MQTT broker: its listeners (mutual TLS on 8883; plain TCP on 127.0.0.1, off unless
    /// set) and its limits.
    public var broker: BrokerConfiguration
    /// The revocation listener (plain HTTP: CRLs and OCSP): loopback unless configured otherwise.
    public var revocationHost: String
    public var revocationPort: Int
    /// The base URL device certificates name for CRLs and OCSP (`http://host[:port]`); by default
    /// the listener's own address (`http://127.0.0.1:<port>` when it listens on every address).
    public var revocationURL: String?
    /// CRLs, OCSP answers and who signs them.
    public var revocation: RevocationService.Settings
    /// The transparency log's origin: the first line of its checkpoints, and its key's name.
    public var logOrigin: String
    /// The CA certificates (PEM) fleet provisioning's pre-provisioning hooks must chain to; nil
    /// for the system's roots.
    public var provisioningHookCA: String?
    /// Where Device Defender's alarms are posted (HTTPS), the HMAC key they are signed with, and
    /// the roots the receiver must chain to (nil: the system's).
    /// The Prometheus listener (`GET /metrics`, plain HTTP): loopback, off unless a port is given.
    /// Connections the process holds at most, across its listeners; nil: its file descriptors less a reserve.
    public var maximumConnections: Int?
    public var metricsHost: String = "127.0.0.1"
    public var metricsPort: Int?
    /// Seconds between scheduled audits of the fleet's configuration (nil: none).
    public var auditInterval: Int? = 86_400
    public var alarmWebhook: URL?
    public var alarmWebhookKey: [UInt8]?
    public var alarmWebhookCA: String?

    public init(
        dataDirectory: String = "./hallmark-data", httpsHost: String = "0.0.0.0", httpsPort: Int = 8443,
        hostNames: [String] = [], logLevel: String = "info", mqttHost: String = "0.0.0.0", mqttPort: Int = 8883,
        mqttPlainPort: Int? = nil, revocationHost: String = "127.0.0.1", revocationPort: Int = 8080
    ) {
        self.revocationHost = revocationHost
        self.revocationPort = revocationPort
        self.revocationURL = nil
        self.revocation = RevocationService.Settings()
        self.logOrigin = "hallmark.local/log"
        self.broker = BrokerConfiguration(host: mqttHost, port: mqttPort, plainPort: mqttPlainPort)
        self.dataDirectory = dataDirectory
        self.httpsHost = httpsHost
        self.httpsPort = httpsPort
        self.hostNames = hostNames
        self.logLevel = logLevel
    }

    /// The base URL certificates name, given the port the revocation listener is bound to.
    public func revocationBase(boundPort: Int) -> String {
        if let revocationURL { return revocationURL.hasSuffix("/") ? String(revocationURL.dropLast()) : revocationURL }
        let host = ["0.0.0.0", "::", ""].contains(revocationHost) ? "127.0.0.1" : revocationHost
        return "http://\(host.contains(":") ? "[\(host)]" : host):\(boundPort)"
    }

    /// The roots pre-provisioning hooks are checked against (nil: the system's).
    public func provisioningHookRoots() throws -> [Certificate]? {
        try provisioningHookCA.map { try PEMDocument.parseMultiple(pemString: $0).map { try Certificate(pemDocument: $0) } }
    }

    /// The alarm webhook, if one is configured.
    /// - Throws: `config_invalid` for a webhook without a key.
    public func alarmWebhookTarget() throws -> AlarmWebhook? {
        guard let alarmWebhook else { return nil }
        guard let alarmWebhookKey else {
            throw HallmarkError(.configInvalid, "The alarm webhook has no HMAC key.", remedy: "Give --alarm-webhook-key-file (HALLMARK_ALARM_WEBHOOK_KEY_FILE).")
        }
        return try AlarmWebhook(
            url: alarmWebhook, key: alarmWebhookKey,
            trustRoots: try alarmWebhookCA.map { try PEMDocument.parseMultiple(pemString: $0).map { try Certificate(pemDocument: $0) } })
    }

    /// The SAN list of the server certificate: the configured names plus localhost and 127.0.0.1.
    public var serverCertificateNames: [String] {
        var names: [String] = []
        for name in hostNames + ["localhost", "127.0.0.1"] where !names.contains(name) { names.append(name) }
        return names
    }
}
