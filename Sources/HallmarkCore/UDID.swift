/// A device's unique identifier, as burnt into its silicon and carried in its CSR subject.
///
/// A UDID is 1 to 64 characters (the X.520 upper bound of a common name) of letters, digits and
/// `-`, `_`, `.`, `:`; it is compared exactly.
public struct UDID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String

    /// The longest UDID accepted: the upper bound of an X.520 common name.
    public static let maximumLength = 64

    /// Validates and wraps a UDID.
    /// - Throws: ``HallmarkError`` with code `udid_invalid` when the text is empty, too long or has
    ///   characters outside the allowed set.
    public init(validating text: String) throws(HallmarkError) {
        guard !text.isEmpty, text.utf8.count <= Self.maximumLength else {
            throw HallmarkError(
                .udidInvalid, "A UDID must be 1 to \(Self.maximumLength) characters; got \(text.utf8.count).",
                remedy: "Use the device's unique id as the CSR subject CN (or serialNumber).")
        }
        guard text.utf8.allSatisfy(Self.isAllowed) else {
            throw HallmarkError(
                .udidInvalid, "A UDID may hold only letters, digits and - _ . : characters.",
                remedy: "Use the device's unique id, as printed on its manifest, as the CSR subject CN.")
        }
        self.rawValue = text
    }

    public init?(rawValue: String) {
        guard let udid = try? UDID(validating: rawValue) else { return nil }
        self = udid
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try UDID(validating: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    public static func < (lhs: UDID, rhs: UDID) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
            UInt8(ascii: "."), UInt8(ascii: ":"):
            return true
        default:
            return false
        }
    }
}
