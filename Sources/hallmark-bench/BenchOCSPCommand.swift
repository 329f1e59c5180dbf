import ArgumentParser
import Crypto
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import Revocation
import SwiftASN1
import X509

/// `hallmark-bench ocsp`: OCSP answers per second from `hallmark serve`'s revocation listener
/// beside `openssl ocsp -index` serving the same certificates (the same CA key signing, one
/// responder process per core), in the same run, with the same client: a new HTTP/1.0 connection
/// per request, as `openssl ocsp` itself asks. Two loads: requests without a nonce (which
/// Hallmark may answer with a pre-signed response, within its validity) and requests with a fresh
/// nonce (which each side must sign). Then CRL generation with many revoked entries, beside
/// `openssl ca -gencrl` on an index of the same size.
struct BenchOCSPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocsp", abstract: "OCSP answers/s vs. openssl ocsp -index, and CRL generation vs. openssl ca -gencrl.")

    @Option(help: "Certificates issued (one in ten revoked).")
    var certificates = 1000
    @Option(help: "Seconds per load.")
    var seconds = 5.0
    @Option(help: "Concurrent clients.")
    var concurrency = 8
    @Option(help: "Revoked entries in the CRL generation benchmark (0 skips it).")
    var crlEntries = 1_000_000
    @Option(help: "Entries in openssl ca -gencrl's CRL (it slows down with size: a 1,000,000-line index took over 200 s here).")
    var crlPeerEntries = 100_000
    @OptionGroup var binary: HallmarkBinaryOption

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-ocsp-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("hallmark-bench ocsp: \(certificates) certificates, \(concurrency) clients, \(seconds) s per load, \(cores) cores")

        let authority = try AuthorityFiles(dataDirectory: data).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let issued = try await issue(certificates, authority: authority, data: data)
        let server = try BenchServer.start(hallmark: binary.executable(), dataDirectory: data, passphrase: passphraseText)
        defer { server.stop() }
        let peer = try OpenSSLResponder.start(directory: directory, authority: authority, certificates: issued, processes: cores)
        defer { peer.stop() }
        try await Task.sleep(for: .seconds(1))

        let plain = try issued.map { try OCSPBenchRequest.der(issuer: authority.certificate, serial: $0.serial, nonce: false) }
        let nonced = try (0..<(issued.count * 4)).map {
            try OCSPBenchRequest.der(issuer: authority.certificate, serial: issued[$0 % issued.count].serial, nonce: true)
        }
        var failed = 0
        let loads: [(String, [[UInt8]], Bool)] = [
            ("without a nonce, a new connection each (pre-signed answers allowed)", plain, false),
            ("without a nonce, HTTP/1.1 keep-alive where the server keeps it (openssl closes after each answer)", plain, true),
            ("with a fresh nonce, a new connection each (signed per request)", nonced, false),
        ]
        for (name, requests, keepAlive) in loads {
            let ours = OCSPLoad.run(port: server.revocationPort, requests: requests, seconds: seconds, concurrency: concurrency, keepAlive: keepAlive)
            let theirs = OCSPLoad.run(port: peer.port, requests: requests, seconds: seconds, concurrency: concurrency, keepAlive: keepAlive)
            failed += ours.failed + theirs.failed
            print("requests \(name):")
            print(String(format: "  hallmark serve:      %8.0f answers/s (%d ok, %d failed)", ours.throughput, ours.succeeded, ours.failed))
            print(String(format: "  openssl ocsp -index: %8.0f answers/s (%d ok, %d failed; -multi %d)", theirs.throughput, theirs.succeeded, theirs.failed, cores))
            print(String(format: "  ratio %.2f%@", ours.throughput / max(theirs.throughput, 1), requests == plain ? " (target >= 3)" : ""))
        }
        if crlEntries > 0 { try benchCRL(authority: authority, directory: directory) }
        if failed > 0 { throw ExitCode.failure }
    }

    /// Issues certificates into the registry as enrollment does, and revokes one in ten.
    private func issue(_ count: Int, authority: IssuingAuthority, data: URL) async throws -> [CertificateRecord] {
        let fleet = try await BenchFleet.make(count: count, prefix: "OCSP")
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        _ = try registry.importAllowlist(.init(entries: fleet.map(\.entry)), source: "bench", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: authority)
        var records: [CertificateRecord] = []
        for device in fleet { records.append(try await service.enroll(csrDER: device.csrDER, source: nil).record) }
        for (index, record) in records.enumerated() where index % 10 == 0 {
            records[index].status = .revoked
            try await registry.setCertificateStatus(record.serial, to: .revoked, reason: "bench", revocationReason: .keyCompromise, now: Date())
        }
        registry.checkpoint()
        return records
    }

    /// Encodes and signs a CRL of `crlEntries` revoked certificates, beside `openssl ca -gencrl`.
    private func benchCRL(authority: IssuingAuthority, directory: URL) throws {
        let now = Date()
        var generator = SystemRandomNumberGenerator()
        let entries = (0..<crlEntries).map { index in
            CertificateRevocationList.Entry(
                serial: [0x01] + (0..<15).map { _ in UInt8.random(in: 0...255, using: &generator) },
                revokedAt: now - Double(index % 86400), reason: index % 3 == 0 ? .superseded : .keyCompromise)
        }
        let crl = CertificateRevocationList(
            issuer: authority.certificate, number: 1, thisUpdate: now, nextUpdate: now + 86400,
            distributionPoint: "http://127.0.0.1/crl/hallmark.crl", entries: entries)
        let start = Date()
        let der = try crl.signed(by: RevocationSigner(key: authority.signingKey))
        let ours = Date().timeIntervalSince(start)
        let peerEntries = Array(entries.prefix(crlPeerEntries))
        let theirs = try OpenSSLResponder.generateCRL(directory: directory, authority: authority, entries: peerEntries)
        let ourRate = Double(entries.count) / max(ours, 1e-6)
        let theirRate = Double(peerEntries.count) / max(theirs.seconds, 1e-6)
        print("CRL generation:")
        print(String(format: "  hallmark, %d entries (encode + sign): %.2f s, %.1f MB DER, %.0f entries/s", entries.count, ours, Double(der.count) / 1e6, ourRate))
        print(String(format: "  openssl ca -gencrl, %d entries:     %.2f s, %.1f MB DER, %.0f entries/s", peerEntries.count, theirs.seconds, Double(theirs.bytes) / 1e6, theirRate))
        print(String(format: "  ratio %.2f (entries per second, hallmark's / openssl's)", ourRate / max(theirRate, 1e-6)))
    }
}

/// OCSP requests as `openssl ocsp` writes them: one SHA-1 CertID, and a 16-byte nonce or none.
enum OCSPBenchRequest {
    static func der(issuer: Certificate, serial: String, nonce: Bool) throws -> [UInt8] {
        var name = DER.Serializer()
        try name.serialize(issuer.subject)
        let nameHash = Array(Insecure.SHA1.hash(data: name.serializedBytes))
        let keyHash = Array(Insecure.SHA1.hash(data: issuer.publicKey.subjectPublicKeyInfoBytes))
        let serialBytes = [UInt8](hexString: serial) ?? [1]
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.appendConstructedNode(identifier: .sequence) { coder in
                                try coder.serialize([1, 3, 14, 3, 2, 26] as ASN1ObjectIdentifier)
                                try coder.serialize(ASN1Null())
                            }
                            try coder.serialize(ASN1OctetString(contentBytes: nameHash[...]))
                            try coder.serialize(ASN1OctetString(contentBytes: keyHash[...]))
                            try coder.serialize(serialBytes[...])
                        }
                    }
                }
                guard nonce else { return }
                var value = DER.Serializer()
                try value.serialize(ASN1OctetString(contentBytes: ArraySlice((0..<16).map { _ in UInt8.random(in: 0...255) })))
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(
                            Certificate.Extension(oid: [1, 3, 6, 1, 5, 5, 7, 48, 1, 2], critical: false, value: value.serializedBytes[...]))
                    }
                }
            }
        }
        return coder.serializedBytes
    }
}
