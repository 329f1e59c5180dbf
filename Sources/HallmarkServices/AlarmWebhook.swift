import Crypto
import HallmarkCore
import HallmarkDevice
import Logging
import X509

import Foundation

/// Sends alarms to the OEM's backend over HTTPS: a JSON POST signed with HMAC-SHA256 under a key
/// the operator holds (`X-Hallmark-Signature: sha256=<hex>` over `<timestamp>.<body>`, the
/// timestamp in `X-Hallmark-Timestamp`, so a captured request cannot be replayed later unseen),
/// retried with back-off (1, 2, 4, 8 s) until it answers 2xx. The key never appears in logs.
public struct AlarmWebhook: Sendable {
    public let url: URL
    let key: SymmetricKey
    let trustRoots: [Certificate]?
    let attempts: Int
    let timeout: Duration

    public init(url: URL, key: [UInt8], trustRoots: [Certificate]?, attempts: Int = 5, timeout: Duration = .seconds(5)) throws(HallmarkError) {
        guard url.scheme == "https", url.host != nil else {
            throw HallmarkError(.configInvalid, "The alarm webhook \(url.absoluteString.prefix(100)) is not an https:// URL.", remedy: "Give the receiver's HTTPS address.")
        }
        guard key.count >= 16 else {
            throw HallmarkError(.configInvalid, "The alarm webhook's key is \(key.count) bytes; at least 16 are needed.", remedy: "Put 32 random bytes in the key file.")
        }
        self.url = url
        self.key = SymmetricKey(data: key)
        self.trustRoots = trustRoots
        self.attempts = attempts
        self.timeout = timeout
    }

    /// The signature header's value for a body sent at `timestamp`.
    public static func signature(body: [UInt8], timestamp: Int64, key: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: key))
        return "sha256=" + Array(mac).hexString
    }

    /// Delivers one alarm, retrying; returns whether the receiver took it.
    func deliver(_ body: [UInt8], logger: Logger) async -> Bool {
        let host = url.host ?? ""
        let path = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?" + $0 } ?? "")
        guard let tls = try? HTTPSConnection.ClientTLS(trustRoots: trustRoots) else { return false }
        for attempt in 0..<attempts {
            if attempt > 0 { try? await Task.sleep(for: .seconds(1 << (attempt - 1))) }
            let timestamp = Int64(Date().timeIntervalSince1970)
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: key)
            let headers = [
                ("Content-Type", "application/json"), ("X-Hallmark-Timestamp", String(timestamp)),
                ("X-Hallmark-Signature", "sha256=" + Array(mac).hexString),
            ]
            let timeout = self.timeout
            let status: Int? = try? await withThrowingTaskGroup(of: Int?.self) { group in
                group.addTask {
                    try await HTTPSConnection.with(host: host, port: url.port ?? 443, tls: tls) { connection in
                        try await connection.request(.POST, path, headers: headers, body: body).status
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            if let status, (200..<300).contains(status) { return true }
            logger.warning("alarm webhook attempt \(attempt + 1) failed", metadata: ["status": "\(status.map(String.init) ?? "no answer")"])
        }
        return false
    }
}
