/// A device's request on the AWS IoT Jobs MQTT API: `$aws/things/{thing}/jobs/{operation}`.
public struct JobsTopic: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        /// `get`: GetPendingJobExecutions.
        case getPending
        /// `start-next`: StartNextPendingJobExecution.
        case startNext
        /// `{jobId}/get` (`$next` allowed): DescribeJobExecution.
        case describe(jobID: String)
        /// `{jobId}/update`: UpdateJobExecution.
        case update(jobID: String)
    }

    public var thingName: String
    public var operation: Operation
    /// The request's own topic; replies go to it + `/accepted` or `/rejected`.
    public var topic: String

    static let prefix = "$aws/things/"

    /// Whether a topic is in the jobs API's space (what the broker hands to the jobs service).
    public static func isJobsTopic(_ topic: String) -> Bool {
        guard topic.hasPrefix(prefix) else { return false }
        let parts = topic.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        return parts.count >= 3 && parts[1] == "jobs"
    }

    /// Parses a request topic.
    /// - Throws: `InvalidTopic` for a topic in the jobs space that names no operation (replies,
    ///   `notify`, a bad job id).
    public init(parsing topic: String) throws(JobsRejection) {
        guard Self.isJobsTopic(topic) else { throw JobsRejection(.invalidTopic, "Not a jobs topic.") }
        let parts = topic.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        thingName = parts[0]
        self.topic = topic
        guard Self.isValidThingName(thingName) else { throw JobsRejection(.invalidTopic, "The topic's thing name is not valid.") }
        let rest = Array(parts.dropFirst(2))
        if rest == ["get"] {
            operation = .getPending
        } else if rest == ["start-next"] {
            operation = .startNext
        } else if rest.count == 2, rest[1] == "get", rest[0] == "$next" || Self.isValidJobID(rest[0]) {
            operation = .describe(jobID: rest[0])
        } else if rest.count == 2, rest[1] == "update", Self.isValidJobID(rest[0]) {
            operation = .update(jobID: rest[0])
        } else {
            throw JobsRejection(.invalidTopic, "The topic names no jobs operation (get, start-next, {jobId}/get, {jobId}/update).")
        }
    }

    /// AWS's job id rule: `[a-zA-Z0-9_-]{1,64}`.
    public static func isValidJobID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// AWS's thing name rule: `[a-zA-Z0-9:_-]{1,128}`.
    public static func isValidThingName(_ name: String) -> Bool {
        (1...128).contains(name.utf8.count)
            && name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ":") }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
