import Foundation
import Glibc
import HallmarkCore
import HallmarkStore
import Revocation
import X509

/// `openssl ocsp -index` serving the same certificates with the same CA key (a peer for the
/// OCSP benchmark), and `openssl ca -gencrl` for the CRL one.
final class OpenSSLResponder: @unchecked Sendable {
    let process: Process
    let port: Int

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    /// The issuing CA's certificate and key as PEM files openssl reads (the key unsealed, in a
    /// temporary directory the benchmark removes).
    static func writeCA(_ authority: IssuingAuthority, to directory: URL) throws -> (certificate: URL, key: URL) {
        let certificate = directory.appendingPathComponent("issuing.pem")
        let key = directory.appendingPathComponent("issuing.key")
        try Data(try authority.certificate.serializeAsPEM().pemString.utf8).write(to: certificate)
        try Data(try authority.signingKey.serializeAsPEM().pemString.utf8).write(to: key)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
        return (certificate, key)
    }

    /// An `openssl ca` index line: status, expiry, revocation (time,reason), serial, file, subject.
    static func indexLine(serial: String, notAfter: Date, revokedAt: Date?, reason: String = "keyCompromise") -> String {
        let revoked = revokedAt.map { "\(time($0)),\(reason)" } ?? ""
        return "\(revokedAt == nil ? "V" : "R")\t\(time(notAfter))\t\(revoked)\t\(serial.uppercased())\tunknown\t/CN=\(serial)\n"
    }

    static func time(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyMMddHHmmss'Z'"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: date)
    }

    static func start(directory: URL, authority: IssuingAuthority, certificates: [CertificateRecord], processes: Int) throws -> OpenSSLResponder {
        let (certificate, key) = try writeCA(authority, to: directory)
        let index = directory.appendingPathComponent("index.txt")
        let now = Date()
        try Data(certificates.map { indexLine(serial: $0.serial, notAfter: $0.notAfter, revokedAt: $0.status == .revoked ? now : nil) }
            .joined().utf8).write(to: index)
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "ocsp", "-index", index.path, "-port", "\(port)", "-rsigner", certificate.path, "-rkey", key.path,
            "-CA", certificate.path, "-nmin", "60", "-multi", "\(processes)", "-ignore_err",
        ]
        let log = directory.appendingPathComponent("openssl-ocsp.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        for _ in 0..<100 {
            if OCSPLoad.exchange(port: port, body: [0x30, 0x00]) || canConnect(port) { return OpenSSLResponder(process: process, port: port) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "openssl ocsp did not start: \(said.prefix(400))"])
    }

    /// Ends the responder and the children `-multi` forked (its parent does not exit on SIGTERM).
    func stop() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        for child in children.split(separator: " ").compactMap({ Int32($0) }) { kill(child, SIGKILL) }
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    /// `openssl ca -gencrl` over an index of the same revoked serials; its wall time and size.
    static func generateCRL(
        directory: URL, authority: IssuingAuthority, entries: [CertificateRevocationList.Entry]
    ) throws -> (seconds: Double, bytes: Int) {
        let (certificate, key) = try writeCA(authority, to: directory)
        let index = directory.appendingPathComponent("crl-index.txt")
        let notAfter = Date() + 86400 * 30
        var text = ""
        text.reserveCapacity(entries.count * 80)
        for entry in entries {
            text += indexLine(
                serial: entry.serial.map { String(format: "%02X", $0) }.joined(), notAfter: notAfter, revokedAt: entry.revokedAt,
                reason: entry.reason == .superseded ? "superseded" : "keyCompromise")
        }
        try Data(text.utf8).write(to: index)
        let config = directory.appendingPathComponent("ca.cnf")
        try Data(
            """
            [ ca ]
            default_ca = bench
            [ bench ]
            database = \(index.path)
            crlnumber = \(directory.appendingPathComponent("crlnumber").path)
            default_md = sha256
            default_crl_days = 1
            crl_extensions = crl_ext
            [ crl_ext ]
            authorityKeyIdentifier = keyid
            """.utf8
        ).write(to: config)
        try Data("01\n".utf8).write(to: directory.appendingPathComponent("crlnumber"))
        let out = directory.appendingPathComponent("openssl.crl")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["ca", "-gencrl", "-config", config.path, "-keyfile", key.path, "-cert", certificate.path, "-out", out.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let start = Date()
        try process.run()
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        guard process.terminationStatus == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "openssl ca -gencrl failed"])
        }
        let pem = try String(contentsOf: out, encoding: .utf8)
        let base64 = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return (seconds, Data(base64Encoded: base64)?.count ?? 0)
    }

    static func canConnect(_ port: Int) -> Bool {
        guard let fd = OCSPLoad.open(port: port) else { return false }
        close(fd)
        return true
    }

    /// A port free on 127.0.0.1 now (bound and released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
