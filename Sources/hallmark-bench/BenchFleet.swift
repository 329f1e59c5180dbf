import Foundation
import HallmarkCore
import X509

/// A simulated device for benchmarks: allowlist entry and a ready CSR.
struct BenchDevice: Sendable {
    var entry: AllowlistEntry
    var csrDER: [UInt8]
    var body: [UInt8]
}

enum BenchFleet {
    /// Devices with root-of-trust keys and CSRs, made on all cores.
    static func make(count: Int, prefix: String) async throws -> [BenchDevice] {
        try await parallel(count: count) { index in
            let key = Certificate.PrivateKey(P256Key.make())
            let udid = try UDID(validating: "\(prefix)-\(index)")
            let der = try DeviceCSR.make(commonName: udid.rawValue, key: key).derBytes()
            return BenchDevice(
                entry: AllowlistEntry(udid: udid, key: try DeviceKey(key.publicKey), line: index),
                csrDER: der, body: Array(ESTBody.encode(der).utf8))
        }
    }

    /// Allowlist entries only (devices that stay idle).
    static func makeKeys(count: Int, prefix: String) async throws -> [AllowlistEntry] {
        try await parallel(count: count) { index in
            AllowlistEntry(
                udid: try UDID(validating: "\(prefix)-\(index)"),
                key: try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey), line: index)
        }
    }

    static func parallel<T: Sendable>(count: Int, _ make: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
        guard count > 0 else { return [] }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return try await withThrowingTaskGroup(of: [(Int, T)].self) { group in
            for core in 0..<cores {
                group.addTask {
                    try stride(from: core, to: count, by: cores).map { ($0, try make($0)) }
                }
            }
            var all: [(Int, T)] = []
            for try await part in group { all += part }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
