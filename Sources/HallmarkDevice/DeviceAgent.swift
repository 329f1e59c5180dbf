import HallmarkCore
import Logging
import X509

import Foundation

/// The device agent: enrols on first boot, renews before expiry, retries with back-off.
public struct DeviceAgent: Sendable {
    /// Where the device's server is.
    public struct Server: Sendable {
        public var host: String
        public var port: Int
        /// The EST label naming the OEM's tenant (`/.well-known/est/<label>/...`); nil for the default tenant.
        public var label: String?

        public init(host: String, port: Int, label: String? = nil) {
            self.host = host
            self.port = port
            self.label = label
        }

        /// Parses `https://host:port`, optionally with the tenant's EST path:
        /// `https://host:port/.well-known/est/<tenant>` (or just `https://host:port/<tenant>`).
        public init(url: String) throws {
            guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host else {
                throw HallmarkError(.configInvalid, "'\(url)' is not an https:// URL.", remedy: "Give the server as https://HOST:PORT.")
            }
            var path = components.path
            if path.hasPrefix("/.well-known/est") { path.removeFirst("/.well-known/est".count) }
            let label = path.split(separator: "/").first.map(String.init)
            self.init(host: host, port: components.port ?? 443, label: label)
        }
    }

    public let state: DeviceState
    public let server: Server
    public var schedule: RenewalSchedule
    let logger: Logger

    public init(state: DeviceState, server: Server, schedule: RenewalSchedule = .init(), logger: Logger = Logger(label: "hallmark.device")) {
        self.state = state
        self.server = server
        self.schedule = schedule
        self.logger = logger
    }

    /// What boot did.
    public enum BootResult: Sendable, Equatable {
        case enrolled(serial: String)
        case renewed(serial: String)
        case current(serial: String)
    }

    /// First boot enrols; later boots renew when due. One attempt, no retry.
    public func boot(now: Date = Date()) async throws -> BootResult {
        if let certificate = try state.certificate() {
            guard now >= schedule.renewalTime(notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter) else {
                return .current(serial: certificate.serialHex)
            }
            let renewed = try await renew(using: certificate)
            return .renewed(serial: renewed.serialHex)
        }
        let certificate = try await enroll()
        return .enrolled(serial: certificate.serialHex)
    }

    /// Enrols over EST with a CSR signed by the root-of-trust key. A device with a factory
    /// attestation certificate authenticates TLS with it (attestation-based enrollment).
    public func enroll() async throws -> Certificate {
        let tls = try HTTPSConnection.ClientTLS(
            trustRoots: state.trustRoots(), identity: try state.attestationCertificate().map { ([$0], state.privateKey) })
        let certificate = try await HTTPSConnection.with(host: server.host, port: server.port, tls: tls) { connection in
            try await ESTClient(connection: connection, label: server.label).enroll(try state.makeCSR())
        }
        try state.store(certificate: certificate)
        logger.info("enrolled", metadata: ["udid": "\(state.udid)", "serial": "\(certificate.serialHex)"])
        return certificate
    }

    /// Renews over EST, authenticating with the current certificate (same root-of-trust key).
    public func renew(using current: Certificate) async throws -> Certificate {
        let roots = try state.trustRoots()
        let tls = try HTTPSConnection.ClientTLS(trustRoots: roots, identity: ([current], state.privateKey))
        let certificate = try await HTTPSConnection.with(host: server.host, port: server.port, tls: tls) { connection in
            try await ESTClient(connection: connection, label: server.label).enroll(try state.makeCSR(), renewal: true)
        }
        try state.store(certificate: certificate)
        logger.info("renewed", metadata: ["udid": "\(state.udid)", "serial": "\(certificate.serialHex)"])
        return certificate
    }

    /// Runs until cancelled: boot, then sleep until renewal is due; failures back off.
    public func run() async throws {
        var attempt = 0
        while !Task.isCancelled {
            do {
                _ = try await boot()
                attempt = 0
                guard let certificate = try state.certificate() else { continue }
                let due = schedule.renewalTime(notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter)
                let wait = max(due.timeIntervalSinceNow, 1)
                logger.info("next renewal", metadata: ["in_seconds": "\(Int(wait))"])
                try await Task.sleep(for: .seconds(wait))
            } catch is CancellationError {
                return
            } catch {
                attempt += 1
                let delay = schedule.backoff(attempt: attempt, jitter: Double.random(in: 0...1))
                logger.warning("enrollment failed, retrying", metadata: ["error": "\(error)", "retry_in_seconds": "\(Int(delay))"])
                try await Task.sleep(for: .seconds(delay))
            }
        }
    }

}
