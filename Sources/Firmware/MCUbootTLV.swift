/// One type-length-value record of an MCUboot image's TLV areas.
public struct MCUbootTLV: Sendable, Hashable {
    public var type: Kind
    public var value: [UInt8]

    public init(_ type: Kind, _ value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// A TLV type (`IMAGE_TLV_*`), a 16-bit value.
    public struct Kind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        public static let keyHash = Kind(rawValue: 0x01)
        public static let publicKey = Kind(rawValue: 0x02)
        public static let sha256 = Kind(rawValue: 0x10)
        public static let ecdsaSignature = Kind(rawValue: 0x22)
        public static let encEC256 = Kind(rawValue: 0x32)
        public static let securityCounter = Kind(rawValue: 0x50)
        public static let vendorID = Kind(rawValue: 0x74)
        public static let classID = Kind(rawValue: 0x75)

        public var description: String { "0x" + String(rawValue, radix: 16) }
    }

    /// The protected area's magic (`IMAGE_TLV_PROT_INFO_MAGIC`).
    public static let protectedMagic: UInt16 = 0x6908
    /// The unprotected area's magic (`IMAGE_TLV_INFO_MAGIC`).
    public static let unprotectedMagic: UInt16 = 0x6907

    /// An area's bytes: `{u16 magic, u16 total}` then each TLV as `{u16 type, u16 length, value}`.
    /// An empty list is an empty area (no info either), as imgtool writes it.
    static func area(magic: UInt16, _ records: [MCUbootTLV]) -> [UInt8] {
        guard !records.isEmpty else { return [] }
        let total = 4 + records.reduce(0) { $0 + 4 + $1.value.count }
        var bytes = magic.littleEndianBytes + UInt16(total).littleEndianBytes
        for record in records {
            bytes += record.type.rawValue.littleEndianBytes + UInt16(record.value.count).littleEndianBytes + record.value
        }
        return bytes
    }
}
