import HallmarkCore
import HallmarkDevice
import X509

import Foundation

/// AWS IoT's pre-provisioning hook, as an HTTPS webhook: before RegisterThing does anything, the
/// hook gets AWS's payload (`claimCertificateId`, `certificateId`, `certificatePem`, `templateArn`,
/// `clientId`, `parameters`) as a JSON POST and must answer 200 with `{"allowProvisioning": true}`
/// (and optionally `"parameterOverrides"`) within five seconds. Anything else refuses the
/// registration with `provisioning_denied` (AWS's `AccessDenied`).
public struct PreProvisioningHook: Sendable {
    /// The roots a hook's server certificate must chain to (nil: the system's).
    let trustRoots: [Certificate]?
    let timeout: Duration

    public init(trustRoots: [Certificate]? = nil, timeout: Duration = .seconds(5)) {
        self.trustRoots = trustRoots
        self.timeout = timeout
    }

    /// Asks the hook; returns its parameter overrides.
    /// - Throws: `provisioning_denied` when it says no, does not answer in time, or cannot be reached.
    func ask(url: String, payload: [String: Any]) async throws(HallmarkError) -> [String: String] {
        guard let parsed = URL(string: url), parsed.scheme == "https", let host = parsed.host else {
            throw Self.denied("the hook's address \(url.prefix(100)) is not https")
        }
        let body: [UInt8]
        do {
            body = Array(try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw Self.denied("its payload could not be encoded")
        }
        let path = (parsed.path.isEmpty ? "/" : parsed.path) + (parsed.query.map { "?" + $0 } ?? "")
        let tls: HTTPSConnection.ClientTLS
        do {
            tls = try HTTPSConnection.ClientTLS(trustRoots: trustRoots)
        } catch {
            throw Self.denied("no TLS client could be set up")
        }
        let timeout = self.timeout
        let response: HTTPSConnection.Response?
        do {
            response = try await withThrowingTaskGroup(of: HTTPSConnection.Response?.self) { group in
                group.addTask {
                    try await HTTPSConnection.with(host: host, port: parsed.port ?? 443, tls: tls) { connection in
                        try await connection.request(.POST, path, headers: [("Content-Type", "application/json")], body: body)
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
        } catch {
            throw Self.denied("it could not be reached (\(String(describing: error).prefix(120)))")
        }
        guard let response else { throw Self.denied("it did not answer within \(timeout)") }
        guard response.status == 200 else { throw Self.denied("it answered HTTP \(response.status)") }
        guard response.body.count <= 64 * 1024,
            let answer = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        else { throw Self.denied("its answer is not a JSON object") }
        guard (answer["allowProvisioning"] as? NSNumber).map({ JobsRequest.isBoolean($0) && $0.boolValue }) == true else {
            throw Self.denied("it answered allowProvisioning other than true")
        }
        var overrides: [String: String] = [:]
        for (key, value) in (answer["parameterOverrides"] as? [String: Any]) ?? [:] {
            guard let text = value as? String ?? (value as? NSNumber)?.stringValue else { throw Self.denied("its override of \(key.prefix(64)) is not a string") }
            overrides[key] = text
        }
        return overrides
    }

    static func denied(_ why: String) -> HallmarkError {
        HallmarkError(.provisioningDenied, "The pre-provisioning hook refused the registration: \(why).",
                      remedy: "The OEM's hook decides; check its logs, or ask its operator.")
    }
}
