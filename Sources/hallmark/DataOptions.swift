import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore

/// Options shared by commands that work on a data directory.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory (default: $HALLMARK_DATA_DIR or ./hallmark-data).")
    var dataDirectory: String?

    @Option(help: "A file holding the CA passphrase (default: $HALLMARK_PASSPHRASE).")
    var passphraseFile: String?

    var resolvedDataDirectory: String {
        dataDirectory ?? ProcessInfo.processInfo.environment["HALLMARK_DATA_DIR"] ?? "./hallmark-data"
    }

    var dataURL: URL { URL(fileURLWithPath: resolvedDataDirectory, isDirectory: true) }

    var registryPath: String { dataURL.appendingPathComponent("registry.sqlite").path }

    /// The CA passphrase from --passphrase-file or HALLMARK_PASSPHRASE.
    func passphrase() throws -> Passphrase {
        if let passphraseFile {
            guard let text = try? String(contentsOfFile: passphraseFile, encoding: .utf8) else {
                throw HallmarkError(
                    .passphraseMissing, "The passphrase file \(passphraseFile) cannot be read.",
                    remedy: "Check the path and its permissions.")
            }
            return try Passphrase(text)
        }
        guard let value = ProcessInfo.processInfo.environment["HALLMARK_PASSPHRASE"] else {
            throw HallmarkError(
                .passphraseMissing, "No CA passphrase was given.",
                remedy: "Set HALLMARK_PASSPHRASE or pass --passphrase-file FILE.")
        }
        return try Passphrase(value)
    }

    /// Opens the registry, requiring an initialised data directory.
    func openRegistry() throws -> Registry {
        guard AuthorityFiles(dataDirectory: dataURL).isInitialised else {
            throw HallmarkError(
                .caNotInitialised, "\(resolvedDataDirectory) has no CA.", remedy: "Run `hallmark ca init --data-dir DIR` first.")
        }
        return try Registry(path: registryPath)
    }
}

/// Prints a Hallmark error the way the CLI reports every refusal, and exits non-zero.
func fail(_ error: HallmarkError) -> ExitCode {
    FileHandle.standardError.write(Data("error [\(error.code)]: \(error.reason)\n  fix: \(error.remedy)\n".utf8))
    return ExitCode(2)
}

/// Runs a command body, turning Hallmark errors into a clear message and exit code 2.
func reporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as HallmarkError {
        throw fail(error)
    }
}
