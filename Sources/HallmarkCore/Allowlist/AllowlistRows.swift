import Crypto

/// One row of an allowlist: a device to import, or what was wrong with the row.
public enum AllowlistRow: Sendable {
    case entry(AllowlistEntry)
    case problem(AllowlistProblem)
}

/// An allowlist read a row at a time, each row checked against the rows before it in the file.
///
/// A row identical to an earlier one is a `duplicate`; the same UDID with another key, or the
/// same key under another UDID, is `invalid` (`allowlist_conflict`). To tell, it remembers
/// 128-bit digests of the UDIDs and keys it has passed, not the rows: under 200 bytes a row with
/// the hash tables' spare room (`allowlist import` of 1,000,000 rows peaks at 263 MB in all).
public struct AllowlistRows {
    /// A row as the file gives it, before its UDID and key are checked.
    struct RawRow {
        var line: Int
        var udid: String?
        var key: String?
        var problem: HallmarkError?
        var firmwareKey: String? = nil
    }

    enum Source {
        case csv(CSVReader)
        case json([RawRow], next: Int)
    }

    /// The rows read so far (blank lines, comments and the header excepted).
    public private(set) var rowsRead = 0
    private var source: Source
    private var headerChecked = false
    /// The column of `firmware_key`: the header's, or the third when there is no header.
    private var firmwareKeyColumn = 2
    /// The column of `public_key`: the header's, or the second.
    private var publicKeyColumn = 1
    private var udids: [Digest: (line: Int32, key: Digest)] = [:]
    private var keys: [Digest: Int32] = [:]

    init(source: Source) {
        self.source = source
    }

    /// The next row; nil at the end of the file.
    /// - Throws: The error reading the file, if it could not be read to its end.
    public mutating func next() throws(HallmarkError) -> AllowlistRow? {
        guard let raw = try nextRaw() else { return nil }
        rowsRead += 1
        do throws(HallmarkError) {
            if let problem = raw.problem { throw problem }
            return try check(raw)
        } catch {
            return .problem(.init(line: raw.line, udid: raw.udid, severity: .invalid, error: error))
        }
    }

    private mutating func check(_ raw: RawRow) throws(HallmarkError) -> AllowlistRow {
        let udid = try UDID(validating: ASCII.trimmingSpaces(raw.udid ?? ""))
        let key = try DeviceKey(text: raw.key ?? "")
        let udidDigest = Digest(udid.rawValue.utf8)
        let keyDigest = Digest(key.spkiDER)
        if let earlier = udids[udidDigest] {
            guard earlier.key == keyDigest else {
                throw HallmarkError(
                    .allowlistConflict, "UDID already listed on line \(earlier.line) with another key.",
                    remedy: "Keep the row whose key the silicon vendor's manifest gives; remove the other.")
            }
            return .problem(
                .init(
                    line: raw.line, udid: raw.udid, severity: .duplicate,
                    error: HallmarkError(.allowlistConflict, "Repeats line \(earlier.line).", remedy: "Remove the repeated row.")))
        }
        if let line = keys[keyDigest] {
            throw HallmarkError(
                .allowlistConflict,
                "Key already listed on line \(line) for another device; two devices cannot share a root-of-trust key.",
                remedy: "Check the export: a shared key means cloned or corrupt records.")
        }
        var firmwareKey: DeviceKey?
        if let text = raw.firmwareKey.map(ASCII.trimmingSpaces), !text.isEmpty {
            let parsed = try DeviceKey(text: text)
            guard parsed.algorithm == .p256 else {
                throw HallmarkError(
                    .keyAlgorithmNotAllowed, "The firmware key must be a P-256 key (MCUboot's ENC_EC256).",
                    remedy: "Make the device's firmware key with `openssl ecparam -name prime256v1` or `imgtool keygen -t ecdsa-p256`.")
            }
            guard parsed != key else {
                throw HallmarkError(
                    .allowlistInvalid, "The firmware key is the root-of-trust key; they must be separate keys.",
                    remedy: "Give the device a firmware decryption key of its own.")
            }
            firmwareKey = parsed
        }
        udids[udidDigest] = (Int32(clamping: raw.line), keyDigest)
        keys[keyDigest] = Int32(clamping: raw.line)
        return .entry(AllowlistEntry(udid: udid, key: key, line: raw.line, firmwareKey: firmwareKey))
    }

    /// The next row with content: blank lines, `#` comments and a leading `udid,...` header are
    /// skipped.
    private mutating func nextRaw() throws(HallmarkError) -> RawRow? {
        switch source {
        case .json(let rows, let next):
            guard next < rows.count else { return nil }
            source = .json(rows, next: next + 1)
            return rows[next]
        case .csv(var reader):
            defer { source = .csv(reader) }
            while let record = try reader.next() {
                if record.fields.count == 1 && ASCII.trimmingSpaces(record.fields[0]).isEmpty { continue }
                if record.fields.first?.hasPrefix("#") == true { continue }
                if !headerChecked {
                    headerChecked = true
                    let names = record.fields.map { ASCII.trimmingSpaces($0).lowercased() }
                    if names[0] == "udid" {
                        firmwareKeyColumn = names.firstIndex(of: "firmware_key") ?? Int.max
                        publicKeyColumn = names.firstIndex(of: "public_key") ?? 1
                        continue
                    }
                }
                guard record.fields.count >= 2, publicKeyColumn < record.fields.count else {
                    return RawRow(
                        line: record.line, udid: record.fields.first, key: nil,
                        problem: HallmarkError(
                            .allowlistInvalid, "Expected 2 columns (udid,public_key), found \(record.fields.count).",
                            remedy: "Write each row as udid,public_key; quote PEM keys that span lines."))
                }
                return RawRow(
                    line: record.line, udid: record.fields[0], key: record.fields[publicKeyColumn], problem: record.error,
                    firmwareKey: firmwareKeyColumn < record.fields.count ? record.fields[firmwareKeyColumn] : nil)
            }
            return nil
        }
    }

    /// The first 128 bits of a SHA-256: two different UDIDs or keys share one with a probability
    /// far below anything a file can hold.
    struct Digest: Hashable {
        var high: UInt64
        var low: UInt64

        init(_ bytes: some Sequence<UInt8>) {
            let hash = SHA256.hash(data: Array(bytes))
            (high, low) = hash.withUnsafeBytes { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        }
    }
}
