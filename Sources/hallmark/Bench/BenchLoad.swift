import Foundation
import HallmarkDevice
import X509

/// Drives enrollments over keep-alive HTTPS connections and records latency.
enum BenchLoad {
    struct Result {
        var succeeded: Int
        var failed: Int
        var seconds: Double
        var p50: Double
        var p99: Double
        var max: Double
        var throughput: Double { Double(succeeded) / seconds }
    }

    static func run(fleet: [BenchDevice], port: Int, trust: [Certificate], concurrency: Int) async throws -> Result {
        let tls = try HTTPSConnection.ClientTLS(trustRoots: trust)
        let clock = ContinuousClock()
        let started = clock.now
        let outcomes = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for lane in 0..<concurrency {
                let slice = fleet[lane...].striding(by: concurrency)
                group.addTask {
                    try await HTTPSConnection.with(host: "127.0.0.1", port: port, tls: tls) { connection in
                        var latencies: [Double] = []
                        var failures = 0
                        latencies.reserveCapacity(slice.count)
                        for device in slice {
                            let sent = clock.now
                            let response = try await connection.request(
                                .POST, "/.well-known/est/simpleenroll",
                                headers: [("Content-Type", "application/pkcs10")], body: device.body)
                            if response.status == 200 {
                                latencies.append((clock.now - sent).seconds)
                            } else {
                                failures += 1
                            }
                        }
                        return (latencies, failures)
                    }
                }
            }
            var latencies: [Double] = []
            var failures = 0
            for try await (part, failed) in group {
                latencies += part
                failures += failed
            }
            return (latencies, failures)
        }
        let seconds = (clock.now - started).seconds
        let sorted = outcomes.0.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        return Result(
            succeeded: sorted.count, failed: outcomes.1, seconds: seconds, p50: percentile(0.5), p99: percentile(0.99),
            max: sorted.last ?? 0)
    }
}
