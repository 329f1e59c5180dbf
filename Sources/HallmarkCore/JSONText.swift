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
}
