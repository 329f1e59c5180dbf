import GRDB
import GRDBSQLite

import Foundation

/// The current result row of a statement, read by position straight from SQLite.
///
/// GRDB's `Row` copies and lowercases every column name into a dictionary each time a statement
/// is fetched from, for lookups by name; the enrollment path reads its 18-column view twice per
/// request and never looks a column up by name.
struct Columns {
    let statement: SQLiteStatement

    func isNull(_ index: Int) -> Bool { sqlite3_column_type(statement, CInt(index)) == SQLITE_NULL }

    func string(_ index: Int) -> String {
        guard let text = sqlite3_column_text(statement, CInt(index)) else { return "" }
        return String(cString: text)
    }

    func optionalString(_ index: Int) -> String? { isNull(index) ? nil : string(index) }

    func double(_ index: Int) -> Double { sqlite3_column_double(statement, CInt(index)) }

    func optionalDouble(_ index: Int) -> Double? { isNull(index) ? nil : double(index) }

    func bytes(_ index: Int) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, CInt(index)))
        guard count > 0, let blob = sqlite3_column_blob(statement, CInt(index)) else { return [] }
        return Array(UnsafeRawBufferPointer(start: blob, count: count))
    }
}

/// A cursor that decodes each row with a closure over ``Columns``.
final class RecordCursor<Element>: DatabaseCursor {
    let _statement: Statement
    var _isDone = false
    private let decode: (Columns) throws -> Element

    init(_ statement: Statement, arguments: StatementArguments, decode: @escaping (Columns) throws -> Element) throws {
        self._statement = statement
        self.decode = decode
        try statement.setArguments(arguments)  // resets the statement, then binds
    }

    deinit {
        // A statement left mid-step would hold its read transaction open.
        sqlite3_reset(_statement.sqliteStatement)
    }

    func _element(sqliteStatement: SQLiteStatement) throws -> Element {
        try decode(Columns(statement: sqliteStatement))
    }
}

extension Database {
    /// The first row of a cached statement's result, decoded.
    func fetchRecord<T>(
        sql: String, arguments: StatementArguments = [], _ decode: @escaping (Columns) throws -> T
    ) throws -> T? {
        try RecordCursor(cachedStatement(sql: sql), arguments: arguments, decode: decode).next()
    }

    /// Every row of a statement's result, decoded.
    func fetchRecords<T>(
        sql: String, arguments: StatementArguments = [], _ decode: @escaping (Columns) throws -> T
    ) throws -> [T] {
        try Array(RecordCursor(makeStatement(sql: sql), arguments: arguments, decode: decode))
    }
}
