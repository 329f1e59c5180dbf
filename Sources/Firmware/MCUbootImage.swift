import Crypto
import HallmarkCore

/// An MCUboot image, parsed: header ‖ payload ‖ protected TLV area ‖ unprotected TLV area.
///
/// Parsing checks every length against the bytes there are, so a truncated or inflated image is a
/// `firmware_image_invalid` refusal, never a trap. Bytes after the unprotected area (a slot's
/// padding and trailer) are ignored.
public struct MCUbootImage: Sendable {
    /// The image's bytes, up to the end of its unprotected TLV area.
    public private(set) var bytes: [UInt8]
    public let header: MCUbootHeader
    /// The protected TLVs (covered by the hash and signature).
    public let protectedTLVs: [MCUbootTLV]
    /// The unprotected TLVs, each with the offset of its value in ``bytes``.
    public let unprotectedTLVs: [(tlv: MCUbootTLV, valueOffset: Int)]

    /// The largest image Hallmark reads: 64 MiB.
    public static let maximumSize = 64 << 20

    /// Parses an image.
    /// - Throws: `firmware_image_invalid` when the bytes are not a well-formed MCUboot image.
    public init(_ bytes: [UInt8]) throws(FirmwareError) {
        guard bytes.count <= Self.maximumSize else { throw .imageInvalid("The image is larger than \(Self.maximumSize >> 20) MiB.") }
        let header = try MCUbootHeader(parsing: bytes)
        let payloadEnd = Int(header.headerSize) + Int(header.imageSize)
        guard payloadEnd <= bytes.count else {
            throw .imageInvalid("The header says the payload ends at byte \(payloadEnd), but the file has \(bytes.count) bytes: it is truncated.")
        }
        var offset = payloadEnd
        var protected: [MCUbootTLV] = []
        if header.protectedTLVSize > 0 {
            let area = try Self.readArea(bytes, at: offset, magic: MCUbootTLV.protectedMagic, name: "protected")
            guard area.total == Int(header.protectedTLVSize) else {
                throw .imageInvalid("The protected TLV area is \(area.total) bytes but the header says \(header.protectedTLVSize).")
            }
            protected = area.records.map(\.tlv)
            offset += area.total
        }
        let unprotected = try Self.readArea(bytes, at: offset, magic: MCUbootTLV.unprotectedMagic, name: "unprotected")
        offset += unprotected.total
        self.bytes = Array(bytes[..<offset])
        self.header = header
        self.protectedTLVs = protected
        self.unprotectedTLVs = unprotected.records
        if header.contentKeyLength != nil, Int(header.imageSize) % 16 != 0 {
            throw .imageInvalid("An encrypted image's payload must be a multiple of 16 bytes; this one is \(header.imageSize).")
        }
    }

    private static func readArea(
        _ bytes: [UInt8], at start: Int, magic: UInt16, name: String
    ) throws(FirmwareError) -> (total: Int, records: [(tlv: MCUbootTLV, valueOffset: Int)]) {
        guard let found = bytes.littleEndian(UInt16.self, at: start), let total = bytes.littleEndian(UInt16.self, at: start + 2) else {
            throw .imageInvalid("The image ends where its \(name) TLV area should start (byte \(start)): it is truncated.")
        }
        guard found == magic else {
            throw .imageInvalid("No \(name) TLV area at byte \(start) (magic 0x\(String(found, radix: 16)), expected 0x\(String(magic, radix: 16))).")
        }
        let end = start + Int(total)
        guard Int(total) >= 4, end <= bytes.count else {
            throw .imageInvalid("The \(name) TLV area says \(total) bytes but the file ends first: it is truncated.")
        }
        var records: [(tlv: MCUbootTLV, valueOffset: Int)] = []
        var offset = start + 4
        while offset < end {
            guard offset + 4 <= end, let type = bytes.littleEndian(UInt16.self, at: offset),
                let length = bytes.littleEndian(UInt16.self, at: offset + 2), offset + 4 + Int(length) <= end
            else {
                throw .imageInvalid("A TLV at byte \(offset) runs past the end of the \(name) area.")
            }
            let valueOffset = offset + 4
            records.append((MCUbootTLV(.init(rawValue: type), Array(bytes[valueOffset..<valueOffset + Int(length)])), valueOffset))
            offset = valueOffset + Int(length)
        }
        return (Int(total), records)
    }

    /// Where the payload is in ``bytes``.
    public var payloadRange: Range<Int> { Int(header.headerSize)..<Int(header.headerSize) + Int(header.imageSize) }
    /// The hashed and signed region's end: header, payload and protected area.
    public var hashedRegionEnd: Int { payloadRange.upperBound + Int(header.protectedTLVSize) }

    /// The first protected TLV of a kind.
    public func protected(_ kind: MCUbootTLV.Kind) -> [UInt8]? { protectedTLVs.first { $0.type == kind }?.value }
    /// The first unprotected TLV of a kind, with where its value is.
    public func unprotected(_ kind: MCUbootTLV.Kind) -> (value: [UInt8], offset: Int)? {
        unprotectedTLVs.first { $0.tlv.type == kind }.map { ($0.tlv.value, $0.valueOffset) }
    }

    /// The security counter (SEC_CNT, read from the protected area only, as MCUboot does).
    public var securityCounter: UInt32? {
        guard let value = protected(.securityCounter), value.count == 4 else { return nil }
        return value.littleEndian(UInt32.self, at: 0)
    }

    /// The SHA256 TLV: the image's identity (its release id), the same in every device's copy.
    public var digest: [UInt8]? { unprotected(.sha256)?.value }

    /// The protected class id (UUID_CID), when the image names the product it is for.
    public var classID: [UInt8]? { protected(.classID) }

    /// Replaces the value of the ENC_EC256 TLV with one of the same length: a device's copy.
    /// - Throws: `firmware_image_invalid` when the image has no ENC_EC256 TLV of that length.
    public mutating func replaceEncryptedKey(with value: [UInt8]) throws(FirmwareError) {
        guard let current = unprotected(.encEC256), current.value.count == value.count else {
            throw .imageInvalid("The image has no ENC_EC256 key of \(value.count) bytes to replace.")
        }
        bytes.replaceSubrange(current.offset..<current.offset + value.count, with: value)
    }
}
