import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

struct AllowlistCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allowlist", abstract: "Devices the manufacturer vouches for (UDID + root-of-trust key).",
        subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a CSV (udid,public_key) or JSON allowlist in one transaction.")

        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        @Argument(help: "The allowlist file (.csv or .json).")
        var file: String

        @Flag(help: "Import the valid rows even if some are invalid.")
        var skipInvalid = false

        @Option(help: "The product the devices belong to.")
        var product = Registry.defaultProduct

        func run() async throws {
            try await reporting {
                let input = try AllowlistFile(path: file)
                let registry = try data.openRegistry()
                let start = Date()
                var rows = try input.rows()
                let bar = ProgressBar(label: "importing")
                let report = try registry.importAllowlist(
                    nextRow: { try rows.next() }, source: URL(fileURLWithPath: file).lastPathComponent, product: product,
                    tenant: tenant.resolve(in: registry), skipInvalid: skipInvalid, now: Date()
                ) { bar.update(input.bytesRead, of: input.size, rows: $0) }
                bar.finish(report.rowsRead)
                let seconds = Date().timeIntervalSince(start)
                for problem in report.problems.prefix(50) { print("  \(problem)") }
                let unlisted = report.invalidCount + report.duplicates - min(50, report.problems.count)
                if unlisted > 0 { print("  ... and \(unlisted) more") }
                if !report.committed {
                    print("Nothing imported: \(report.invalidCount) invalid row(s) in \(report.rowsRead).")
                    throw HallmarkError(
                        .allowlistInvalid, "\(report.invalidCount) row(s) are invalid.",
                        remedy: "Fix the rows listed above, or pass --skip-invalid to import the rest.")
                }
                print(
                    "Imported \(report.imported) device(s) in \(String(format: "%.2f", seconds)) s; "
                        + "\(report.alreadyPresent) already present, \(report.duplicates) duplicate row(s), "
                        + "\(report.invalidCount) invalid skipped.")
            }
        }
    }
}

/// An allowlist file being read: CSV a megabyte at a time, JSON whole (a JSON document is parsed
/// at once).
final class AllowlistFile {
    private let handle: FileHandle
    private let path: String
    private let format: AllowlistParser.Format
    /// The first chunk, read to tell the format, until the rows take it.
    private var first: [UInt8]
    /// The file's size in bytes.
    let size: Int
    /// Bytes read so far (read by the progress bar on the importing thread).
    private(set) var bytesRead = 0

    init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let handle = FileHandle(forReadingAtPath: path)
        else {
            throw HallmarkError(.notFound, "Cannot read \(path).", remedy: "Check the path: it must name a readable file.")
        }
        let first = try Self.read(handle, upTo: Self.chunkSize, path: path, after: 0)
        self.handle = handle
        self.path = path
        self.size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        self.first = first
        self.format = AllowlistParser.Format.guess(fileName: path, contents: first)
    }

    private static let chunkSize = 1 << 20

    func rows() throws(HallmarkError) -> AllowlistRows {
        switch format {
        case .json:
            let contents = first + (try Self.read(handle, upTo: nil, path: path, after: first.count))
            bytesRead = contents.count
            return AllowlistParser().rows(contents, format: .json)
        case .csv:
            return AllowlistParser().rows(csvChunks: { [self] () throws(HallmarkError) -> [UInt8]? in try nextChunk() })
        }
    }

    /// Up to `count` bytes (nil: to the end of the file).
    private static func read(_ handle: FileHandle, upTo count: Int?, path: String, after offset: Int) throws(HallmarkError) -> [UInt8] {
        do {
            let data = if let count { try handle.read(upToCount: count) } else { try handle.readToEnd() }
            return data.map { Array($0) } ?? []
        } catch {
            throw HallmarkError(
                .notFound, "Cannot read \(path) after \(offset) bytes: \(error.localizedDescription).",
                remedy: "Check the file and the disk it is on; nothing was imported.")
        }
    }

    private func nextChunk() throws(HallmarkError) -> [UInt8]? {
        let chunk: [UInt8]
        if first.isEmpty {
            chunk = try Self.read(handle, upTo: Self.chunkSize, path: path, after: bytesRead)
        } else {
            chunk = first
            first = []
        }
        bytesRead += chunk.count
        return chunk.isEmpty ? nil : chunk
    }
}

/// A progress bar on standard error; redrawn in place on a terminal, in quarters otherwise.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastQuarter = -1

    init(label: String) { self.label = label }

    /// Shows `done` of `total` (bytes, or any unit), and the rows read so far.
    func update(_ done: Int, of total: Int, rows: Int) {
        guard total > 0 else {
            if isTerminal { write("\r\(label) \(rows) rows") }
            return
        }
        let fraction = min(1, Double(done) / Double(total))
        if isTerminal {
            let filled = Int(fraction * 30)
            write("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: 30 - filled))] \(Int(fraction * 100))% \(rows) rows")
        } else if Int(fraction * 4) > lastQuarter {
            lastQuarter = Int(fraction * 4)
            write("\(label) \(Int(fraction * 100))% \(rows) rows\n")
        }
    }

    func finish(_ done: Int) {
        if isTerminal { write("\r\(label) \(done) rows done\u{1B}[K\n") }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
