import Foundation

/// Reads allowlists from CSV (`udid,public_key[,firmware_key]`) or JSON, reporting each bad row by line.
///
/// Within one file, a row identical to an earlier one is a `duplicate`; the same UDID with
/// another key, or the same key under another UDID, is `invalid` (`allowlist_conflict`).
public struct AllowlistParser: Sendable {
    /// The file formats understood.
    public enum Format: String, Sendable {
        case csv, json

        /// Picks the format from a file name, defaulting to CSV.
        public static func guess(fileName: String, contents: [UInt8]) -> Format {
            if fileName.lowercased().hasSuffix(".json") { return .json }
            if let first = contents.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }),
                first == UInt8(ascii: "[") || first == UInt8(ascii: "{")
            {
                return .json
            }
            return .csv
        }
    }

    /// What was read.
    public struct Result: Sendable {
        public var entries: [AllowlistEntry] = []
        public var problems: [AllowlistProblem] = []
        public var rowsRead = 0

        public init(entries: [AllowlistEntry] = [], problems: [AllowlistProblem] = [], rowsRead: Int = 0) {
            self.entries = entries
            self.problems = problems
            self.rowsRead = rowsRead
        }

        public var invalidCount: Int { problems.count { $0.severity == .invalid } }
        public var duplicateCount: Int { problems.count { $0.severity == .duplicate } }
    }

    public init() {}

    /// Parses a whole file in memory, keeping every entry: for small files and tests. An import
    /// reads ``rows(csvChunks:)`` instead, a row at a time.
    /// - Parameters:
    ///   - contents: The file's bytes.
    ///   - format: CSV or JSON.
    ///   - progress: Called with the number of rows read so far, every few thousand rows.
    public func parse(
        _ contents: [UInt8], format: Format, progress: (Int) -> Void = { _ in }
    ) -> Result {
        var rows = self.rows(contents, format: format)
        var result = Result()
        // Bytes in memory cannot fail to read.
        while let row = try? rows.next() {
            switch row {
            case .entry(let entry): result.entries.append(entry)
            case .problem(let problem): result.problems.append(problem)
            }
            if rows.rowsRead % 5000 == 0 { progress(rows.rowsRead) }
        }
        result.rowsRead = rows.rowsRead
        progress(rows.rowsRead)
        return result
    }

    /// The rows of a file in memory.
    public func rows(_ contents: [UInt8], format: Format) -> AllowlistRows {
        switch format {
        case .csv: AllowlistRows(source: .csv(CSVReader(contents)))
        case .json: AllowlistRows(source: .json(Self.jsonRows(contents), next: 0))
        }
    }

    /// The rows of a CSV file read a chunk at a time from `nextChunk` (nil at the end; its error
    /// is thrown by the rows' `next()`).
    public func rows(csvChunks nextChunk: @escaping () throws(HallmarkError) -> [UInt8]?) -> AllowlistRows {
        AllowlistRows(source: .csv(CSVReader(chunks: nextChunk)))
    }

    // MARK: JSON

    private struct JSONEntry: Decodable {
        var udid: String?
        var publicKey: String?
        var firmwareKey: String?

        enum CodingKeys: String, CodingKey {
            case udid
            case publicKey = "public_key"
            case publicKeyCamel = "publicKey"
            case firmwareKey = "firmware_key"
            case firmwareKeyCamel = "firmwareKey"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.udid = try container.decodeIfPresent(String.self, forKey: .udid)
            self.publicKey =
                try container.decodeIfPresent(String.self, forKey: .publicKey)
                ?? container.decodeIfPresent(String.self, forKey: .publicKeyCamel)
            self.firmwareKey =
                try container.decodeIfPresent(String.self, forKey: .firmwareKey)
                ?? container.decodeIfPresent(String.self, forKey: .firmwareKeyCamel)
        }
    }

    private struct JSONDocument: Decodable {
        var devices: [JSONEntry]
    }

    static func jsonRows(_ contents: [UInt8]) -> [AllowlistRows.RawRow] {
        let decoder = JSONDecoder()
        let entries: [JSONEntry]
        if let list = try? decoder.decode([JSONEntry].self, from: Data(contents)) {
            entries = list
        } else if let document = try? decoder.decode(JSONDocument.self, from: Data(contents)) {
            entries = document.devices
        } else {
            return [
                .init(
                    line: 1, udid: nil, key: nil,
                    problem: HallmarkError(
                        .allowlistInvalid, "The file is not a JSON array of {\"udid\", \"public_key\"} objects.",
                        remedy: "Write [{\"udid\": \"...\", \"public_key\": \"...\"}, ...] or {\"devices\": [...]}."))
            ]
        }
        return entries.enumerated().map { index, entry in
            guard entry.udid != nil, entry.publicKey != nil else {
                return .init(
                    line: index + 1, udid: entry.udid, key: nil,
                    problem: HallmarkError(
                        .allowlistInvalid, "Entry \(index + 1) lacks \"udid\" or \"public_key\".",
                        remedy: "Give every entry both fields."))
            }
            return .init(line: index + 1, udid: entry.udid, key: entry.publicKey, problem: nil, firmwareKey: entry.firmwareKey)
        }
    }
}
