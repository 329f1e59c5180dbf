/// Device Defender's answers on `…/accepted` and `…/rejected`, in AWS's shape:
/// `{"thingName","reportId","status":"ACCEPTED"|"REJECTED","statusDetails":{"ErrorCode","ErrorMessage"},"timestamp"}`
/// (milliseconds), with Hallmark's stable code beside AWS's (`hallmarkCode`). Always JSON, as AWS
/// answers CBOR reports too.
public enum DefenderReply {
    public static func accepted(thing: String, reportID: Int64, nowMilliseconds: Int64) -> [UInt8] {
        Array(
            ("{\"thingName\":\(JSONText.quoted(thing)),\"reportId\":\(reportID),\"status\":\"ACCEPTED\",\"timestamp\":\(nowMilliseconds)}").utf8)
    }

    public static func rejected(thing: String, reportID: Int64?, error: HallmarkError, nowMilliseconds: Int64) -> [UInt8] {
        var out = "{\"thingName\":\(JSONText.quoted(thing)),"
        if let reportID { out += "\"reportId\":\(reportID)," }
        out += "\"status\":\"REJECTED\",\"statusDetails\":{\"ErrorCode\":\(JSONText.quoted(awsCode(error.code))),"
        out += "\"ErrorMessage\":\(JSONText.quoted(error.reason + " " + error.remedy))},"
        out += "\"hallmarkCode\":\(JSONText.quoted(error.code.rawValue)),\"timestamp\":\(nowMilliseconds)}"
        return Array(out.utf8)
    }

    /// AWS's `ErrorCode` where AWS has one (`InvalidPayload` for a malformed report, `Throttled`
    /// for one too soon); Hallmark's code for what AWS does not check (signatures, replays).
    public static func awsCode(_ code: HallmarkError.Code) -> String {
        switch code {
    case .reportInvalid, .bodyTooLarge: "InvalidPayload"
    case .reportThrottled: "Throttled"
        default: code.rawValue
        }
    }
}

/// Receives what devices report and what the broker sees of them, and answers reports. The broker
/// carries reports here and counts cloud-side metrics; the service behind it verifies, records and
/// evaluates the security profiles.
public protocol SecurityMonitor: Sendable {
    /// Answers a report or a security event (verifies, records, evaluates).
    func submit(_ submission: DefenderSubmission) async -> DefenderAnswer
    /// Counts what the broker saw of a thing. Called on the event loops: it must not block.
    func observe(tenant: String, thing: String, _ kind: CloudObservation)
    /// Where alarms are announced on MQTT (the broker, once it runs).
    func attach(_ publisher: any AlarmPublisher)
}

/// A report or security event and the connection it came over.
public struct DefenderSubmission: Sendable {
    public var topic: DefenderTopic
    public var payload: [UInt8]
    public var tenant: String
    /// The connection's own thing.
    public var thing: String
    /// The connection's certificate (its SHA-256 fingerprint).
    public var fingerprint: String
    public var source: String?

    public init(topic: DefenderTopic, payload: [UInt8], tenant: String, thing: String, fingerprint: String, source: String?) {
        self.topic = topic
        self.payload = payload
        self.tenant = tenant
        self.thing = thing
        self.fingerprint = fingerprint
        self.source = source
    }
}

/// The answer: its payload goes to the request topic + `/accepted` or `/rejected`.
public struct DefenderAnswer: Sendable {
    public var accepted: Bool
    public var payload: [UInt8]

    public init(accepted: Bool, payload: [UInt8]) {
        self.accepted = accepted
        self.payload = payload
    }
}

/// What the broker saw of a thing, for cloud-side metrics (AWS's metric ids in brackets).
public enum CloudObservation: Sendable {
    /// The thing published messages, the largest of so many bytes (`aws:num-messages-sent`, `aws:message-byte-size`).
    case sent(count: Int, largest: Int)
    /// Messages were delivered to the thing (`aws:num-messages-received`).
    case received(count: Int)
    /// The thing was refused a publish, subscribe or connect (`aws:num-authorization-failures`).
    case authorizationFailure
    /// The thing's certificate connected from an address (`aws:num-connection-attempts`, `aws:source-ip-address`).
    case connectionAttempt(source: String?)
    /// The thing's connection ended (`aws:num-disconnects`).
    case disconnect
}
