import HallmarkCore
import Hummingbird
import NIOCore

import Foundation

/// How a ``HallmarkError`` goes on the wire: an HTTP status chosen by its code and a JSON body
/// `{"error": {"code", "message", "remedy"}}`.
enum ErrorResponse {
    static func status(for code: HallmarkError.Code) -> HTTPResponse.Status {
        switch code.kind {
        case .invalid: .badRequest
        case .unsupportedMediaType: .unsupportedMediaType
        case .tooLarge: .contentTooLarge
        case .unauthenticated: .unauthorized
        case .refused: .forbidden
        case .conflict: .conflict
        case .notFound: .notFound
        case .serverSetup, .internal: .internalServerError
        case .unavailable: .serviceUnavailable
        }
    }

    static func make(_ error: HallmarkError) -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                var code: String
                var message: String
                var remedy: String
            }
            var error: Detail
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data =
            (try? encoder.encode(
                Body(error: .init(code: error.code.rawValue, message: error.reason, remedy: error.remedy))))
            ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if error.code.kind == .unavailable { headers[.retryAfter] = "5" }
        return Response(
            status: status(for: error.code), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: Array(data) + [0x0A])))
    }
}

/// Hummingbird renders a thrown ``HallmarkError`` as ``ErrorResponse`` does.
extension HallmarkError: HTTPResponseError {
    public var status: HTTPResponse.Status { ErrorResponse.status(for: code) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        ErrorResponse.make(self)
    }
}
