extension FixedWidthInteger {
    /// The value's bytes, least significant first.
    var littleEndianBytes: [UInt8] {
        withUnsafeBytes(of: littleEndian) { Array($0) }
    }
}

extension Collection where Element == UInt8, Index == Int {
    /// Reads a little-endian integer at `offset`; nil past the end.
    func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= startIndex, offset <= endIndex - size else { return nil }
        var value: T = 0
        for index in 0..<size { value |= T(self[offset + index]) << (8 * index) }
        return value
    }
}
