/// The 32-byte MCUboot image header (`struct image_header`, little-endian).
public struct MCUbootHeader: Sendable, Hashable {
    /// `IMAGE_MAGIC`, 0x96f3b83d.
    public static let magic: UInt32 = 0x96f3_b83d
    /// The header's own size.
    public static let size = 32

    public var loadAddress: UInt32
    /// Where the payload starts (the header padded to this size).
    public var headerSize: UInt16
    /// The protected TLV area's size, its 4-byte info included; 0 when there is none.
    public var protectedTLVSize: UInt16
    /// The payload's size (a multiple of 16 when encrypted).
    public var imageSize: UInt32
    public var flags: Flags
    public var version: ImageVersion

    /// The header flags (`IMAGE_F_*`).
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let pic = Flags(rawValue: 0x1)
        public static let encryptedAES128 = Flags(rawValue: 0x4)
        public static let encryptedAES256 = Flags(rawValue: 0x8)
        public static let nonBootable = Flags(rawValue: 0x10)
        public static let ramLoad = Flags(rawValue: 0x20)
        public static let romFixed = Flags(rawValue: 0x100)
    }

    public init(
        loadAddress: UInt32 = 0, headerSize: UInt16, protectedTLVSize: UInt16, imageSize: UInt32, flags: Flags, version: ImageVersion
    ) {
        self.loadAddress = loadAddress
        self.headerSize = headerSize
        self.protectedTLVSize = protectedTLVSize
        self.imageSize = imageSize
        self.flags = flags
        self.version = version
    }

    /// Reads a header from the first 32 bytes.
    /// - Throws: `firmware_image_invalid` when the bytes are too few or the magic is not MCUboot's.
    public init(parsing bytes: [UInt8]) throws(FirmwareError) {
        guard bytes.count >= Self.size, bytes.littleEndian(UInt32.self, at: 0) == Self.magic else {
            throw .imageInvalid("The file does not start with an MCUboot image header (magic 0x96f3b83d).")
        }
        loadAddress = bytes.littleEndian(UInt32.self, at: 4)!
        headerSize = bytes.littleEndian(UInt16.self, at: 8)!
        protectedTLVSize = bytes.littleEndian(UInt16.self, at: 10)!
        imageSize = bytes.littleEndian(UInt32.self, at: 12)!
        flags = Flags(rawValue: bytes.littleEndian(UInt32.self, at: 16)!)
        version = ImageVersion(
            major: bytes[20], minor: bytes[21], revision: bytes.littleEndian(UInt16.self, at: 22)!,
            build: bytes.littleEndian(UInt32.self, at: 24)!)
        guard Int(headerSize) >= Self.size else {
            throw .imageInvalid("The header size \(headerSize) is smaller than the header itself.")
        }
    }

    /// The header's 32 bytes.
    public var bytes: [UInt8] {
        Self.magic.littleEndianBytes + loadAddress.littleEndianBytes + headerSize.littleEndianBytes
            + protectedTLVSize.littleEndianBytes + imageSize.littleEndianBytes + flags.rawValue.littleEndianBytes
            + version.headerBytes + UInt32(0).littleEndianBytes
    }

    /// The content key's length the flags announce: 16, 32, or nil when the image is not encrypted.
    public var contentKeyLength: Int? {
        if flags.contains(.encryptedAES256) { return 32 }
        if flags.contains(.encryptedAES128) { return 16 }
        return nil
    }
}
