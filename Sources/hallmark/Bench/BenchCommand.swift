import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks, each printed beside a same-machine reference.",
        subcommands: [BenchEnrollCommand.self, BenchMQTTCommand.self, BenchRegistryFreeCommand.self])
}
