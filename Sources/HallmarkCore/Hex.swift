extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal, two digits per byte.
    package var hexString: String {
        var text = ""
        text.reserveCapacity(64)
        for byte in self {
            let high = Int(byte >> 4), low = Int(byte & 0x0F)
            text.unicodeScalars.append(hexDigits[high])
            text.unicodeScalars.append(hexDigits[low])
        }
        return text
    }
}

private let hexDigits: [Unicode.Scalar] = Array("0123456789abcdef".unicodeScalars)

extension Array where Element == UInt8 {
    /// Parses lower- or upper-case hexadecimal; nil when the text is not an even run of hex digits.
    package init?(hexString: String) {
        let chars = Array(hexString.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = hexValue(chars[index]), let low = hexValue(chars[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}

private func hexValue(_ char: UInt8) -> UInt8? {
    switch char {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
    default: return nil
    }
}
