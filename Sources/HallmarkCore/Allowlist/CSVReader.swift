/// A small RFC 4180 reader: quoted fields may hold commas, quotes (doubled) and line breaks.
/// Each record knows the line it started on.
struct CSVReader {
    struct Record {
        var line: Int
        var fields: [String]
        var error: HallmarkError?
    }

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1

    init(_ bytes: [UInt8]) {
        var bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        self.bytes = bytes
    }

    mutating func next() -> Record? {
        guard index < bytes.count else { return nil }
        var record = Record(line: line, fields: [])
        var field: [UInt8] = []
        var quoted = false
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index < bytes.count && bytes[index] == UInt8(ascii: "\"") {
                        field.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if byte == 0x0A { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                quoted = true
            case UInt8(ascii: ","):
                record.fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
            case 0x0D:
                continue
            case 0x0A:
                line += 1
                record.fields.append(String(decoding: field, as: UTF8.self))
                return record
            default:
                field.append(byte)
            }
        }
        if quoted {
            record.error = HallmarkError(
                .allowlistInvalid, "A quoted field is never closed.", remedy: "Close the quote opened on this line.")
        }
        record.fields.append(String(decoding: field, as: UTF8.self))
        return record
    }
}
