import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkHTTP
import HallmarkServices
import HallmarkStore
import Hummingbird
import Logging
import X509

/// `hallmark-bench registry-free-est` (not listed in help): the reference `enroll` sets
/// beside `hallmark serve`. The same TLS listener, HTTP stack and EST encoding, the same CSR
/// parse, verification and signing, but no registry: no allowlist check, nothing recorded, no
/// event. The gap between it and the crypto ceiling is the transport's; the gap between it and
/// the server is the registry's.
///
/// It signs with the benchmark's own throwaway CA and listens on 127.0.0.1 only. It is a yardstick,
/// not a server: it would sign any well-formed CSR, which is why it lives in `hallmark-bench` and
/// never in the `hallmark` binary.
struct BenchRegistryFreeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry-free-est",
        abstract: "A benchmark's reference: EST simpleenroll over HTTPS with no registry (signs any CSR).",
        shouldDisplay: false)

    @Option(name: .customLong("data-dir"), help: "The benchmark's data directory, whose CA it signs with.")
    var dataDirectory: String

    @Option(help: "Write the bound HTTPS port to this file once listening.")
    var portFile: String

    func run() async throws {
        do {
            guard let passphrase = ProcessInfo.processInfo.environment["HALLMARK_PASSPHRASE"] else {
                throw ValidationError("Set HALLMARK_PASSPHRASE to the benchmark CA's passphrase.")
            }
            let authority = try AuthorityFiles(dataDirectory: URL(fileURLWithPath: dataDirectory, isDirectory: true))
                .loadIssuingAuthority(passphrase: try Passphrase(passphrase))
            let key = Certificate.PrivateKey(P256Key.make())
            let tlsCertificate = try authority.issueServerCertificate(key: key.publicKey, hostNames: ["127.0.0.1"], now: Date())

            let router = Router()
            router.post("/.well-known/est/simpleenroll") { request, _ -> Response in
                let body = try await request.body.collect(upTo: ESTBody.maximumRequestSize)
                let csr = try EnrollmentRequest(der: ESTBody.decode(Array(body.readableBytesView)))
                let certificate = try authority.issueDeviceCertificate(
                    thingName: csr.udid.rawValue, key: csr.key, profile: DeviceCertificateProfile(), now: Date())
                let der = try certificate.derBytes()
                // The server computes the fingerprint for its record; so does its yardstick.
                _ = CertificateFingerprint.sha256(der: der)
                return try ESTAnswer.certificate(der: der)
            }
            var logger = Logger(label: "hallmark.bench.registry-free-est")
            logger.logLevel = .error
            let portFile = URL(fileURLWithPath: portFile)
            let application = Application(
                router: router,
                server: try HTTPSServer.server(serverChain: [tlsCertificate, authority.certificate], serverKey: key),
                configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "Hallmark"),
                onServerRunning: { channel in
                    try? Data("\(channel.localAddress?.port ?? 0)\n".utf8).write(to: portFile, options: .atomic)
                },
                logger: logger)
            try await application.runService()
        } catch let error as HallmarkError {
            FileHandle.standardError.write(Data("error [\(error.code)]: \(error.reason)\n".utf8))
            throw ExitCode(2)
        }
    }
}
