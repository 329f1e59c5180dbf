import NIOCore

/// MQTT's data representations (MQTT 5.0 §1.5): big-endian integers, the variable byte integer,
/// length-prefixed UTF-8 strings and binary data.
extension ByteBuffer {
    mutating func readMQTTByte() throws(MQTTProtocolError) -> UInt8 {
        guard let v = readInteger(as: UInt8.self) else { throw .malformed("packet ends early") }
        return v
    }

    mutating func readMQTTUInt16() throws(MQTTProtocolError) -> UInt16 {
        guard let v = readInteger(as: UInt16.self) else { throw .malformed("packet ends early") }
        return v
    }

    mutating func readMQTTUInt32() throws(MQTTProtocolError) -> UInt32 {
        guard let v = readInteger(as: UInt32.self) else { throw .malformed("packet ends early") }
        return v
    }

    /// A variable byte integer: at most four bytes, 7 bits each.
    mutating func readMQTTVariableInteger() throws(MQTTProtocolError) -> UInt32 {
        var value: UInt32 = 0
        for index in 0..<4 {
            guard let byte = readInteger(as: UInt8.self) else { throw .malformed("packet ends early") }
            value |= UInt32(byte & 0x7F) << (7 * index)
            if byte & 0x80 == 0 { return value }
        }
        throw .malformed("variable byte integer longer than 4 bytes")
    }

    mutating func readMQTTBinary() throws(MQTTProtocolError) -> [UInt8] {
        let length = try readMQTTUInt16()
        guard let bytes = readBytes(length: Int(length)) else { throw .malformed("data length past the packet") }
        return bytes
    }

    /// A UTF-8 string: well-formed, without U+0000 (MQTT 5.0 §1.5.4).
    mutating func readMQTTString() throws(MQTTProtocolError) -> String {
        let length = try readMQTTUInt16()
        guard let view = readSlice(length: Int(length)) else { throw .malformed("string length past the packet") }
        return try view.withUnsafeReadableBytes { raw throws(MQTTProtocolError) -> String in
            if raw.contains(0) { throw .malformed("string contains U+0000") }
            guard let string = String(validating: raw, as: UTF8.self) else {
                throw .malformed("string is not well-formed UTF-8")
            }
            return string
        }
    }

    mutating func writeMQTTVariableInteger(_ value: UInt32) {
        var v = value
        repeat {
            var byte = UInt8(v & 0x7F)
            v >>= 7
            if v > 0 { byte |= 0x80 }
            writeInteger(byte)
        } while v > 0
    }

    mutating func writeMQTTString(_ string: String) {
        writeInteger(UInt16(string.utf8.count))
        writeString(string)
    }

    mutating func writeMQTTBinary(_ bytes: [UInt8]) {
        writeInteger(UInt16(bytes.count))
        writeBytes(bytes)
    }
}

extension UInt32 {
    /// How many bytes the variable byte integer encoding of this value takes.
    var mqttVariableIntegerSize: Int {
        switch self {
        case 0..<128: 1
        case 128..<16_384: 2
        case 16_384..<2_097_152: 3
        default: 4
        }
    }
}
