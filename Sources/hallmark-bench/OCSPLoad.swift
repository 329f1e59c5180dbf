import Foundation
import Glibc

/// Clients on threads of their own, each sending OCSP requests one at a time, a new TCP
/// connection each (HTTP/1.0, as `openssl ocsp` does), and checking each answer is a successful
/// OCSPResponse.
enum OCSPLoad {
    struct Result {
        var succeeded = 0
        var failed = 0
        var seconds = 0.0
        var throughput: Double { Double(succeeded) / max(seconds, 1e-9) }
    }

    /// Totals the clients add to.
    private final class Totals: @unchecked Sendable {
        let lock = NSLock()
        var result = Result()
        func add(_ local: Result) {
            lock.lock()
            result.succeeded += local.succeeded
            result.failed += local.failed
            lock.unlock()
        }
    }

    /// With `keepAlive`, each client sends HTTP/1.1 and keeps its connection for as long as the
    /// server does (a server that closes after each answer gets a new connection per request).
    static func run(port: Int, requests: [[UInt8]], seconds: Double, concurrency: Int, keepAlive: Bool = false) -> Result {
        let deadline = Date() + seconds
        let totals = Totals()
        let done = DispatchGroup()
        let start = Date()
        for client in 0..<concurrency {
            done.enter()
            Thread.detachNewThread {
                var local = Result()
                var index = client
                var connection: Int32?
                while Date() < deadline {
                    let body = requests[index % requests.count]
                    let ok = keepAlive ? exchange(on: &connection, port: port, body: body) : exchange(port: port, body: body)
                    if ok { local.succeeded += 1 } else { local.failed += 1 }
                    index += concurrency
                }
                if let connection { close(connection) }
                totals.add(local)
                done.leave()
            }
        }
        done.wait()
        var total = totals.result
        total.seconds = Date().timeIntervalSince(start)
        return total
    }

    /// One HTTP/1.1 request on the client's connection (opened if there is none, closed when the
    /// server says so); true for a 200 with a successful OCSPResponse.
    static func exchange(on connection: inout Int32?, port: Int, body: [UInt8]) -> Bool {
        if connection == nil { connection = open(port: port) }
        guard let fd = connection else { return false }
        let head = "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: \(body.count)\r\n\r\n"
        guard write(fd, Array(head.utf8) + body) else {
            close(fd)
            connection = nil
            return false
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var headerEnd: Int?
        var length: Int?
        var closes = false
        while true {
            if let end = headerEnd, let length, response.count >= end + 4 + length { break }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                closes = true
                break
            }
            response.append(contentsOf: buffer[0..<n])
            if headerEnd == nil, let end = (0..<max(0, response.count - 3)).first(where: { response[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) {
                headerEnd = end
                let headers = String(decoding: response[..<end], as: UTF8.self).lowercased()
                closes = headers.hasPrefix("http/1.0") || headers.contains("connection: close")
                if let line = headers.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                    length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
                }
            }
        }
        if closes {
            close(fd)
            connection = nil
        }
        return successful(response)
    }

    static func open(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    static func write(_ fd: Int32, _ message: [UInt8]) -> Bool {
        var sent = 0
        while sent < message.count {
            let n = message[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    /// One request on a new connection; true for `HTTP/1.x 200` with a successful OCSPResponse.
    static func exchange(port: Int, body: [UInt8]) -> Bool {
        guard let fd = open(port: port) else { return false }
        defer { close(fd) }
        let head = "POST /ocsp HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: \(body.count)\r\n\r\n"
        guard write(fd, Array(head.utf8) + body) else { return false }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return successful(response)
    }

    /// Whether a whole HTTP response is a 200 whose body is a successful OCSPResponse.
    static func successful(_ response: [UInt8]) -> Bool {
        // The status line, then the body after the blank line: SEQUENCE { ENUMERATED 0, ... }.
        guard response.count > 12, response[9] == UInt8(ascii: "2"), response[10] == UInt8(ascii: "0"), response[11] == UInt8(ascii: "0"),
            let end = (0..<(response.count - 3)).first(where: { response[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) })
        else { return false }
        let answer = response[(end + 4)...]
        guard let first = answer.first, first == 0x30, answer.count > 6 else { return false }
        let lengthBytes = answer[answer.startIndex + 1] & 0x80 == 0 ? 0 : Int(answer[answer.startIndex + 1] & 0x7f)
        let status = answer.startIndex + 2 + lengthBytes
        return status + 2 < answer.endIndex && answer[status] == 0x0a && answer[status + 1] == 0x01 && answer[status + 2] == 0x00
    }
}
