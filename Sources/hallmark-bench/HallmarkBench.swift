import ArgumentParser
import Foundation

/// `hallmark-bench`: Hallmark's benchmarks, each printed beside a same-machine reference. A tool of
/// its own, never part of the `hallmark` binary: its registry-free reference signs any CSR.
@main
struct HallmarkBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallmark-bench", abstract: "Benchmarks, each printed beside a same-machine reference.",
        subcommands: [BenchEnrollCommand.self, BenchMQTTCommand.self, BenchOCSPCommand.self, BenchLogCommand.self, BenchFirmwareCommand.self, BenchProvisionCommand.self, BenchDefenderCommand.self, BenchRegistryFreeCommand.self])
}

/// Which `hallmark` binary a benchmark starts as its server.
struct HallmarkBinaryOption: ParsableArguments {
    @Option(name: .customLong("hallmark"), help: "The hallmark binary to benchmark (default: the one beside hallmark-bench).")
    var path: String?

    /// The binary, which must exist and be executable.
    func executable() throws -> URL {
        let url = path.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("hallmark")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw ValidationError("No hallmark binary at \(url.path): build it (`swift build -c release`) or pass --hallmark PATH.")
        }
        return url
    }
}
