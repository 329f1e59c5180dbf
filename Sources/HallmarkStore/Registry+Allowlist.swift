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
        /// Every problem, from the file and against the registry, by line.
        public var problems: [AllowlistProblem] = []
        /// False when nothing was written because of invalid rows.
        public var committed = false

        public var invalidCount: Int { problems.count { $0.severity == .invalid } }
    }

    /// Imports parsed allowlist entries in one transaction.
    ///
    /// A row that repeats a registry record exactly is skipped. A UDID already on record with
    /// another key, or a key already on record for another UDID, is a conflict. Unless
    /// `skipInvalid`, any invalid row (from the file or a conflict) means nothing is imported.
    /// - Parameters:
    ///   - parsed: The parser's result.
    ///   - source: Where the rows came from, kept as each record's provenance.
    ///   - product: The product the devices belong to.
    ///   - progress: Called with rows written so far.
    public func importAllowlist(
        _ parsed: AllowlistParser.Result, source: String, product: String = defaultProduct,
        tenant: String = defaultTenant, skipInvalid: Bool, now: Date, progress: @Sendable (Int) -> Void = { _ in }
    ) throws -> ImportReport {
        var report = ImportReport()
        report.problems = parsed.problems
        guard try self.product(tenant: tenant, id: product) != nil else {
            throw HallmarkError(
                .notFound, "Product \(product) does not exist.", remedy: "Create it first, or import into the default product.")
        }
        do {
            try pool.write { db in
                let byUDID = try db.cachedStatement(sql: "SELECT key_fingerprint FROM devices WHERE udid = ?")
                let byKey = try db.cachedStatement(sql: "SELECT udid FROM devices WHERE key_fingerprint = ?")
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO devices (udid, tenant_id, product_id, public_key, key_fingerprint, source, status, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, 'allowed', ?, ?)
                        """)
                let at = now.timeIntervalSince1970
                for (index, entry) in parsed.entries.enumerated() {
                    if index % 5000 == 0 { progress(index) }
                    let fingerprint = entry.key.fingerprint
                    if let existing = try String.fetchOne(byUDID, arguments: [entry.udid.rawValue]) {
                        if existing == fingerprint {
                            report.alreadyPresent += 1
                        } else {
                            report.problems.append(
                                AllowlistProblem(
                                    line: entry.line, udid: entry.udid.rawValue, severity: .invalid,
                                    error: HallmarkError(
                                        .allowlistConflict, "UDID is already registered with another key.",
                                        remedy: "Check the vendor's records; a changed key for a known UDID is a counterfeit sign.")))
                        }
                        continue
                    }
                    if let owner = try String.fetchOne(byKey, arguments: [fingerprint]) {
                        report.problems.append(
                            AllowlistProblem(
                                line: entry.line, udid: entry.udid.rawValue, severity: .invalid,
                                error: HallmarkError(
                                    .allowlistConflict, "Key is already registered for device \(owner).",
                                    remedy: "Two devices cannot share a root-of-trust key; check the export.")))
                        continue
                    }
                    try insert.execute(arguments: [
                        entry.udid.rawValue, tenant, product, Data(entry.key.spkiDER), fingerprint, source, at, at,
                    ])
                    report.imported += 1
                }
                progress(parsed.entries.count)
                if report.invalidCount > 0 && !skipInvalid {
                    throw ImportAborted()
                }
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: "allowlist.import", decision: .allow, code: "imported",
                        source: source,
                        detail: "\(report.imported) imported, \(report.alreadyPresent) already present, \(report.invalidCount) invalid skipped"),
                    db)
            }
            report.committed = true
        } catch is ImportAborted {
            report.imported = 0
            report.alreadyPresent = 0
            report.committed = false
        }
        return report
    }

    private struct ImportAborted: Error {}

    /// Writes allowlist entries without checks: for generating large fixtures quickly.
    package func insertDevicesUnchecked(_ entries: [AllowlistEntry], source: String, now: Date) throws {
        try pool.write { db in
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO devices (udid, tenant_id, product_id, public_key, key_fingerprint, source, status, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, 'allowed', ?, ?)
                    """)
            for entry in entries {
                try insert.execute(arguments: [
                    entry.udid.rawValue, Self.defaultTenant, Self.defaultProduct, Data(entry.key.spkiDER),
                    entry.key.fingerprint, source, now.timeIntervalSince1970, now.timeIntervalSince1970,
                ])
            }
        }
    }
}
