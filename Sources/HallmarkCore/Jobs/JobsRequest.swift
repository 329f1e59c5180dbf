import Foundation

/// A jobs API request's JSON payload, parsed and checked as AWS IoT Jobs checks it.
public struct JobsRequest: Sendable, Hashable {
    public var clientToken: String?
    public var statusDetails: [String: String]?
    /// Minutes for the step timer; -1 (update only) drops it.
    public var stepTimeoutInMinutes: Int?
    public var executionNumber: Int?
    public var includeJobDocument: Bool?
    public var status: JobExecution.Status?
    public var expectedVersion: Int?
    public var includeJobExecutionState: Bool

    public init(
        clientToken: String? = nil, statusDetails: [String: String]? = nil, stepTimeoutInMinutes: Int? = nil, executionNumber: Int? = nil,
        includeJobDocument: Bool? = nil, status: JobExecution.Status? = nil, expectedVersion: Int? = nil, includeJobExecutionState: Bool = false
    ) {
        self.clientToken = clientToken
        self.statusDetails = statusDetails
        self.stepTimeoutInMinutes = stepTimeoutInMinutes
        self.executionNumber = executionNumber
        self.includeJobDocument = includeJobDocument
        self.status = status
        self.expectedVersion = expectedVersion
        self.includeJobExecutionState = includeJobExecutionState
    }

    /// The largest payload read: AWS's MQTT payload cap is 128 KB; a request is far smaller.
    public static let maximumSize = 16 * 1024

    /// The client token of a payload that may not parse, so a rejection can still echo it.
    public static func clientToken(in payload: [UInt8]) -> String? {
        ((try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any])?["clientToken"] as? String
    }

    /// Parses a payload for an operation.
    /// - Throws: `InvalidJson` when it is not a JSON object, `InvalidRequest` when a field has the
    ///   wrong type or value.
    public init(parsing payload: [UInt8], for operation: JobsTopic.Operation) throws(JobsRejection) {
        self.init()
        guard payload.count <= Self.maximumSize else { throw JobsRejection(.invalidRequest, "The request is larger than \(Self.maximumSize) bytes.") }
        let object: [String: Any]
        if payload.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            object = [:]
        } else {
            guard let parsed = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else {
                throw JobsRejection(.invalidJson, "The payload is not a JSON object.")
            }
            object = parsed
        }
        if let token = object["clientToken"] {
            guard let text = token as? String, (1...64).contains(text.utf8.count) else {
                throw JobsRejection(.invalidRequest, "clientToken must be a string of 1 to 64 characters.")
            }
            clientToken = text
        }
        if let details = object["statusDetails"] { statusDetails = try Self.statusDetails(details) }
        if let value = object["stepTimeoutInMinutes"] {
            guard let minutes = Self.integer(value), minutes == -1 || (1...10_080).contains(minutes) else {
                throw JobsRejection(.invalidRequest, "stepTimeoutInMinutes must be 1 to 10080 (or -1 to drop the step timer).")
            }
            if minutes == -1, case .startNext = operation {
                throw JobsRejection(.invalidRequest, "stepTimeoutInMinutes must be 1 to 10080.")
            }
            stepTimeoutInMinutes = minutes
        }
        if let value = object["executionNumber"] {
            guard let number = Self.integer(value), number >= 1 else { throw JobsRejection(.invalidRequest, "executionNumber must be a positive integer.") }
            executionNumber = number
        }
        if let value = object["includeJobDocument"] {
            guard let flag = Self.boolean(value) else { throw JobsRejection(.invalidRequest, "includeJobDocument must be true or false.") }
            includeJobDocument = flag
        }
        if let value = object["includeJobExecutionState"] {
            guard let flag = Self.boolean(value) else { throw JobsRejection(.invalidRequest, "includeJobExecutionState must be true or false.") }
            includeJobExecutionState = flag
        }
        if let value = object["expectedVersion"] {
            // AWS takes a number or a string of digits (the embedded C SDK sends a string).
            let version = Self.integer(value) ?? (value as? String).flatMap { Int($0) }
            guard let version, version >= 0 else { throw JobsRejection(.invalidRequest, "expectedVersion must be a non-negative integer.") }
            expectedVersion = version
        }
        if case .update = operation {
            guard let text = object["status"] as? String else { throw JobsRejection(.invalidRequest, "status is required.") }
            guard let parsed = JobExecution.Status(rawValue: text), parsed.isDeviceSettable else {
                throw JobsRejection(.invalidRequest, "status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED.")
            }
            status = parsed
        }
    }

    static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !isBoolean(number) else { return nil }
        let double = number.doubleValue
        guard double == double.rounded(), abs(double) < 1e15 else { return nil }
        return number.intValue
    }

    /// JSON's true and false come back as NSNumbers of type `c` (char); numbers never do.
    public static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    static func boolean(_ value: Any) -> Bool? {
        guard let number = value as? NSNumber, isBoolean(number) else { return nil }
        return number.boolValue
    }

    /// AWS's rules: a flat map of at most 10 string values of 1 to 1024 characters, keys
    /// `[a-zA-Z0-9:_-]{1,128}`, no control characters.
    static func statusDetails(_ value: Any) throws(JobsRejection) -> [String: String] {
        guard let map = value as? [String: Any] else { throw JobsRejection(.invalidRequest, "statusDetails must be an object of strings.") }
        guard map.count <= 10 else { throw JobsRejection(.invalidRequest, "statusDetails holds at most 10 entries.") }
        var details: [String: String] = [:]
        for (key, item) in map {
            guard JobsTopic.isValidThingName(key) else { throw JobsRejection(.invalidRequest, "A statusDetails key must match [a-zA-Z0-9:_-]{1,128}.") }
            guard let text = item as? String, (1...1024).contains(text.count), !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f })
            else {
                throw JobsRejection(.invalidRequest, "statusDetails[\(key)] must be a string of 1 to 1024 characters without control characters.")
            }
            details[key] = text
        }
        return details
    }
}
