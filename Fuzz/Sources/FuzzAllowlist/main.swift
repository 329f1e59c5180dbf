import FuzzSupport
import HallmarkCore

/// An allowlist file, CSV and JSON, as `hallmark allowlist import` reads it. The first byte picks
/// the format and, for CSV, the chunk size: a file read a chunk at a time (as an import streams
/// it) must give exactly what it gives whole; no UDID or key is listed twice among the entries.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAllowlist(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (mode, contents) = modeAndRest(start, count) else { return 0 }
    let parser = AllowlistParser()
    let format: AllowlistParser.Format = mode & 1 == 0 ? .csv : .json
    let whole = parser.parse(contents, format: format)

    require(Set(whole.entries.map(\.udid)).count == whole.entries.count, "a UDID is listed twice among the entries")
    require(Set(whole.entries.map(\.key)).count == whole.entries.count, "a key is listed twice among the entries")
    for problem in whole.problems {
        requireRefusal(problem.error, "allowlist line \(problem.line)")
    }
    guard format == .csv else { return 0 }

    let chunk = Int(mode >> 1) % 17 + 1
    var offset = 0
    var rows = parser.rows(csvChunks: { () throws(HallmarkError) -> [UInt8]? in
        guard offset < contents.count else { return nil }
        let end = min(offset + chunk, contents.count)
        defer { offset = end }
        return Array(contents[offset..<end])
    })
    var entries: [AllowlistEntry] = []
    var problems: [AllowlistProblem] = []
    do {
        while let row = try rows.next() {
            switch row {
            case .entry(let entry): entries.append(entry)
            case .problem(let problem): problems.append(problem)
            }
        }
    } catch {
        fatalError("reading chunks that cannot fail failed: \(error)")
    }
    require(entries == whole.entries, "read \(chunk) bytes at a time, the entries differ from the whole file's")
    require(problems == whole.problems, "read \(chunk) bytes at a time, the problems differ from the whole file's")
    require(rows.rowsRead == whole.rowsRead, "read \(chunk) bytes at a time, \(rows.rowsRead) rows, not \(whole.rowsRead)")
    return 0
}

/// The process's entry when the build names it `FuzzAllowlist_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzAllowlist_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzAllowlist)
}
