import HallmarkCore

/// The broker's settings.
public struct BrokerConfiguration: Sendable, Hashable, Codable {
    /// The mutual-TLS listener.
    public var host: String
    public var port: Int
    /// An optional plain-TCP listener for local development and conformance suites. It binds to
    /// 127.0.0.1 only; clients on it have no certificate and are authorised by ``plainPolicy``.
    public var plainPort: Int?
    /// A second mutual-TLS listener, as AWS IoT's port 443, where the AWS IoT Device SDKs connect
    /// by default with ALPN `x-amzn-mqtt-ca` (both listeners accept that ALPN, and `mqtt`).
    public var alpnPort: Int? = nil
    /// The policy document plain-TCP clients get (default: ``openPolicy``, everything but reserved topics).
    public var plainPolicy: String
    /// The largest packet accepted, announced to MQTT 5 clients.
    public var maximumPacketSize: Int
    /// Messages queued per session (for an offline session, or a slow consumer) before new ones are dropped.
    public var maximumQueuedMessages: Int
    /// QoS 1/2 messages in flight to a 3.1.1 client (MQTT 5 clients announce their Receive Maximum).
    public var maximumInflight311: Int
    /// Topic aliases a client may set up (MQTT 5).
    public var topicAliasMaximum: Int
    /// Whether a thing's published messages are kept as telemetry.
    public var recordTelemetry: Bool
    /// Bounds on a client's keep-alive, in seconds: a shorter one is raised to the minimum, a
    /// longer one (or none, 0) lowered to the maximum; MQTT 5 clients are told in CONNACK's
    /// ServerKeepAlive. AWS IoT Core holds clients to 30–1200 s.
    /// QoS 2 messages a client may have sent and not yet released (MQTT 5 Receive Maximum,
    /// announced in CONNACK; one more ends the connection with 0x93).
    public var receiveMaximum: Int = 100
    public var keepAliveMinimum: Int = 0
    public var keepAliveMaximum: Int = 1200
    /// How long a connection has to finish its handshake and CONNECT, and how many one address
    /// may have doing so at once (the mutual-TLS listeners; the plain one is loopback only).
    public var limits = ConnectionLimits()
    /// PUBLISH packets a second one connection may send (AWS IoT Core's limit is 100); a faster
    /// client's reads pause until it is back under, so nothing is dropped. 0 for no limit.
    public var maximumPublishRate: Int = 100

    public init(
        host: String = "0.0.0.0", port: Int = 8883, plainPort: Int? = nil,
        plainPolicy: String = BrokerConfiguration.openPolicy, maximumPacketSize: Int = 1_048_576,
        maximumQueuedMessages: Int = 1000, maximumInflight311: Int = 100, topicAliasMaximum: Int = 16,
        recordTelemetry: Bool = true
    ) {
        self.host = host
        self.port = port
        self.plainPort = plainPort
        self.plainPolicy = plainPolicy
        self.maximumPacketSize = maximumPacketSize
        self.maximumQueuedMessages = maximumQueuedMessages
        self.maximumInflight311 = maximumInflight311
        self.topicAliasMaximum = topicAliasMaximum
        self.recordTelemetry = recordTelemetry
    }

    /// The keep-alive a client that asked for `requested` seconds gets.
    public func keepAlive(requested: UInt16) -> UInt16 {
        let maximum = max(keepAliveMaximum, 1)
        let asked = requested == 0 ? maximum : Int(requested)
        return UInt16(clamping: min(max(asked, keepAliveMinimum), maximum))
    }

    /// Everything but the reserved `$` topics (`$aws/`, `$SYS/`, `$hallmark/`; `$share/` is no topic
    /// to publish to): what a conformance suite or a local tool expects of a broker. Replaced with
    /// `serve --mqtt-plain-policy FILE`.
    public static let openPolicy = """
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
          {"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"],
           "Resource": ["topic/$aws/*", "topic/$SYS/*", "topic/$hallmark/*", "topic/$share/*"]},
          {"Effect": "Deny", "Action": "iot:Subscribe",
           "Resource": ["topicfilter/$aws/*", "topicfilter/$SYS/*", "topicfilter/$hallmark/*"]}
        ]}
        """
}
