import HallmarkCore
import HTTPTypes
import Hummingbird
import NIOCore

/// EST's successful answers: base64 DER with `Content-Transfer-Encoding: base64` (RFC 7030 §4).
public enum ESTAnswer {
    /// An issued certificate, as certs-only PKCS#7 (`simpleenroll` and `simplereenroll`).
    public static func certificate(der: [UInt8]) throws -> Response {
        base64(ESTBody.encode(try CertsOnlyPKCS7.encode(der: [der])), contentType: "application/pkcs7-mime; smime-type=certs-only")
    }

    /// A body already base64-encoded, with its media type.
    public static func base64(_ body: String, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[HTTPField.Name("Content-Transfer-Encoding")!] = "base64"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
