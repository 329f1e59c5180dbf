import Foundation

/// A CBOR data item (RFC 8949), as AWS IoT's `/cbor` APIs carry them: definite lengths only
/// (what devices' encoders write), floats of every width, tags kept.
public indirect enum CBOR: Sendable, Hashable {
    case unsigned(UInt64)
    /// The value is `-1 - n`.
    case negative(UInt64)
    case bytes([UInt8])
    case text(String)
    case array([CBOR])
    case map([CBORPair])
    case tagged(UInt64, CBOR)
    case bool(Bool)
    case null
    case undefined
    case double(Double)

    /// The deepest nesting a decoded item may have: no stack exhausted by a hostile payload.
    public static let maximumDepth = 32

    /// Decodes one item that fills `bytes` exactly.
    /// - Throws: `body_encoding_invalid` for anything else (truncated, trailing bytes, indefinite
    ///   lengths, text that is not UTF-8, nesting deeper than ``maximumDepth``).
    public init(decoding bytes: [UInt8]) throws(HallmarkError) {
        var reader = Reader(bytes: bytes)
        self = try reader.item(depth: 0)
        guard reader.offset == bytes.count else { throw Reader.invalid("bytes after the CBOR item") }
    }

    /// The item's encoding, lengths in their shortest form.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    func encode(into out: inout [UInt8]) {
        switch self {
        case .unsigned(let value): Self.head(0, value, &out)
        case .negative(let value): Self.head(1, value, &out)
        case .bytes(let bytes):
            Self.head(2, UInt64(bytes.count), &out)
            out += bytes
        case .text(let text):
            Self.head(3, UInt64(text.utf8.count), &out)
            out += Array(text.utf8)
        case .array(let items):
            Self.head(4, UInt64(items.count), &out)
            for item in items { item.encode(into: &out) }
        case .map(let pairs):
            Self.head(5, UInt64(pairs.count), &out)
            for pair in pairs {
                pair.key.encode(into: &out)
                pair.value.encode(into: &out)
            }
        case .tagged(let tag, let item):
            Self.head(6, tag, &out)
            item.encode(into: &out)
        case .bool(let value): out.append(value ? 0xf5 : 0xf4)
        case .null: out.append(0xf6)
        case .undefined: out.append(0xf7)
        case .double(let value):
            out.append(0xfb)
            withUnsafeBytes(of: value.bitPattern.bigEndian) { out += $0 }
        }
    }

    static func head(_ major: UInt8, _ value: UInt64, _ out: inout [UInt8]) {
        let type = major << 5
        switch value {
        case 0..<24: out.append(type | UInt8(value))
        case 24...0xff: out += [type | 24, UInt8(value)]
        case 0x100...0xffff: out += [type | 25, UInt8(value >> 8), UInt8(value & 0xff)]
        case 0x10000...0xffff_ffff:
            out.append(type | 26)
            withUnsafeBytes(of: UInt32(value).bigEndian) { out += $0 }
        default:
            out.append(type | 27)
            withUnsafeBytes(of: value.bigEndian) { out += $0 }
        }
    }

    /// The value of a text-keyed map entry.
    public subscript(key: String) -> CBOR? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == .text(key) }?.value
    }

    public var text: String? {
        if case .text(let text) = self { return text }
        return nil
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        static func invalid(_ what: String) -> HallmarkError {
            HallmarkError(.bodyEncodingInvalid, "The payload is not valid CBOR: \(what).", remedy: "Encode it as one definite-length CBOR item (RFC 8949).")
        }

        mutating func take(_ count: Int) throws(HallmarkError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else { throw Self.invalid("it ends early") }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        mutating func argument(_ info: UInt8) throws(HallmarkError) -> UInt64 {
            switch info {
            case 0..<24: return UInt64(info)
            case 24...27:
                return try take(1 << Int(info - 24)).reduce(0) { $0 << 8 | UInt64($1) }
            case 31: throw Self.invalid("indefinite lengths are not accepted")
            default: throw Self.invalid("a reserved additional-information value")
            }
        }

        mutating func length(_ info: UInt8) throws(HallmarkError) -> Int {
            let value = try argument(info)
            guard value <= UInt64(bytes.count - offset) else { throw Self.invalid("a length longer than the payload") }
            return Int(value)
        }

        mutating func item(depth: Int) throws(HallmarkError) -> CBOR {
            guard depth < CBOR.maximumDepth else { throw Self.invalid("nesting deeper than \(CBOR.maximumDepth)") }
            let initial = try take(1).first!
            let major = initial >> 5
            let info = initial & 0x1f
            switch major {
            case 0: return .unsigned(try argument(info))
            case 1: return .negative(try argument(info))
            case 2: return .bytes(Array(try take(try length(info))))
            case 3:
                guard let text = String(validating: try take(try length(info)), as: UTF8.self) else { throw Self.invalid("text that is not UTF-8") }
                return .text(text)
            case 4:
                let count = try length(info)
                var items: [CBOR] = []
                for _ in 0..<count { items.append(try item(depth: depth + 1)) }
                return .array(items)
            case 5:
                let count = try length(info)
                var pairs: [CBORPair] = []
                for _ in 0..<count { pairs.append(CBORPair(try item(depth: depth + 1), try item(depth: depth + 1))) }
                return .map(pairs)
            case 6: return .tagged(try argument(info), try item(depth: depth + 1))
            default:
                switch info {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22: return .null
                case 23: return .undefined
                case 25: return .double(Double(Float16(bitPattern: UInt16(try argument(25)))))
                case 26: return .double(Double(Float(bitPattern: UInt32(try argument(26)))))
                case 27: return .double(Double(bitPattern: try argument(27)))
                default: throw Self.invalid("an unsupported simple value")
                }
            }
        }
    }
}

/// One entry of a CBOR map.
public struct CBORPair: Sendable, Hashable {
    public var key: CBOR
    public var value: CBOR

    public init(_ key: CBOR, _ value: CBOR) {
        self.key = key
        self.value = value
    }
}

extension CBOR {
    /// The JSON-like value (`[String: Any]`, `[Any]`, `String`, `NSNumber`, `NSNull`) of an item
    /// whose maps have text keys; nil for one that has none (byte strings, other keys, tags).
    public var jsonObject: Any? {
        switch self {
        case .unsigned(let value): return NSNumber(value: value)
        case .negative(let value): return value < UInt64(Int64.max) ? NSNumber(value: -1 - Int64(value)) : nil
        case .text(let text): return text
        case .bool(let value): return NSNumber(value: value)
        case .null: return NSNull()
        case .double(let value): return NSNumber(value: value)
        case .array(let items):
            var out: [Any] = []
            for item in items {
                guard let value = item.jsonObject else { return nil }
                out.append(value)
            }
            return out
        case .map(let pairs):
            var out: [String: Any] = [:]
            for pair in pairs {
                guard case .text(let key) = pair.key, let value = pair.value.jsonObject else { return nil }
                out[key] = value
            }
            return out
        case .bytes, .tagged, .undefined: return nil
        }
    }

    /// The item for a JSON-like value; maps get their keys in sorted order.
    public init?(jsonObject value: Any) {
        switch value {
        case let text as String: self = .text(text)
        case let number as NSNumber:
            let type = String(cString: number.objCType)
            if type == "c" {
                self = .bool(number.boolValue)
            } else if type == "d" || type == "f" {
                self = .double(number.doubleValue)
            } else if number.int64Value < 0 {
                self = .negative(UInt64(-1 - number.int64Value))
            } else {
                self = .unsigned(number.uint64Value)
            }
        case is NSNull: self = .null
        case let items as [Any]:
            var out: [CBOR] = []
            for item in items {
                guard let item = CBOR(jsonObject: item) else { return nil }
                out.append(item)
            }
            self = .array(out)
        case let object as [String: Any]:
            var pairs: [CBORPair] = []
            for key in object.keys.sorted() {
                guard let item = CBOR(jsonObject: object[key]!) else { return nil }
                pairs.append(CBORPair(.text(key), item))
            }
            self = .map(pairs)
        default: return nil
        }
    }
}
