/// A device's Device Defender topic: AWS's `$aws/things/{thing}/defender/metrics/{json|cbor}`,
/// and Hallmark's signed forms, `$hallmark/things/{thing}/defender/metrics/cose` (a report in a
/// COSE_Sign1) and `$hallmark/things/{thing}/events/cose` (a security event in a COSE_Sign1).
/// Answers go to the request topic + `/accepted` or `/rejected`.
public struct DefenderTopic: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable {
        case json, cbor, cose
    }

    public enum Kind: Sendable, Hashable {
        /// A metrics report.
        case metrics
        /// A security event (tamper, fail-over boot, …), always signed.
        case event
    }

    public var thingName: String
    public var format: Format
    public var kind: Kind
    /// The request's own topic.
    public var topic: String

    static let awsPrefix = "$aws/things/"
    static let hallmarkPrefix = "$hallmark/things/"
    /// AWS's bound on a thing name in these topics: 128 bytes of UTF-8.
    public static let maximumThingName = 128

    /// Whether a topic is in Device Defender's space (requests and their answers).
    public static func isDefenderTopic(_ topic: String) -> Bool {
        guard topic.hasPrefix(awsPrefix) || topic.hasPrefix(hallmarkPrefix) else { return false }
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count >= 4 && (parts[3] == "defender" || (parts[0] == "$hallmark" && parts[3] == "events"))
    }

    /// Parses a request topic; nil for anything else (an answer's topic, a malformed one).
    public init?(parsing topic: String) {
        // Every PUBLISH is asked: most topics are a device's own, and end here.
        guard topic.utf8.first == UInt8(ascii: "$"), topic.hasPrefix(Self.awsPrefix) || topic.hasPrefix(Self.hallmarkPrefix) else { return nil }
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[1] == "things" else { return nil }
        let thing = String(parts[2])
        guard !thing.isEmpty, thing.utf8.count <= Self.maximumThingName, !thing.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f })
        else { return nil }
        switch (parts[0], parts.count) {
        case ("$aws", 6) where parts[3] == "defender" && parts[4] == "metrics":
            guard let format = Format(rawValue: String(parts[5])), format != .cose else { return nil }
            self.format = format
            kind = .metrics
        case ("$hallmark", 6) where parts[3] == "defender" && parts[4] == "metrics" && parts[5] == "cose":
            format = .cose
            kind = .metrics
        case ("$hallmark", 5) where parts[3] == "events" && parts[4] == "cose":
            format = .cose
            kind = .event
        default:
            return nil
        }
        thingName = thing
        self.topic = topic
    }

    /// The topic of the answer.
    public func reply(accepted: Bool) -> String { topic + (accepted ? "/accepted" : "/rejected") }
}
