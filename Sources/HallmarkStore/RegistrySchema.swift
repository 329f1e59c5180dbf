import GRDB

/// The registry's versioned migrations. A migration, once shipped, never changes; new ones follow.
enum RegistrySchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-registry") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tenants (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE products (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        certificate_validity_seconds REAL NOT NULL,
                        default_policy TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, id)
                    );
                    CREATE TABLE devices (
                        udid TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        product_id TEXT NOT NULL,
                        public_key BLOB NOT NULL,
                        key_fingerprint TEXT NOT NULL UNIQUE,
                        source TEXT NOT NULL,
                        status TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE things (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        name TEXT NOT NULL,
                        udid TEXT NOT NULL UNIQUE REFERENCES devices(udid),
                        product_id TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, name)
                    );
                    CREATE TABLE certificates (
                        serial TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        thing_name TEXT NOT NULL,
                        udid TEXT NOT NULL REFERENCES devices(udid),
                        fingerprint TEXT NOT NULL UNIQUE,
                        key_fingerprint TEXT NOT NULL,
                        not_before REAL NOT NULL,
                        not_after REAL NOT NULL,
                        status TEXT NOT NULL,
                        replaced_by TEXT,
                        issued_at REAL NOT NULL,
                        der BLOB NOT NULL
                    );
                    CREATE INDEX certificates_by_udid ON certificates(udid, status);
                    -- A device never holds two active certificates: the database itself refuses it.
                    CREATE UNIQUE INDEX certificates_one_active ON certificates(udid) WHERE status = 'active';
                    CREATE TABLE policies (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        name TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        document TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, name, version)
                    );
                    CREATE TABLE thing_policies (
                        tenant_id TEXT NOT NULL,
                        thing_name TEXT NOT NULL,
                        policy_name TEXT NOT NULL,
                        PRIMARY KEY (tenant_id, thing_name, policy_name)
                    );
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        at REAL NOT NULL,
                        tenant_id TEXT NOT NULL,
                        action TEXT NOT NULL,
                        decision TEXT NOT NULL,
                        code TEXT NOT NULL,
                        udid TEXT,
                        thing TEXT,
                        serial TEXT,
                        source TEXT,
                        detail TEXT NOT NULL
                    );
                    CREATE INDEX events_by_udid ON events(udid);
                    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
                        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
                    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
                        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
                    """)
        }
        return migrator
    }
}
