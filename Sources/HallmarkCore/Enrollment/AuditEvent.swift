import Foundation

/// One security decision, as written to the append-only event log.
public struct AuditEvent: Sendable, Hashable, Codable {
    /// Allowed or refused; an alarm is raised for an operator to act on (over-production, a clone).
    public enum Decision: String, Sendable, Codable {
        case allow, refuse, alarm
    }

    public var at: Date
    public var tenant: String
    /// What was decided on: `enroll`, `reenroll`, `allowlist.import`, ...
    public var action: EventAction
    public var decision: Decision
    /// The refusal code, or for an allow what happened (`issued`, `returned_existing`, ...).
    public var code: String
    public var udid: String?
    public var thing: String?
    public var serial: String?
    /// Where the request came from (remote address), when known.
    public var source: String?
    public var detail: String

    public init(
        at: Date, tenant: String, action: EventAction, decision: Decision, code: String, udid: String? = nil,
        thing: String? = nil, serial: String? = nil, source: String? = nil, detail: String
    ) {
        self.at = at
        self.tenant = tenant
        self.action = action
        self.decision = decision
        self.code = code
        self.udid = udid
        self.thing = thing
        self.serial = serial
        self.source = source
        self.detail = detail
    }
}
