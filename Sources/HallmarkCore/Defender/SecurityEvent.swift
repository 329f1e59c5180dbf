/// A security event a device reports, signed, on `$hallmark/things/{thing}/events/cose`: a CBOR
/// map `{"event_id": uint (increasing per thing), "type": text, "time": uint (epoch seconds),
/// "detail": text (optional)}`.
public struct SecurityEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case tamper
        case failoverBoot = "failover-boot"
        case selfTestFailure = "self-test-failure"
        case rollbackRefused = "rollback-refused"
        case clockTampering = "clock-tampering"
    }

    public var eventID: Int64
    public var kind: Kind
    public var time: Int64
    public var detail: String?

    public init(eventID: Int64, kind: Kind, time: Int64, detail: String? = nil) {
        self.eventID = eventID
        self.kind = kind
        self.time = time
        self.detail = detail
    }

    public init(decoding payload: [UInt8]) throws(HallmarkError) {
        let item: CBOR
        do { item = try CBOR(decoding: payload) } catch { throw Self.invalid("the payload is not one CBOR item") }
        var fields = try Fields(item, "the event", invalid: Self.invalid)
        guard let id = try fields.required("event_id", "eid").integer, id > 0 else { throw Self.invalid("event_id must be a positive integer") }
        guard let type = try fields.required("type", "ty").text, let kind = Kind(rawValue: type) else {
            throw Self.invalid("type must be one of " + Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let time = try fields.required("time", "ts").integer, time > 0 else { throw Self.invalid("time must be epoch seconds") }
        if let detail = try fields.optional("detail", "dt") {
            guard let text = detail.text, text.utf8.count <= 1024 else { throw Self.invalid("detail must be text of at most 1024 bytes") }
            self.detail = text
        } else {
            detail = nil
        }
        try fields.finish()
        eventID = id
        self.kind = kind
        self.time = time
    }

    /// The event's CBOR encoding.
    public var encoded: [UInt8] {
        var pairs = [
            CBORPair(.text("event_id"), .unsigned(UInt64(eventID))), CBORPair(.text("type"), .text(kind.rawValue)),
            CBORPair(.text("time"), .unsigned(UInt64(max(0, time)))),
        ]
        if let detail { pairs.append(CBORPair(.text("detail"), .text(detail))) }
        return CBOR.map(pairs).encoded
    }

    @Sendable static func invalid(_ what: String) -> HallmarkError {
        HallmarkError(
            .reportInvalid, "The security event is malformed: \(what).",
            remedy: "Send {\"event_id\", \"type\", \"time\", \"detail\"} as CBOR in a COSE_Sign1.")
    }
}
