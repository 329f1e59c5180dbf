import HallmarkCore
import Foundation

/// The exact bytes of an event as a leaf of the transparency log: a JSON object with its fields in
/// a fixed order and nothing else, so that the same row always gives the same bytes (and the
/// same leaf hash), and an auditor can read what each leaf says.
public enum EventLeaf {
    /// The columns, in the order the leaf has them.
    static let columns = ["id", "at", "tenant_id", "action", "decision", "code", "udid", "thing", "serial", "source", "detail"]

    public static func bytes(
        id: Int64, at: Double, tenant: String, action: String, decision: String, code: String, udid: String?, thing: String?,
        serial: String?, source: String?, detail: String
    ) -> [UInt8] {
        var out = "{\"id\":\(id),\"at\":\(at.description)"
        for (key, value) in [
            ("tenant", tenant), ("action", action), ("decision", decision), ("code", code), ("udid", udid), ("thing", thing),
            ("serial", serial), ("source", source), ("detail", detail),
        ] as [(String, String?)] {
            out += ",\"\(key)\":" + (value.map(quoted) ?? "null")
        }
        return Array((out + "}").utf8)
    }

    /// A JSON string, escaped as every leaf has been (``JSONText/quoted(_:)``).
    static func quoted(_ text: String) -> String { JSONText.quoted(text) }
}
