import Foundation

/// What Hallmark announces when a behaviour's alarm changes or a device reports a security event:
/// JSON on the tenant's MQTT topic `$hallmark/alarms/<profile>/<thing>` (or
/// `$hallmark/alarms/events/<thing>`, `$hallmark/alarms/reports-missing/<thing>`) and to the
/// webhook. A violation's JSON follows AWS's `ViolationEvent` (`violationId`, `thingName`,
/// `securityProfileName`, `behavior`, `metricValue`, `violationEventType`, `violationEventTime`
/// in seconds) with Hallmark's `mitigations` and `tenant`.
public enum AlarmMessage {
    public static let topicPrefix = "$hallmark/alarms/"

    public static func violationTopic(profile: String, thing: String) -> String { topicPrefix + profile + "/" + thing }

    public static func violation(
        id: String, tenant: String, thing: String, profile: String, behavior: Behavior, value: String, type: String, mitigations: [String], at: Date
    ) -> [UInt8] {
        var out = "{\"violationId\":\(JSONText.quoted(id)),\"tenant\":\(JSONText.quoted(tenant)),\"thingName\":\(JSONText.quoted(thing)),"
        out += "\"securityProfileName\":\(JSONText.quoted(profile)),"
        out += "\"behavior\":{\"name\":\(JSONText.quoted(behavior.name)),\"metric\":\(JSONText.quoted(behavior.metric))},"
        out += "\"metricValue\":\(value),\"violationEventType\":\(JSONText.quoted(type)),"
        out += "\"violationEventTime\":\(JSONText.number(at.timeIntervalSince1970.rounded(.down))),"
        out += "\"mitigations\":[" + mitigations.map(JSONText.quoted).joined(separator: ",") + "]}"
        return Array(out.utf8)
    }

    public static func securityEvent(tenant: String, thing: String, event: SecurityEvent, at: Date) -> [UInt8] {
        var out = "{\"tenant\":\(JSONText.quoted(tenant)),\"thingName\":\(JSONText.quoted(thing)),\"eventId\":\(event.eventID),"
        out += "\"type\":\(JSONText.quoted(event.kind.rawValue)),\"time\":\(event.time),\"signed\":true,"
        if let detail = event.detail { out += "\"detail\":\(JSONText.quoted(detail))," }
        out += "\"receivedAt\":\(JSONText.number(at.timeIntervalSince1970.rounded(.down)))}"
        return Array(out.utf8)
    }

    public static func reportsMissing(tenant: String, thing: String, lastReport: Date, at: Date) -> [UInt8] {
        Array(
            ("{\"tenant\":\(JSONText.quoted(tenant)),\"thingName\":\(JSONText.quoted(thing)),\"type\":\"reports-missing\","
                + "\"lastReport\":\(JSONText.number(lastReport.timeIntervalSince1970.rounded(.down))),"
                + "\"at\":\(JSONText.number(at.timeIntervalSince1970.rounded(.down)))}").utf8)
    }
}

/// Where alarms are published on MQTT: the broker, in the tenant's own space.
public protocol AlarmPublisher: Sendable {
    func publishAlarm(tenant: String, topic: String, payload: [UInt8])
}
