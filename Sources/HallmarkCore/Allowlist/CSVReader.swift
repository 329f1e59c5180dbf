/// A small RFC 4180 reader: quoted fields may hold commas, quotes (doubled) and line breaks.
/// Each record knows the line it started on.
///
/// It reads its bytes a chunk at a time, so a file of any size is read in the memory of one chunk
/// and one record.
struct CSVReader {
    struct Record {
        var line: Int
        var fields: [String]
        var error: HallmarkError?
    }

    private var buffer: [UInt8] = []
    private var index = 0
    private var line = 1
    private var started = false
    private var nextChunk: () throws(HallmarkError) -> [UInt8]?

    /// Reads chunks from `nextChunk` until it returns nil; its error ends the reading.
    init(chunks nextChunk: @escaping () throws(HallmarkError) -> [UInt8]?) {
        self.nextChunk = nextChunk
    }

    /// Reads bytes already in memory.
    init(_ bytes: [UInt8]) {
        var pending: [UInt8]? = bytes
        self.init(chunks: { () throws(HallmarkError) -> [UInt8]? in
            defer { pending = nil }
            return pending
        })
    }

    mutating func next() throws(HallmarkError) -> Record? {
        guard try peek() != nil else { return nil }
        var record = Record(line: line, fields: [])
        var field: [UInt8] = []
        var quoted = false
        while let byte = try take() {
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if try peek() == UInt8(ascii: "\"") {
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

    /// The next byte, without consuming it; nil at the end of the input.
    private mutating func peek() throws(HallmarkError) -> UInt8? {
        if index == buffer.count, try !refill() { return nil }
        return buffer[index]
    }

    private mutating func take() throws(HallmarkError) -> UInt8? {
        guard let byte = try peek() else { return nil }
        index += 1
        return byte
    }

    /// Replaces the consumed buffer with the next non-empty chunk (a UTF-8 byte order mark at the
    /// start of the input is dropped, wherever the first chunks end); false at the end of the input.
    private mutating func refill() throws(HallmarkError) -> Bool {
        buffer = []
        index = 0
        if !started {
            started = true
            while buffer.count < 3, let chunk = try nextChunk() { buffer += chunk }
            if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
            if index < buffer.count { return true }
        }
        while let chunk = try nextChunk() {
            buffer = chunk
            index = 0
            if !chunk.isEmpty { return true }
        }
        buffer = []
        index = 0
        return false
    }
}
