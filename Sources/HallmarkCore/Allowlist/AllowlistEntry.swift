/// One device a manufacturer vouches for: its UDID and its root-of-trust public key.
public struct AllowlistEntry: Hashable, Sendable {
    /// The device's unique id.
    public var udid: UDID
    /// The root-of-trust public key burnt into the device.
    public var key: DeviceKey
    /// Where the entry was read (file line or JSON index), for reports.
    public var line: Int
    /// The device's firmware decryption key (P-256, separate from the root of trust), when the
    /// file lists one (the optional `firmware_key` column).
    public var firmwareKey: DeviceKey?

    public init(udid: UDID, key: DeviceKey, line: Int, firmwareKey: DeviceKey? = nil) {
        self.udid = udid
        self.key = key
        self.line = line
        self.firmwareKey = firmwareKey
    }
}

/// Something wrong with one allowlist row, with where it was.
public struct AllowlistProblem: Hashable, Sendable, CustomStringConvertible {
    /// How bad the problem is.
    public enum Severity: String, Sendable {
        /// The row cannot be imported.
        case invalid
        /// The row repeats an identical earlier row or record; it is skipped and changes nothing.
        case duplicate
    }

    /// The line (CSV) or 1-based entry index (JSON).
    public var line: Int
    /// The UDID of the row, when it could be read.
    public var udid: String?
    public var severity: Severity
    public var error: HallmarkError

    public init(line: Int, udid: String?, severity: Severity, error: HallmarkError) {
        self.line = line
        self.udid = udid
        self.severity = severity
        self.error = error
    }

    public var description: String {
        let who = udid.map { " (\($0))" } ?? ""
        return "line \(line)\(who): \(severity == .duplicate ? "duplicate" : error.code.rawValue): \(error.reason)"
    }
}
