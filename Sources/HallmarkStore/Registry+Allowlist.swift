import GRDB
import HallmarkCore

import Foundation

extension Registry {
    /// What an allowlist import did.
    public struct ImportReport: Sendable {
        /// Rows written to the registry.
        public var imported = 0
        /// Rows identical to a record already in the registry (skipped, nothing changed).
        public var alreadyPresent = 0
        /// Rows read.
        public var rowsRead = 0
        /// Rows repeating an earlier row of the same file (skipped, nothing changed).
        public var duplicates = 0
        /// Rows that cannot be imported: unreadable, or in conflict with the file or the registry.
        public var invalidCount = 0
        /// The first ``problemsKept`` problems, from the file and against the registry, by line;
        /// the counts cover them all.
        public var problems: [AllowlistProblem] = []
        /// False when nothing was written because of invalid rows.
        public var committed = false

        /// How many problems a report lists: enough to fix a file by, few enough that a file of
        /// bad rows does not fill the memory.
        public static let problemsKept = 1000

        mutating func record(_ problem: AllowlistProblem) {
            switch problem.severity {
            case .invalid: invalidCount += 1
            case .duplicate: duplicates += 1
            }
            if problems.count < Self.problemsKept { problems.append(problem) }
        }
    }

    /// Imports a parsed allowlist in one transaction (see ``importAllowlist(nextRow:source:product:tenant:skipInvalid:now:progress:)``).
    public func importAllowlist(
        _ parsed: AllowlistParser.Result, source: String, product: String = defaultProduct,
        tenant: String = defaultTenant, skipInvalid: Bool, now: Date, progress: (Int) -> Void = { _ in }
    ) throws -> ImportReport {
        let rows = parsed.problems.map { (line: $0.line, row: AllowlistRow.problem($0)) } + parsed.entries.map { ($0.line, .entry($0)) }
        var iterator = rows.sorted { $0.line < $1.line }.lazy.map(\.row).makeIterator()
        return try importAllowlist(
            nextRow: { iterator.next() }, source: source, product: product, tenant: tenant, skipInvalid: skipInvalid, now: now,
            progress: progress)
    }

    /// Imports allowlist rows in one transaction, reading them as it goes: the rows are never all
    /// in memory.
    ///
    /// A row that repeats a registry record exactly is skipped. A UDID already on record with
    /// another key, or a key already on record for another UDID, is a conflict. Unless
    /// `skipInvalid`, any invalid row (from the file or a conflict) means nothing is imported.
    /// - Parameters:
    ///   - nextRow: The next row, each checked against the rows before it (``AllowlistRows``); nil
    ///     after the last. What it throws ends the import with nothing written.
    ///   - source: Where the rows came from, kept as each record's provenance.
    ///   - product: The product the devices belong to.
    ///   - progress: Called with the number of rows read so far, every few thousand rows.
    public func importAllowlist(
        nextRow: () throws -> AllowlistRow?, source: String, product: String = defaultProduct,
        tenant: String = defaultTenant, skipInvalid: Bool, now: Date, progress: (Int) -> Void = { _ in }
    ) throws -> ImportReport {
        var report = ImportReport()
        guard try self.product(tenant: tenant, id: product) != nil else {
            throw HallmarkError(
                .notFound, "Product \(product) does not exist.", remedy: "Create it first, or import into the default product.")
        }
        do {
            try pool.write { db in
                // A large import changes index pages all over: with SQLite's default 2 MB cache they
                // are spilled to the WAL and read back again and again (a 500,000-row import took
                // seven times as long as one of 100,000).
                let cacheSize = try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? -2000
                try db.execute(sql: "PRAGMA cache_size = -65536")
                defer { try? db.execute(sql: "PRAGMA cache_size = \(cacheSize)") }
                let byUDID = try db.cachedStatement(sql: "SELECT key_fingerprint FROM devices WHERE udid = ?")
                let byKey = try db.cachedStatement(sql: "SELECT udid FROM devices WHERE key_fingerprint = ?")
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO devices (udid, tenant_id, product_id, public_key, key_fingerprint, source, status, created_at, updated_at, firmware_key)
                        VALUES (?, ?, ?, ?, ?, ?, 'allowed', ?, ?, ?)
                        """)
                // A device listed again with its firmware key gains it, if it had none.
                let addFirmwareKey = try db.cachedStatement(
                    sql: "UPDATE devices SET firmware_key = ?, updated_at = ? WHERE udid = ? AND firmware_key IS NULL")
                let at = now.timeIntervalSince1970
                while let row = try nextRow() {
                    report.rowsRead += 1
                    if report.rowsRead % 5000 == 0 { progress(report.rowsRead) }
                    let entry: AllowlistEntry
                    switch row {
                    case .problem(let problem):
                        report.record(problem)
                        continue
                    case .entry(let read):
                        entry = read
                    }
                    let fingerprint = entry.key.fingerprint
                    if let existing = try String.fetchOne(byUDID, arguments: [entry.udid.rawValue]) {
                        if existing == fingerprint {
                            report.alreadyPresent += 1
                            if let firmwareKey = entry.firmwareKey {
                                try addFirmwareKey.execute(arguments: [Data(firmwareKey.spkiDER), at, entry.udid.rawValue])
                            }
                        } else {
                            report.record(
                                AllowlistProblem(
                                    line: entry.line, udid: entry.udid.rawValue, severity: .invalid,
                                    error: HallmarkError(
                                        .allowlistConflict, "UDID is already registered with another key.",
                                        remedy: "Check the vendor's records; a changed key for a known UDID is a counterfeit sign.")))
                        }
                        continue
                    }
                    if let owner = try String.fetchOne(byKey, arguments: [fingerprint]) {
                        report.record(
                            AllowlistProblem(
                                line: entry.line, udid: entry.udid.rawValue, severity: .invalid,
                                error: HallmarkError(
                                    .allowlistConflict, "Key is already registered for device \(owner).",
                                    remedy: "Two devices cannot share a root-of-trust key; check the export.")))
                        continue
                    }
                    try insert.execute(arguments: [
                        entry.udid.rawValue, tenant, product, Data(entry.key.spkiDER), fingerprint, source, at, at,
                        entry.firmwareKey.map { Data($0.spkiDER) },
                    ])
                    report.imported += 1
                }
                progress(report.rowsRead)
                if report.invalidCount > 0 && !skipInvalid {
                    throw ImportAborted()
                }
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .allowlistImport, decision: .allow, code: "imported",
                        source: source,
                        detail: "\(report.imported) imported, \(report.alreadyPresent) already present, \(report.duplicates) duplicate rows, \(report.invalidCount) invalid skipped"),
                    db)
            }
            report.committed = true
        } catch is ImportAborted {
            report.imported = 0
            report.alreadyPresent = 0
            report.committed = false
            try pool.write { db in
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .allowlistImport, decision: .refuse, code: HallmarkError.Code.allowlistInvalid.rawValue,
                        source: source,
                        detail: "nothing imported: \(report.invalidCount) invalid of \(report.rowsRead) rows (first on line \(report.problems.first { $0.severity == .invalid }?.line ?? 0))"),
                    db)
            }
        }
        return report
    }

    private struct ImportAborted: Error {}
}
