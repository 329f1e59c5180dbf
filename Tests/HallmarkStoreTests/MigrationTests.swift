import Foundation
import GRDB
@testable import HallmarkStore
import Testing

/// A registry made by an earlier version opens with its data intact under the newest schema.
@Suite struct MigrationTests {
    @Test func certificatesKeepTheirDevicesAndTheOneActiveRuleAcrossV6() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("registry.sqlite").path

        do {
            let queue = try DatabaseQueue(path: path)
            try RegistrySchema.migrator.migrate(queue, upTo: "v5-certificates-by-tenant")
            try queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO tenants (id, name, created_at) VALUES ('default', 'Default tenant', 0);
                        INSERT INTO devices (udid, tenant_id, product_id, public_key, key_fingerprint, source, status, created_at, updated_at)
                            VALUES ('D-1', 'default', 'default', x'00', 'kf', 't', 'enrolled', 0, 0);
                        """)
                // A device's renewed certificate, its current one, and a registered CA's certificate (no device).
                for (fingerprint, udid, status) in [("f-old", "'D-1'", "superseded"), ("f-new", "'D-1'", "active"), ("f-oem", "NULL", "active")] {
                    try db.execute(
                        sql: """
                            INSERT INTO certificates (fingerprint, serial, tenant_id, thing_name, udid, key_fingerprint,
                                not_before, not_after, status, issued_at, der)
                            VALUES ('\(fingerprint)', '\(fingerprint)', 'default', 'thing', \(udid), 'kf', 0, 1, '\(status)', 0, x'00')
                            """)
                }
            }
        }

        let registry = try Registry(path: path)
        #expect(try registry.certificates(udid: .init(validating: "D-1")).map(\.fingerprint).sorted() == ["f-new", "f-old"])
        #expect(try registry.activeCertificate(.init(validating: "D-1"))?.fingerprint == "f-new")
        #expect(throws: (any Error).self) {
            try registry.execute(
                sql: """
                    INSERT INTO certificates (fingerprint, serial, tenant_id, thing_name, udid, key_fingerprint,
                        not_before, not_after, status, issued_at, der)
                    VALUES ('f-second', 'f-second', 'default', 'thing', 'D-1', 'kf', 0, 1, 'active', 0, x'00')
                    """)
        }
    }
}
