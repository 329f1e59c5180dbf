import Foundation
import GRDB
@testable import HallmarkStore
import Testing

/// The batched writer: each job's own outcome, reads between batches, answers only once committed.
@Suite struct GroupCommitterTests {
    private func withCommitter(_ body: (GroupCommitter, DatabasePool) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-committer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try DatabasePool(path: directory.appendingPathComponent("t.sqlite").path)
        try await pool.write { db in try db.execute(sql: "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)") }
        try await body(GroupCommitter(pool: pool), pool)
    }

    @Test func concurrentReadsAndWritesEachGetTheirOwnOutcome() async throws {
        try await withCommitter { committer, pool in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for k in 0..<200 {
                    group.addTask {
                        if k % 10 == 7 {
                            // A failing job is undone alone; its error reaches its caller only.
                            await #expect(throws: DatabaseError.self) {
                                try await committer.perform { db in
                                    try db.execute(sql: "INSERT INTO t (k, v) VALUES (?, 'x')", arguments: [k])
                                    try db.execute(sql: "INSERT INTO t (k, v) VALUES (?, NULL)", arguments: [k + 1000])
                                }
                            }
                            return
                        }
                        try await committer.perform { db in
                            try db.execute(sql: "INSERT INTO t (k, v) VALUES (?, ?)", arguments: [k, "v\(k)"])
                        }
                        // A read after a caller's commit sees the committed row.
                        let value = try await committer.read { db in
                            try String.fetchOne(db, sql: "SELECT v FROM t WHERE k = ?", arguments: [k])
                        }
                        #expect(value == "v\(k)")
                        // A failing read reports its own error and harms no batch.
                        await #expect(throws: DatabaseError.self) {
                            try await committer.read { db in try Int.fetchOne(db, sql: "SELECT missing FROM t") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let (count, failed) = try await pool.read { db in
                (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") ?? -1,
                 try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t WHERE k % 10 = 7 OR k >= 1000") ?? -1)
            }
            #expect(count == 180)
            #expect(failed == 0)
        }
    }
}
