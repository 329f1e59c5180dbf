import Foundation
import GRDB
import HallmarkServices
import HallmarkStore

/// The log scene: someone with the SQLite file rewrites an event, and `hallmark log verify` says
/// which one. The demo plays the attacker with SQLite directly, as anyone holding the file could.
extension DemoStory {
    func logScene(dataDirectory: URL) throws {
        report.scene("28. Someone with the database file rewrites history; the signed log says so")
        let files = AuthorityFiles(dataDirectory: dataDirectory)
        guard let verifier = files.logVerifier() else { return report.fail("the log's verifier key is not beside the CA") }
        let path = dataDirectory.appendingPathComponent("registry.sqlite").path
        let before = try LogAudit.audit(registry: try Registry(path: path), verifier: verifier)
        report.expect(
            before.ok && before.leaves > 0,
            "`hallmark log verify`: \(before.leaves) events, each a leaf; \(before.checkpointsChecked) signed checkpoints match")
        let queue = try DatabaseQueue(path: path)
        let edited = try queue.write { db -> Int64? in
            try db.execute(sql: "DROP TRIGGER events_are_append_only_update")
            let id = try Int64.fetchOne(db, sql: "SELECT id FROM events WHERE code = 'certificate_revoked' ORDER BY id DESC LIMIT 1")
            try db.execute(sql: "UPDATE events SET detail = 'nothing happened' WHERE id = ?", arguments: [id])
            return id
        }
        try queue.close()
        report.say("an insider drops the append-only trigger and rewrites event \(edited.map(String.init) ?? "?") (the stolen device's revocation)")
        let after = try LogAudit.audit(registry: try Registry(path: path), verifier: verifier)
        report.expect(
            !after.ok && after.findings.contains { $0.contains("event \(edited ?? -1) was edited") },
            "`hallmark log verify` refuses it: \(after.findings.first ?? "no finding")")
    }
}
