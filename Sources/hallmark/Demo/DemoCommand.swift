import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServer
import HallmarkStore
import X509

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Tell the whole story in a temporary directory: CA, factory, allowlist, zero-touch enrollment, attacks refused, MQTT telemetry, policy, live revocation, an OEM's own CA.")

    @Option(help: "How many genuine devices the factory makes (at least 16: the later scenes use their own).")
    var devices = 20

    @Flag(help: "Keep the temporary directory for inspection.")
    var keep = false

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-demo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(at: directory) } }
        let report = DemoReport()
        do {
            try await DemoStory(directory: directory, deviceCount: max(devices, 16), report: report).tell()
        } catch {
            report.fail("the demo stopped: \(error)")
        }
        report.printSummary()
        if keep { print("Data kept in \(directory.path)") }
        if !report.allHeld { throw ExitCode.failure }
    }
}

/// The narrated record of a demo run: each expectation, held or not.
final class DemoReport: @unchecked Sendable {
    private(set) var checks: [(String, Bool)] = []
    private let start = Date()

    var allHeld: Bool { !checks.isEmpty && checks.allSatisfy(\.1) }

    func scene(_ title: String) { print("\n== \(title)") }
    func say(_ text: String) { print("   \(text)") }

    func expect(_ held: Bool, _ text: String) {
        checks.append((text, held))
        print("   \(held ? "✓" : "✗ FAILED:") \(text)")
    }

    func fail(_ text: String) { expect(false, text) }

    func printSummary() {
        let failed = checks.filter { !$0.1 }
        print("\n== Summary")
        print("   \(checks.count - failed.count)/\(checks.count) expectations held in \(String(format: "%.1f", Date().timeIntervalSince(start))) s.")
        for (text, _) in failed { print("   ✗ \(text)") }
    }
}
