import Foundation
import HallmarkCore
@testable import HallmarkHTTP
import Testing

/// docs/errors.md against the codes Hallmark has.
@Suite struct ErrorDocsTests {
    /// The table's rows: code → HTTP status.
    func documented() throws -> [String: Int] {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/errors.md")
        var rows: [String: Int] = [:]
        for line in try String(contentsOf: docs, encoding: .utf8).split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, let status = Int(cells[1]) else { continue }
            rows[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = status
        }
        return rows
    }

    @Test func everyCodeIsDocumentedWithItsStatus() throws {
        let rows = try documented()
        for code in HallmarkError.Code.all {
            #expect(rows[code.rawValue] == Int(ErrorResponse.status(for: code).code), "docs/errors.md: \(code)")
        }
        #expect(rows.count == HallmarkError.Code.all.count, "docs/errors.md lists a code Hallmark does not have")
    }

    @Test func aClientsMistakeIsNeverA500() {
        for code in HallmarkError.Code.all where [.invalid, .refused, .unauthenticated, .notFound, .conflict, .tooLarge].contains(code.kind) {
            #expect(ErrorResponse.status(for: code).code < 500, "\(code)")
        }
    }

    @Test func aStoredCodeReadsBackAndAnUnknownOneDoesNot() throws {
        #expect(HallmarkError.Code(rawValue: "unknown_device") == .unknownDevice)
        #expect(HallmarkError.Code(rawValue: "no_such_code") == nil)
        let data = try JSONEncoder().encode([HallmarkError.Code.quotaExceeded])
        #expect(String(decoding: data, as: UTF8.self) == #"["quota_exceeded"]"#)
        #expect(try JSONDecoder().decode([HallmarkError.Code].self, from: data) == [.quotaExceeded])
    }

    @Test func theUnderlyingErrorStaysOutOfTheDescription() {
        struct Secret: Error { var key = "BEGIN EC PRIVATE KEY" }
        let error = HallmarkError(.internalError, "The server failed.", remedy: "Retry.", underlying: Secret())
        #expect(!error.description.contains("PRIVATE"))
        #expect(error.debugDescription.contains("Secret"))
    }
}
