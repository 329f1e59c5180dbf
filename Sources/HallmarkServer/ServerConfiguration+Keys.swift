import HallmarkBroker
import HallmarkCore
import SwiftASN1
import X509

import Foundation

extension ServerConfiguration {
    /// Every setting of `hallmark serve`, in the order `serve --help` lists them.
    public static let keys: [ConfigurationKey] = [
        ConfigurationKey("dataDirectory", "The data directory (registry and CA).", default: "./hallmark-data",
                         environment: "HALLMARK_DATA_DIR", flag: "data-dir") { $0.dataDirectory = $1 },
        ConfigurationKey("httpsHost", "Address of the HTTPS (EST, API) listener.", default: "0.0.0.0") { $0.httpsHost = $1 },
        ConfigurationKey("httpsPort", "Port of the HTTPS listener (0 picks a free port).", default: "8443") {
            $0.httpsPort = try port($1, "httpsPort")
        },
        ConfigurationKey("hostNames", "Host names and IPs for the server certificate, comma-separated (the flag repeats).",
                         default: "localhost,127.0.0.1", environment: "HALLMARK_HOSTNAMES", flag: "hostname") {
            $0.hostNames = $1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        },
        ConfigurationKey("logLevel", "Log level: trace, debug, info, notice, warning, error, critical.", default: "info") {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains($1) else {
                throw invalid("logLevel", $1, "is no log level", "Use trace, debug, info, notice, warning, error or critical.")
            }
            $0.logLevel = $1
        },
        ConfigurationKey("mqttHost", "Address of the MQTT (mutual TLS) listener.", default: "0.0.0.0") { $0.broker.host = $1 },
        ConfigurationKey("mqttPort", "Port of the MQTT (mutual TLS) listener (0 picks a free port).", default: "8883") {
            $0.broker.port = try port($1, "mqttPort")
        },
        ConfigurationKey("mqttAlpnPort", "A second mutual-TLS MQTT listener on the same address, as AWS IoT's 443 (the AWS IoT Device SDKs' default, ALPN x-amzn-mqtt-ca).",
                         default: "off") { $0.broker.alpnPort = try port($1, "mqttAlpnPort") },
        ConfigurationKey("provisioningHookCA", "A PEM file of the CAs fleet provisioning's pre-provisioning hooks (HTTPS) must chain to.",
                         default: "the system's roots", environment: "HALLMARK_PROVISIONING_HOOK_CA", flag: "provisioning-hook-ca") {
            guard let text = try? String(contentsOfFile: $1, encoding: .utf8),
                let roots = try? PEMDocument.parseMultiple(pemString: text).map({ try Certificate(pemDocument: $0) }), !roots.isEmpty
            else {
                throw invalid("provisioningHookCA", $1, "is not a readable PEM file of certificates", "Give the hook server's CA certificate as PEM.")
            }
            $0.provisioningHookCA = text
        },
        ConfigurationKey("metricsHost", "Address of the Prometheus listener (GET /metrics, plain HTTP).", default: "127.0.0.1") { $0.metricsHost = $1 },
        ConfigurationKey("metricsPort", "Port of the Prometheus listener (0 picks a free port).", default: "off") {
            $0.metricsPort = try port($1, "metricsPort")
        },
        ConfigurationKey("auditInterval", "Seconds between audits of the fleet's configuration (AWS's check ids; findings of high or critical severity are announced as alarms), or off.",
                         default: "86400") { $0.auditInterval = $1 == "off" ? nil : try number($1, "auditInterval", 60...31_536_000) },
        ConfigurationKey("alarmWebhook", "An https:// URL that gets every Device Defender alarm as a JSON POST, signed with HMAC-SHA256 (X-Hallmark-Signature).",
                         default: "off", environment: "HALLMARK_ALARM_WEBHOOK", flag: "alarm-webhook") {
            guard let url = URL(string: $1), url.scheme == "https", url.host != nil else {
                throw invalid("alarmWebhook", $1, "is not an https:// URL", "Give the alarm receiver's HTTPS address.")
            }
            $0.alarmWebhook = url
        },
        ConfigurationKey("alarmWebhookKeyFile", "A file holding the alarm webhook's HMAC key (at least 16 bytes; its contents are never logged).",
                         default: "none", environment: "HALLMARK_ALARM_WEBHOOK_KEY_FILE", flag: "alarm-webhook-key-file") {
            guard let key = FileManager.default.contents(atPath: $1), key.count >= 16 else {
                throw invalid("alarmWebhookKeyFile", $1, "is not a readable file of at least 16 bytes", "Write 32 random bytes to it (head -c 32 /dev/urandom).")
            }
            $0.alarmWebhookKey = Array(key)
        },
        ConfigurationKey("alarmWebhookCA", "A PEM file of the CAs the alarm webhook's server certificate must chain to.",
                         default: "the system's roots", environment: "HALLMARK_ALARM_WEBHOOK_CA", flag: "alarm-webhook-ca") {
            guard let text = try? String(contentsOfFile: $1, encoding: .utf8),
                let roots = try? PEMDocument.parseMultiple(pemString: text).map({ try Certificate(pemDocument: $0) }), !roots.isEmpty
            else {
                throw invalid("alarmWebhookCA", $1, "is not a readable PEM file of certificates", "Give the receiver's CA certificate as PEM.")
            }
            $0.alarmWebhookCA = text
        },
        ConfigurationKey("mqttPlainPort", "Port of a plain-TCP MQTT listener on 127.0.0.1, for local tools and conformance suites.",
                         default: "off") { $0.broker.plainPort = try port($1, "mqttPlainPort") },
        ConfigurationKey("mqttPlainPolicy", "A policy document (AWS IoT syntax) for plain-listener clients, instead of everything but reserved topics.",
                         default: "built in") { $0.broker.plainPolicy = try policyFile($1) },
        ConfigurationKey("mqttKeepAliveMin", "The shortest keep-alive a client gets, in seconds (a shorter one is raised).", default: "0") {
            $0.broker.keepAliveMinimum = try number($1, "mqttKeepAliveMin", 0...65535)
        },
        ConfigurationKey("mqttKeepAliveMax", "The longest keep-alive a client gets, in seconds (a longer one, or none, is lowered; MQTT 5 clients are told).",
                         default: "1200") { $0.broker.keepAliveMaximum = try number($1, "mqttKeepAliveMax", 1...65535) },
        ConfigurationKey("mqttMaxPacketSize", "The largest MQTT packet accepted, in bytes.", default: "1048576") {
            $0.broker.maximumPacketSize = try number($1, "mqttMaxPacketSize", 64...268_435_455)
        },
        ConfigurationKey("mqttMaxQueuedMessages", "Messages queued per session before new ones are dropped.", default: "1000") {
            $0.broker.maximumQueuedMessages = try number($1, "mqttMaxQueuedMessages", 1...1_000_000)
        },
        ConfigurationKey("mqttMaxInflight", "QoS 1/2 messages in flight to an MQTT 3.1.1 client (MQTT 5 clients say theirs).", default: "100") {
            $0.broker.maximumInflight311 = try number($1, "mqttMaxInflight", 1...65535)
        },
        ConfigurationKey("mqttReceiveMax", "QoS 2 messages a client may send before releasing them (announced to MQTT 5 clients as Receive Maximum).",
                         default: "100") { $0.broker.receiveMaximum = try number($1, "mqttReceiveMax", 1...65535) },
        ConfigurationKey("mqttTopicAliasMax", "Topic aliases a client may set up (MQTT 5; 0 for none).", default: "16") {
            $0.broker.topicAliasMaximum = try number($1, "mqttTopicAliasMax", 0...65535)
        },
        ConfigurationKey("revocationHost", "Address of the revocation listener (plain HTTP: CRLs and OCSP); off loopback only when set.",
                         default: "127.0.0.1") { $0.revocationHost = $1 },
        ConfigurationKey("revocationPort", "Port of the revocation listener (0 picks a free port).", default: "8080") {
            $0.revocationPort = try port($1, "revocationPort")
        },
        ConfigurationKey("revocationURL", "The base URL device certificates name for their CRL (<url>/crl/…) and OCSP responder (<url>/ocsp).",
                         default: "the listener's address", environment: "HALLMARK_REVOCATION_URL", flag: "revocation-url") {
            guard let url = URL(string: $1), url.scheme == "http", url.host != nil, url.query == nil else {
                throw invalid("revocationURL", $1, "is not an http:// URL", "Give the listener's public address, such as http://pki.example.com.")
            }
            $0.revocationURL = $1
        },
        ConfigurationKey("crlValidity", "Seconds from a CRL's thisUpdate to its nextUpdate (it is re-signed at half).", default: "86400") {
            $0.revocation.crlValidity = TimeInterval(try number($1, "crlValidity", 10...31_536_000))
        },
        ConfigurationKey("ocspValidity", "Seconds from an OCSP answer's thisUpdate to its nextUpdate.", default: "3600") {
            $0.revocation.ocspValidity = TimeInterval(try number($1, "ocspValidity", 10...604_800))
        },
        ConfigurationKey("ocspSigner", "Who signs OCSP answers: delegated (a responder certificate Hallmark rotates) or ca.",
                         default: "delegated") {
            guard ["delegated", "ca"].contains($1) else { throw invalid("ocspSigner", $1, "is neither delegated nor ca", "Use delegated or ca.") }
            $0.revocation.delegatedResponder = $1 == "delegated"
        },
        ConfigurationKey("logOrigin", "The transparency log's origin: the first line of its checkpoints and its key's name (set it to the server's own name).",
                         default: "hallmark.local/log") {
            guard !$1.isEmpty, $1.count <= 200, !$1.contains(where: { $0.isWhitespace || $0 == "+" }) else {
                throw invalid("logOrigin", $1, "is not a name without spaces or '+'", "Use a name such as pki.example.com/log.")
            }
            $0.logOrigin = $1
        },
        ConfigurationKey("mqttTelemetry", "Whether things' messages are kept as telemetry: true or false.", default: "true") {
            guard let value = Bool($1) else { throw invalid("mqttTelemetry", $1, "is not true or false", "Use true or false.") }
            $0.broker.recordTelemetry = value
        },
        ConfigurationKey("mqttMaxPublishRate", "PUBLISH packets a second one MQTT connection may send; a faster client's reads pause (nothing is dropped). 0 for no limit.",
                         default: "100") { $0.broker.maximumPublishRate = try number($1, "mqttMaxPublishRate", 0...10_000_000) },
        ConfigurationKey("maxConnections", "Connections the server holds at most, across its listeners; more are closed at accept.",
                         default: "its file descriptors less a reserve") { $0.maximumConnections = try number($1, "maxConnections", 16...10_000_000) },
        ConfigurationKey("handshakeTimeout", "Seconds a new HTTPS or MQTT connection has to finish its TLS handshake and send its first request or CONNECT.",
                         default: "10") { $0.broker.limits.handshakeTimeout = try number($1, "handshakeTimeout", 1...3600) },
        ConfigurationKey("httpIdleTimeout", "Seconds an HTTPS connection may stay open between requests.", default: "60") {
            $0.broker.limits.idleTimeout = try number($1, "httpIdleTimeout", 1...86_400)
        },
        ConfigurationKey("httpRequestTimeout", "Seconds from an HTTPS request's head to the end of its body.", default: "30") {
            $0.broker.limits.requestTimeout = try number($1, "httpRequestTimeout", 1...3600)
        },
        ConfigurationKey("httpMaxHeaderSize", "The largest HTTPS request head (request line and header fields), in bytes.", default: "16384") {
            $0.broker.limits.maximumHeaderSize = try number($1, "httpMaxHeaderSize", 1024...1_048_576)
        },
        ConfigurationKey("maxPendingPerAddress", "Connections one address may have in their handshake at once, per listener (0 for no limit; established ones do not count).",
                         default: "32") { $0.broker.limits.maximumPendingPerAddress = try number($1, "maxPendingPerAddress", 0...1_000_000) },
    ]

    /// Applies a JSON configuration file whose keys are the table's names (`httpsPort`, ...).
    /// - Throws: `config_invalid` naming the file, or the key and what is wrong with its value.
    public mutating func apply(file path: String) throws {
        let object: [String: Any]
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw CocoaError(.fileReadCorruptFile) }
            object = parsed
        } catch {
            throw HallmarkError(
                .configInvalid, "The configuration file \(path) could not be read as a JSON object.",
                remedy: "Give a JSON object with keys such as \(Self.keys.prefix(3).map(\.name).joined(separator: ", ")).")
        }
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            guard let key = Self.keys.first(where: { $0.name == name }) else {
                throw HallmarkError(
                    .configInvalid, "The configuration file \(path) has a key \(name) that Hallmark does not know.",
                    remedy: "Use the keys `hallmark serve --help` lists: \(Self.keys.map(\.name).joined(separator: ", ")).")
            }
            let text: String
            switch value {
            case let list as [Any]: text = list.map { "\($0)" }.joined(separator: ",")
            case let flag as Bool: text = flag ? "true" : "false"
            default: text = "\(value)"
            }
            try key.apply(&self, text)
        }
    }

    /// Applies the table's `HALLMARK_*` environment variables that are set.
    public mutating func apply(environment: [String: String]) throws {
        for key in Self.keys { if let value = environment[key.environment] { try key.apply(&self, value) } }
    }

    /// Applies flags given as (flag name without dashes, value), in order.
    public mutating func apply(flags: [(String, String)]) throws {
        for (flag, value) in flags {
            guard let key = Self.keys.first(where: { $0.flag == flag }) else {
                throw HallmarkError(.configInvalid, "--\(flag) is not an option of hallmark serve.", remedy: "See `hallmark serve --help`.")
            }
            try key.apply(&self, value)
        }
    }

    /// The table as `serve --help` prints it.
    public static var keysHelp: String {
        keys.map { "--\($0.flag) VALUE\n    \($0.help) Default \($0.defaultValue); file key \($0.name), environment \($0.environment)." }
            .joined(separator: "\n")
    }
}

private func invalid(_ key: String, _ value: String, _ problem: String, _ remedy: String) -> HallmarkError {
    HallmarkError(.configInvalid, "\(key) is '\(value)', which \(problem).", remedy: remedy)
}

private func number(_ value: String, _ key: String, _ range: ClosedRange<Int>) throws(HallmarkError) -> Int {
    guard let number = Int(value), range.contains(number) else {
        throw invalid(key, value, "is not a number from \(range.lowerBound) to \(range.upperBound)", "Set a number in that range.")
    }
    return number
}

private func port(_ value: String, _ key: String) throws(HallmarkError) -> Int { try number(value, key, 0...65535) }

/// Reads and checks a policy file: a document that does not parse stops the server from starting.
private func policyFile(_ path: String) throws(HallmarkError) -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw HallmarkError(.configInvalid, "The policy file \(path) cannot be read.", remedy: "Check the path and its permissions.")
    }
    do {
        _ = try Policy(document: text)
    } catch {
        throw HallmarkError(.configInvalid, "The policy file \(path) is not a valid policy: \(error.reason)", remedy: error.remedy)
    }
    return text
}
