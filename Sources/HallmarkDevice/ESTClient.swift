import HallmarkCore
import NIOCore
import NIOHTTP1
import SwiftASN1
import X509

import Foundation

/// An EST (RFC 7030) client over one HTTPS connection.
public struct ESTClient {
    /// A refusal from the server, with its Hallmark code when the body carried one.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var status: Int
        public var code: String
        public var message: String

        public var description: String { "HTTP \(status) \(code): \(message)" }
    }

    let connection: HTTPSConnection
    /// `/.well-known/est` or `/.well-known/est/<label>` (RFC 7030 §3.2.2).
    let base: String

    /// - Parameter label: The tenant's EST label, or nil for the server's default.
    public init(connection: HTTPSConnection, label: String? = nil) {
        self.connection = connection
        self.base = "/.well-known/est" + (label.map { "/" + $0 } ?? "")
    }

    /// `GET /cacerts`: the CA chain.
    public func caCertificates() async throws -> [Certificate] {
        let response = try await connection.request(.GET, base + "/cacerts")
        return try Self.certificates(from: response)
    }

    /// `POST /simpleenroll` or `/simplereenroll` with a CSR; returns the issued certificate.
    public func enroll(_ csr: CertificateSigningRequest, renewal: Bool = false) async throws -> Certificate {
        try await enroll(csrDER: csr.derBytes(), renewal: renewal)
    }

    /// `POST /simpleenroll` or `/simplereenroll` with a DER CSR.
    public func enroll(csrDER: [UInt8], renewal: Bool = false) async throws -> Certificate {
        let body = Array(ESTBody.encode(csrDER).utf8)
        let path = base + (renewal ? "/simplereenroll" : "/simpleenroll")
        let response = try await connection.request(
            .POST, path, headers: [("Content-Type", "application/pkcs10"), ("Content-Transfer-Encoding", "base64")],
            body: body)
        guard let certificate = try Self.certificates(from: response).first else {
            throw Refusal(status: response.status, code: "empty_response", message: "The server sent no certificate.")
        }
        return certificate
    }

    static func certificates(from response: HTTPSConnection.Response) throws -> [Certificate] {
        guard response.status == 200 else {
            throw refusal(from: response)
        }
        let der = try ESTBody.decode(response.body)
        return try CertsOnlyPKCS7.decode(der)
    }

    static func refusal(from response: HTTPSConnection.Response) -> Refusal {
        struct Body: Decodable {
            struct Detail: Decodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        if let body = try? JSONDecoder().decode(Body.self, from: Data(response.body)) {
            return Refusal(status: response.status, code: body.error.code, message: body.error.message)
        }
        return Refusal(
            status: response.status, code: "http_\(response.status)",
            message: String(decoding: response.body.prefix(200), as: UTF8.self))
    }
}
