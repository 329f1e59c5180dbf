/// JSON text written by hand where its exact bytes matter (log leaves) or Foundation's encoder
/// costs too much (answers on hot paths).
public enum JSONText {
    /// A JSON string (RFC 8259 §7): quote, backslash and control characters escaped, everything
    /// else as it is.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A JSON number: integral values without a fraction, others in Swift's shortest form;
    /// JSON has no infinity or NaN, which are written as 0.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
