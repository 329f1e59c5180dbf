import HallmarkCore
import Hummingbird
import NIOCore

import Foundation

/// How a ``HallmarkError`` goes on the wire: an HTTP status chosen by its code and a JSON body
/// `{"error": {"code", "message", "remedy"}}`.
enum ErrorResponse {
    static func status(for code: HallmarkError.Code) -> HTTPResponse.Status {
        switch code {
        case .unsupportedMediaType: return .unsupportedMediaType
        case .bodyTooLarge: return .contentTooLarge
        case .bodyEncodingInvalid, .csrMalformed, .csrSignatureInvalid, .udidMissing, .udidInvalid,
            .keyAlgorithmNotAllowed, .manifestInvalid, .manifestSignatureInvalid, .batchInvalid, .tenantInvalid, .vendorInvalid:
            return .badRequest
        case .credentialInvalid: return .unauthorized
        case .ownershipConflict: return .conflict
        case .notFound: return .notFound
        case .internalError: return .internalServerError
        default: return .forbidden
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
        return Response(
            status: status(for: error.code), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: Array(data) + [0x0A])))
    }
}
