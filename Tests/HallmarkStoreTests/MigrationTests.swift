import Foundation
import GRDB
@testable import HallmarkStore
import Testing

/// A registry made by an earlier version opens with its data intact under the newest schema.
@Suite struct MigrationTests {
    @Test func anUnchangedDefaultPolicyGainsTheJobsTopicsAnEditedOneDoesNot() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("registry.sqlite").path
        do {
            let queue = try DatabaseQueue(path: path)
            try RegistrySchema.migrator.migrate(queue, upTo: "v11-jobs")
            try queue.write { db in
                try db.execute(sql: "INSERT INTO tenants (id, name, created_at) VALUES ('default', 'Default tenant', 0), ('acme', 'Acme', 0)")
                try db.execute(
                    sql: "INSERT INTO policies (tenant_id, name, version, document, created_at) VALUES ('default', ?, 1, ?, 0), ('acme', ?, 1, ?, 0)",
                    arguments: [DefaultPolicy.name, DefaultPolicy.documentBeforeJobs, DefaultPolicy.name, #"{"Version":"2012-10-17","Statement":[]}"#])
            }
        }
        let registry = try Registry(path: path)
        let versions = try registry.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT tenant_id, MAX(version) AS v, document FROM policies GROUP BY tenant_id ORDER BY tenant_id")
        }
        #expect(versions.map { $0["v"] as Int } == [1, 2])
        #expect((versions[1]["document"] as String) == DefaultPolicy.document)
        #expect((versions[0]["document"] as String).contains("Statement\":[]"))
    }

    @Test func anUnchangedDefaultPolicyGainsTheDefenderTopicsAtV14() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("registry.sqlite").path
        do {
            let queue = try DatabaseQueue(path: path)
            try RegistrySchema.migrator.migrate(queue, upTo: "v13-fleet-provisioning")
            try queue.write { db in
                try db.execute(sql: "INSERT INTO tenants (id, name, created_at) VALUES ('default', 'Default tenant', 0)")
                try db.execute(
                    sql: "INSERT INTO policies (tenant_id, name, version, document, created_at) VALUES ('default', ?, 3, ?, 0)",
                    arguments: [DefaultPolicy.name, DefaultPolicy.documentBeforeDefender])
            }
        }
        let registry = try Registry(path: path)
        let latest = try registry.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT version, document FROM policies WHERE tenant_id = 'default' ORDER BY version DESC LIMIT 1")
        }
        #expect(latest?["version"] as Int? == 4)
        #expect((latest?["document"] as String?)?.contains("defender/*") == true)
        #expect(try registry.defenderSettings(tenant: "default", product: "default") == .init(signedOnly: false, minimumInterval: 300))
    }

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
