import HallmarkCore
import SwiftASN1
import X509

import Foundation

/// A factory's programming station: registers each device it programs against its production
/// batch through Hallmark's API (`POST /api/v1/station/devices`), with the batch's credential.
public struct ProgrammingStation: Sendable {
    public let server: DeviceAgent.Server
    let credential: String
    let trustPEM: String

    public init(server: DeviceAgent.Server, credential: String, trustPEM: String) {
        self.server = server
        self.credential = credential
        self.trustPEM = trustPEM
    }

    /// How one registration went: `code` is nil when the device was registered.
    public struct Result: Sendable {
        public var udid: UDID
        public var status: Int
        public var code: String?
        public var message: String
    }

    /// Registers devices one after another over one connection.
    public func register(_ devices: [DeviceState]) async throws -> [Result] {
        let roots = try PEMDocument.parseMultiple(pemString: trustPEM).map { try Certificate(pemDocument: $0) }
        let tls = try HTTPSConnection.ClientTLS(trustRoots: roots)
        return try await HTTPSConnection.with(host: server.host, port: server.port, tls: tls) { connection in
            var results: [Result] = []
            for device in devices {
                let body = try JSONEncoder().encode([
                    "udid": device.udid.rawValue, "publicKey": Data(device.publicKey.spkiDER).base64EncodedString(),
                ])
                let response = try await connection.request(
                    .POST, "/api/v1/station/devices",
                    headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(credential)")], body: Array(body))
                if response.status == 200 || response.status == 201 {
                    results.append(Result(udid: device.udid, status: response.status, code: nil, message: "registered"))
                } else {
                    let refusal = ESTClient.refusal(from: response)
                    results.append(Result(udid: device.udid, status: response.status, code: refusal.code, message: refusal.message))
                }
            }
            return results
        }
    }
}
