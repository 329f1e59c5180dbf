#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// IP addresses, `ip:port` and CIDR blocks as Device Defender's metrics and behaviours write them.
public enum NetworkAddress {
    /// The address's bytes (4 for IPv4, 16 for IPv6); nil for anything else.
    public static func bytes(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    public static func isIP(_ text: String) -> Bool { bytes(text) != nil }

    /// The host part of `ip:port` (`[v6]:port` for IPv6); nil when it is not that.
    public static func host(ofHostPort text: String) -> String? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return isIP(host) ? host : nil
    }

    public static func isHostPort(_ text: String) -> Bool { host(ofHostPort: text) != nil }

    /// A CIDR block (`10.0.0.0/8`, `2001:db8::/32`; a bare address is its own /32 or /128).
    public struct CIDR: Sendable, Hashable {
        public let network: [UInt8]
        public let prefixLength: Int

        public init?(_ text: String) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let bytes = NetworkAddress.bytes(String(parts[0])) else { return nil }
            let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let length, (0...bytes.count * 8).contains(length) else { return nil }
            network = bytes
            prefixLength = length
        }

        /// Whether an address (in the same family) lies in the block.
        public func contains(_ address: String) -> Bool {
            guard let bytes = NetworkAddress.bytes(address), bytes.count == network.count else { return false }
            var left = prefixLength
            for index in 0..<bytes.count where left > 0 {
                let bits = min(8, left)
                let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
                if bytes[index] & mask != network[index] & mask { return false }
                left -= bits
            }
            return true
        }
    }
}
