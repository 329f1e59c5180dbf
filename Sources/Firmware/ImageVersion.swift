/// An MCUboot image version, `major.minor.revision+build` (header bytes 0x14–0x1B).
///
/// Ordering compares major, minor and revision only, as MCUboot does unless it is built with
/// `MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER`.
public struct ImageVersion: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public var major: UInt8
    public var minor: UInt8
    public var revision: UInt16
    public var build: UInt32

    public init(major: UInt8, minor: UInt8 = 0, revision: UInt16 = 0, build: UInt32 = 0) {
        self.major = major
        self.minor = minor
        self.revision = revision
        self.build = build
    }

    /// Parses `1`, `1.2`, `1.2.3` or `1.2.3+4`, as imgtool's `-v` does; nil for anything else.
    public init?(parsing text: String) {
        let (core, buildText) = text.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            .splitPair()
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }) else { return nil }
        guard let major = UInt8(parts[0]),
            let minor = parts.count > 1 ? UInt8(parts[1]) : 0,
            let revision = parts.count > 2 ? UInt16(parts[2]) : 0
        else { return nil }
        var build: UInt32 = 0
        if let buildText {
            guard parts.count == 3, !buildText.isEmpty, buildText.allSatisfy(\.isASCIIDigit), let value = UInt32(buildText) else { return nil }
            build = value
        }
        self.init(major: major, minor: minor, revision: revision, build: build)
    }

    /// The security counter imgtool's `-s auto` derives: `major << 24 | minor << 16 | revision`.
    public var automaticSecurityCounter: UInt32 {
        UInt32(major) << 24 | UInt32(minor) << 16 | UInt32(revision)
    }

    public var description: String {
        "\(major).\(minor).\(revision)" + (build == 0 ? "" : "+\(build)")
    }

    public static func < (lhs: ImageVersion, rhs: ImageVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.revision) < (rhs.major, rhs.minor, rhs.revision)
    }

    public static func == (lhs: ImageVersion, rhs: ImageVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.revision, lhs.build) == (rhs.major, rhs.minor, rhs.revision, rhs.build)
    }

    /// The eight header bytes: `u8 major, u8 minor, u16 revision, u32 build`, little-endian.
    var headerBytes: [UInt8] {
        [major, minor] + revision.littleEndianBytes + build.littleEndianBytes
    }
}

extension Array where Element == String {
    fileprivate func splitPair() -> (String, String?) { (self[0], count > 1 ? self[1] : nil) }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
