import Foundation

/// Decoding and encoding of EST message bodies: base64 DER (RFC 7030 §4 with RFC 8951), with
/// line breaks allowed. For the convenience of hand-driven clients, a PEM block or raw DER is
/// accepted too.
public enum ESTBody {
    /// Largest request body accepted, in bytes. A CSR is well under 4 KiB.
    public static let maximumRequestSize = 64 * 1024

    /// Decodes a request body into DER.
    /// - Throws: `body_encoding_invalid` when it is none of base64, PEM or DER.
    public static func decode(_ body: [UInt8]) throws(HallmarkError) -> [UInt8] {
        guard !body.isEmpty else {
            throw HallmarkError(
                .bodyEncodingInvalid, "The request body is empty.",
                remedy: "Send the CSR as base64 of its DER encoding (openssl req -outform DER | base64).")
        }
        if body.first == 0x30 && body.contains(where: { $0 >= 0x80 || $0 < 0x09 }) {
            return body  // raw DER
        }
        // Work on bytes: keep the base64 alphabet, drop whitespace and any PEM armour lines.
        var compact: [UInt8] = []
        compact.reserveCapacity(body.count)
        var lineStart = true
        var skippingLine = false
        for byte in body {
            if lineStart { skippingLine = byte == UInt8(ascii: "-") }
            lineStart = byte == 0x0A
            if skippingLine || byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { continue }
            compact.append(byte)
        }
        guard let data = Data(base64Encoded: Data(compact)), !data.isEmpty else {
            throw HallmarkError(
                .bodyEncodingInvalid, "The request body is not valid base64.",
                remedy: "Send the CSR as base64 of its DER encoding (openssl req -outform DER | base64).")
        }
        return Array(data)
    }

    /// Encodes DER as base64 in 64-character lines ending in LF, which `base64 -d` and openssl read.
    public static func encode(_ der: [UInt8]) -> String {
        Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed]) + "\n"
    }
}
