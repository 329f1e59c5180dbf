import Foundation

/// Reads allowlists from CSV (`udid,public_key`) or JSON, reporting each bad row by line.
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

    /// Parses a whole file.
    /// - Parameters:
    ///   - contents: The file's bytes.
    ///   - format: CSV or JSON.
    ///   - progress: Called with the number of rows read so far, every few thousand rows.
    public func parse(
        _ contents: [UInt8], format: Format, progress: (Int) -> Void = { _ in }
    ) -> Result {
        var result = Result()
        let rows: [(line: Int, udid: String, key: String)]
        switch format {
        case .csv:
            rows = Self.csvRows(contents, problems: &result.problems)
        case .json:
            rows = Self.jsonRows(contents, problems: &result.problems)
        }
        var byUDID: [UDID: AllowlistEntry] = [:]
        var byKey: [DeviceKey: UDID] = [:]
        byUDID.reserveCapacity(rows.count)
        byKey.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated() {
            if index % 5000 == 0 { progress(index) }
            result.rowsRead += 1
            do throws(HallmarkError) {
                let udid = try UDID(validating: row.udid.trimmingCharacters(in: .whitespaces))
                let key = try DeviceKey(text: row.key)
                if let earlier = byUDID[udid] {
                    if earlier.key == key {
                        result.problems.append(
                            .init(
                                line: row.line, udid: row.udid, severity: .duplicate,
                                error: HallmarkError(
                                    .allowlistConflict, "Repeats line \(earlier.line).", remedy: "Remove the repeated row.")))
                    } else {
                        throw HallmarkError(
                            .allowlistConflict, "UDID already listed on line \(earlier.line) with another key.",
                            remedy: "Keep the row whose key the silicon vendor's manifest gives; remove the other.")
                    }
                    continue
                }
                if let owner = byKey[key] {
                    throw HallmarkError(
                        .allowlistConflict, "Key already listed for device \(owner); two devices cannot share a root-of-trust key.",
                        remedy: "Check the export: a shared key means cloned or corrupt records.")
                }
                let entry = AllowlistEntry(udid: udid, key: key, line: row.line)
                byUDID[udid] = entry
                byKey[key] = udid
                result.entries.append(entry)
            } catch {
                result.problems.append(.init(line: row.line, udid: row.udid, severity: .invalid, error: error))
            }
        }
        progress(rows.count)
        return result
    }

    // MARK: CSV

    static func csvRows(
        _ contents: [UInt8], problems: inout [AllowlistProblem]
    ) -> [(line: Int, udid: String, key: String)] {
        var rows: [(line: Int, udid: String, key: String)] = []
        var reader = CSVReader(contents)
        var first = true
        while let record = reader.next() {
            if record.fields.count == 1 && record.fields[0].trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if record.fields.first?.hasPrefix("#") == true { continue }
            if first {
                first = false
                let header = record.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                if header.first == "udid" { continue }
            }
            guard record.fields.count >= 2 else {
                problems.append(
                    .init(
                        line: record.line, udid: record.fields.first, severity: .invalid,
                        error: HallmarkError(
                            .allowlistInvalid, "Expected 2 columns (udid,public_key), found \(record.fields.count).",
                            remedy: "Write each row as udid,public_key; quote PEM keys that span lines.")))
                continue
            }
            if let error = record.error {
                problems.append(.init(line: record.line, udid: record.fields.first, severity: .invalid, error: error))
                continue
            }
            rows.append((record.line, record.fields[0], record.fields[1]))
        }
        return rows
    }

    // MARK: JSON

    private struct JSONEntry: Decodable {
        var udid: String?
        var publicKey: String?

        enum CodingKeys: String, CodingKey {
            case udid
            case publicKey = "public_key"
            case publicKeyCamel = "publicKey"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.udid = try container.decodeIfPresent(String.self, forKey: .udid)
            self.publicKey =
                try container.decodeIfPresent(String.self, forKey: .publicKey)
                ?? container.decodeIfPresent(String.self, forKey: .publicKeyCamel)
        }
    }

    private struct JSONDocument: Decodable {
        var devices: [JSONEntry]
    }

    static func jsonRows(
        _ contents: [UInt8], problems: inout [AllowlistProblem]
    ) -> [(line: Int, udid: String, key: String)] {
        let decoder = JSONDecoder()
        let entries: [JSONEntry]
        if let list = try? decoder.decode([JSONEntry].self, from: Data(contents)) {
            entries = list
        } else if let document = try? decoder.decode(JSONDocument.self, from: Data(contents)) {
            entries = document.devices
        } else {
            problems.append(
                .init(
                    line: 1, udid: nil, severity: .invalid,
                    error: HallmarkError(
                        .allowlistInvalid, "The file is not a JSON array of {\"udid\", \"public_key\"} objects.",
                        remedy: "Write [{\"udid\": \"...\", \"public_key\": \"...\"}, ...] or {\"devices\": [...]}.")))
            return []
        }
        var rows: [(line: Int, udid: String, key: String)] = []
        rows.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            guard let udid = entry.udid, let key = entry.publicKey else {
                problems.append(
                    .init(
                        line: index + 1, udid: entry.udid, severity: .invalid,
                        error: HallmarkError(
                            .allowlistInvalid, "Entry \(index + 1) lacks \"udid\" or \"public_key\".",
                            remedy: "Give every entry both fields.")))
                continue
            }
            rows.append((index + 1, udid, key))
        }
        return rows
    }
}
