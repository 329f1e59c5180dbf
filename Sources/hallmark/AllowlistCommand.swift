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
                guard let contents = FileManager.default.contents(atPath: file) else {
                    throw HallmarkError(.notFound, "Cannot read \(file).", remedy: "Check the path.")
                }
                let registry = try data.openRegistry()
                let bytes = Array(contents)
                let format = AllowlistParser.Format.guess(fileName: file, contents: bytes)
                let start = Date()
                let bar = ProgressBar(label: "reading")
                let parsed = AllowlistParser().parse(bytes, format: format) { bar.update($0, of: nil) }
                bar.finish(parsed.rowsRead)
                let writeBar = ProgressBar(label: "writing")
                let total = parsed.entries.count
                let report = try registry.importAllowlist(
                    parsed, source: URL(fileURLWithPath: file).lastPathComponent, product: product,
                    tenant: tenant.resolve(in: registry), skipInvalid: skipInvalid, now: Date()
                ) { writeBar.update($0, of: total) }
                writeBar.finish(total)
                let seconds = Date().timeIntervalSince(start)
                for problem in report.problems.prefix(50) { print("  \(problem)") }
                if report.problems.count > 50 { print("  ... and \(report.problems.count - 50) more") }
                if !report.committed {
                    print("Nothing imported: \(report.invalidCount) invalid row(s) in \(parsed.rowsRead).")
                    throw HallmarkError(
                        .allowlistInvalid, "\(report.invalidCount) row(s) are invalid.",
                        remedy: "Fix the rows listed above, or pass --skip-invalid to import the rest.")
                }
                print(
                    "Imported \(report.imported) device(s) in \(String(format: "%.2f", seconds)) s; "
                        + "\(report.alreadyPresent) already present, \(parsed.duplicateCount) duplicate row(s), "
                        + "\(report.invalidCount) invalid skipped.")
            }
        }
    }
}

/// A progress bar on standard error; redrawn in place on a terminal, in quarters otherwise.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastQuarter = -1

    init(label: String) { self.label = label }

    func update(_ done: Int, of total: Int?) {
        guard let total, total > 0 else {
            if isTerminal { write("\r\(label) \(done) rows") }
            return
        }
        let fraction = Double(done) / Double(total)
        if isTerminal {
            let filled = Int(fraction * 30)
            write("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: 30 - filled))] \(Int(fraction * 100))% \(done)/\(total)")
        } else if Int(fraction * 4) > lastQuarter {
            lastQuarter = Int(fraction * 4)
            write("\(label) \(Int(fraction * 100))% \(done)/\(total)\n")
        }
    }

    func finish(_ done: Int) {
        if isTerminal { write("\r\(label) \(done) rows done\u{1B}[K\n") }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
