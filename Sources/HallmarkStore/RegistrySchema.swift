import GRDB
import HallmarkCore
import X509

import Foundation

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
        migrator.registerMigration("v2-broker") { db in
            // Certificates of registered OEM CAs have no allowlisted device behind them; a thing may be
            // deactivated. SQLite cannot relax a column constraint in place, so both tables are rebuilt.
            try db.execute(
                sql: """
                    CREATE TABLE certificates_v2 (
                        fingerprint TEXT PRIMARY KEY,
                        serial TEXT NOT NULL,
                        ca_id TEXT NOT NULL DEFAULT 'hallmark',
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        thing_name TEXT NOT NULL,
                        udid TEXT REFERENCES devices(udid),
                        key_fingerprint TEXT NOT NULL,
                        not_before REAL NOT NULL,
                        not_after REAL NOT NULL,
                        status TEXT NOT NULL,
                        replaced_by TEXT,
                        issued_at REAL NOT NULL,
                        der BLOB NOT NULL,
                        status_changed_at REAL,
                        status_reason TEXT
                    );
                    INSERT INTO certificates_v2 (fingerprint, serial, tenant_id, thing_name, udid, key_fingerprint,
                        not_before, not_after, status, replaced_by, issued_at, der)
                    SELECT fingerprint, serial, tenant_id, thing_name, udid, key_fingerprint, not_before, not_after,
                        status, replaced_by, issued_at, der FROM certificates;
                    DROP TABLE certificates;
                    ALTER TABLE certificates_v2 RENAME TO certificates;
                    CREATE UNIQUE INDEX certificates_by_ca_serial ON certificates(ca_id, serial);
                    CREATE INDEX certificates_by_udid ON certificates(udid, status);
                    CREATE INDEX certificates_by_thing ON certificates(tenant_id, thing_name);
                    CREATE UNIQUE INDEX certificates_one_active ON certificates(udid) WHERE status = 'active';

                    CREATE TABLE things_v2 (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        name TEXT NOT NULL,
                        udid TEXT UNIQUE REFERENCES devices(udid),
                        product_id TEXT NOT NULL,
                        status TEXT NOT NULL DEFAULT 'active',
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, name)
                    );
                    INSERT INTO things_v2 (tenant_id, name, udid, product_id, created_at)
                    SELECT tenant_id, name, udid, product_id, created_at FROM things;
                    DROP TABLE things;
                    ALTER TABLE things_v2 RENAME TO things;

                    CREATE TABLE ca_certificates (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        subject TEXT NOT NULL,
                        der BLOB NOT NULL,
                        status TEXT NOT NULL,
                        template TEXT,
                        registered_at REAL NOT NULL
                    );
                    CREATE TABLE registration_codes (
                        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
                        code TEXT NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE telemetry (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant_id TEXT NOT NULL,
                        thing TEXT NOT NULL,
                        topic TEXT NOT NULL,
                        at REAL NOT NULL,
                        payload BLOB NOT NULL
                    );
                    CREATE INDEX telemetry_by_thing ON telemetry(tenant_id, thing, topic, id);
                    """)
        }
        migrator.registerMigration("v3-tenants-manufacturers") { db in
            // Tenants with their own admin credential; silicon vendors and their manifests; device
            // provenance (vendor, manifest, lot, batch, attestation chain); production batches with
            // quotas; per-product response to a suspected clone. Credentials are stored as SHA-256.
            try db.execute(
                sql: """
                    ALTER TABLE tenants ADD COLUMN admin_token_hash TEXT;
                    CREATE UNIQUE INDEX tenants_by_token ON tenants(admin_token_hash);
                    ALTER TABLE products ADD COLUMN clone_response TEXT NOT NULL DEFAULT 'quarantine';
                    ALTER TABLE devices ADD COLUMN vendor_id TEXT;
                    ALTER TABLE devices ADD COLUMN manifest_id TEXT;
                    ALTER TABLE devices ADD COLUMN lot TEXT;
                    ALTER TABLE devices ADD COLUMN batch_id TEXT;
                    ALTER TABLE devices ADD COLUMN attestation_chain BLOB;
                    CREATE INDEX devices_by_tenant ON devices(tenant_id, udid);
                    CREATE INDEX devices_by_batch ON devices(batch_id);
                    CREATE INDEX events_by_tenant ON events(tenant_id, id);
                    CREATE TABLE vendors (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        id TEXT NOT NULL,
                        manifest_key BLOB,
                        attestation_roots BLOB,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, id)
                    );
                    CREATE TABLE manifests (
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        id TEXT NOT NULL,
                        vendor_id TEXT NOT NULL,
                        entries INTEGER NOT NULL,
                        claimed INTEGER NOT NULL,
                        imported_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, id)
                    );
                    CREATE TABLE batches (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL REFERENCES tenants(id),
                        product_id TEXT NOT NULL,
                        quota INTEGER NOT NULL CHECK (quota > 0),
                        programmed INTEGER NOT NULL DEFAULT 0 CHECK (programmed <= quota),
                        refused INTEGER NOT NULL DEFAULT 0,
                        station_token_hash TEXT NOT NULL UNIQUE,
                        created_at REAL NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v4-tenant-issuing-ca") { db in
            // Each tenant's own issuing CA certificate (its key is sealed in the data directory's
            // `ca/tenants/`); NULL for the default tenant and tenants made before, which use the
            // shared issuing CA.
            try db.execute(sql: "ALTER TABLE tenants ADD COLUMN issuing_ca BLOB")
        }
        migrator.registerMigration("v5-certificates-by-tenant") { db in
            // No query looks certificates up by thing name, yet every enrollment wrote that index
            // at a random place. A tenant's listing (newest first) gets the index it needs instead,
            // whose new entries land at the end of the tenant's range.
            try db.execute(
                sql: """
                    DROP INDEX certificates_by_thing;
                    CREATE INDEX certificates_by_tenant ON certificates(tenant_id, issued_at);
                    """)
        }
        migrator.registerMigration("v6-one-certificate-index-per-device") { db in
            // A device's certificates had two indexes on its UDID: one to find them, one (partial)
            // so that it never holds two active ones. Each enrollment wrote both at a random place.
            // One index does both: an active certificate's second key part is '', so a second
            // active one for the same device is a duplicate; any other's is its own fingerprint.
            try db.execute(
                sql: """
                    DROP INDEX certificates_by_udid;
                    DROP INDEX certificates_one_active;
                    CREATE UNIQUE INDEX certificates_by_udid
                        ON certificates(udid, (CASE status WHEN 'active' THEN '' ELSE fingerprint END));
                    """)
        }
        migrator.registerMigration("v7-revocation") { db in
            // CRLs and OCSP need, per certificate, the CA that signed it (its key identifier: a
            // tenant given a CA later still has certificates of the shared one) and an RFC 5280
            // reason for each revocation. Revoked and held certificates get a partial index, so
            // a CRL is read without a scan and an enrollment writes nothing more to it.
            try db.execute(
                sql: """
                    ALTER TABLE certificates ADD COLUMN issuer_key_id TEXT;
                    ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;
                    UPDATE certificates SET revocation_reason = CASE status_reason WHEN 'transferred' THEN 3 ELSE 0 END
                        WHERE status = 'revoked';
                    """)
            let rows = try Row.fetchAll(db, sql: "SELECT fingerprint, der FROM certificates WHERE ca_id = 'hallmark'")
            for row in rows {
                let der: Data = row["der"]
                guard let certificate = try? Certificate(derEncoded: Array(der)),
                    let aki = try? certificate.extensions.authorityKeyIdentifier?.keyIdentifier
                else { continue }
                try db.execute(
                    sql: "UPDATE certificates SET issuer_key_id = ? WHERE fingerprint = ?",
                    arguments: [Array(aki).hexString, row["fingerprint"] as String])
            }
            try db.execute(
                sql: """
                    CREATE INDEX certificates_revoked ON certificates(issuer_key_id, status_changed_at)
                        WHERE status IN ('revoked', 'inactive');
                    """)
        }
        migrator.registerMigration("v8-certificate-lifecycle") { db in
            // Per product: how long a superseded certificate stays good, how long after expiry an
            // offline device may renew with its root-of-trust key, how early expiry is announced.
            // Superseded and active certificates get partial indexes for the retirement and the
            // expiry scans (an enrollment adds one entry to the second, at its end).
            try db.execute(
                sql: """
                    ALTER TABLE products ADD COLUMN superseded_grace_seconds REAL NOT NULL DEFAULT 604800;
                    ALTER TABLE products ADD COLUMN expired_renewal_seconds REAL NOT NULL DEFAULT 0;
                    ALTER TABLE products ADD COLUMN expiry_warning_seconds REAL NOT NULL DEFAULT 2592000;
                    ALTER TABLE certificates ADD COLUMN expiry_warned_at REAL;
                    CREATE INDEX certificates_superseded ON certificates(replaced_by) WHERE status = 'superseded';
                    CREATE INDEX certificates_active_by_expiry ON certificates(not_after) WHERE status = 'active';
                    """)
        }
        migrator.registerMigration("v9-transparency-log") { db in
            // The event log as an RFC 9162 Merkle tree: each event's leaf hash, in order, and the
            // checkpoints signed over it. Both are append-only, like the events.
            try db.execute(
                sql: """
                    CREATE TABLE log_leaves (
                        idx INTEGER PRIMARY KEY,
                        event_id INTEGER NOT NULL UNIQUE,
                        hash BLOB NOT NULL
                    );
                    CREATE TABLE log_checkpoints (
                        size INTEGER PRIMARY KEY,
                        root BLOB NOT NULL,
                        signed_at REAL NOT NULL,
                        note TEXT NOT NULL
                    );
                    CREATE TRIGGER log_leaves_are_append_only_update BEFORE UPDATE ON log_leaves
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    CREATE TRIGGER log_leaves_are_append_only_delete BEFORE DELETE ON log_leaves
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    CREATE TRIGGER log_checkpoints_are_append_only_update BEFORE UPDATE ON log_checkpoints
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    CREATE TRIGGER log_checkpoints_are_append_only_delete BEFORE DELETE ON log_checkpoints
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    """)
        }
        migrator.registerMigration("v10-firmware") { db in
            // Firmware: each device's firmware decryption key (from a trusted channel), each
            // product's signing and mastering keys (sealed under the passphrase, like the CA's),
            // the signers whose images it imports, and its releases. A release's image is stored
            // as mastered, encrypted for the mastering key: the plain image never is.
            try db.execute(
                sql: """
                    ALTER TABLE devices ADD COLUMN firmware_key BLOB;
                    CREATE TABLE firmware_keys (
                        tenant_id TEXT NOT NULL,
                        product_id TEXT NOT NULL,
                        signing_key_sealed TEXT NOT NULL,
                        mastering_key_sealed TEXT NOT NULL,
                        signing_public_key BLOB NOT NULL,
                        mastering_public_key BLOB NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, product_id)
                    );
                    CREATE TABLE firmware_signers (
                        tenant_id TEXT NOT NULL,
                        product_id TEXT NOT NULL,
                        key_hash TEXT NOT NULL,
                        public_key BLOB NOT NULL,
                        added_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, product_id, key_hash)
                    );
                    CREATE TABLE firmware_releases (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        product_id TEXT NOT NULL,
                        version TEXT NOT NULL,
                        security_counter INTEGER NOT NULL,
                        size INTEGER NOT NULL,
                        signer_key_hash TEXT NOT NULL,
                        origin TEXT NOT NULL,
                        content_key_hash TEXT NOT NULL UNIQUE,
                        created_at REAL NOT NULL,
                        image BLOB NOT NULL,
                        UNIQUE (tenant_id, product_id, version)
                    );
                    """)
        }
        migrator.registerMigration("v11-jobs") { db in
            // AWS IoT Jobs: a job (its document, its rollout and abort configuration) and one
            // execution per target thing. An execution is invisible to its device until the
            // rollout releases it. job_changes lists, in order, the things whose pending
            // executions changed, for the broker's notify and notify-next.
            try db.execute(
                sql: """
                    CREATE TABLE jobs (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        document TEXT NOT NULL,
                        release_id TEXT,
                        status TEXT NOT NULL,
                        paused INTEGER NOT NULL DEFAULT 0,
                        config TEXT NOT NULL,
                        in_progress_timeout_seconds REAL,
                        reason TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        completed_at REAL,
                        PRIMARY KEY (tenant_id, id)
                    );
                    CREATE TABLE job_executions (
                        tenant_id TEXT NOT NULL,
                        job_id TEXT NOT NULL,
                        thing TEXT NOT NULL,
                        wave INTEGER NOT NULL DEFAULT 0,
                        status TEXT NOT NULL,
                        status_details TEXT NOT NULL DEFAULT '{}',
                        queued_at REAL NOT NULL,
                        released_at REAL,
                        started_at REAL,
                        last_updated_at REAL NOT NULL,
                        version INTEGER NOT NULL DEFAULT 1,
                        execution_number INTEGER NOT NULL DEFAULT 1,
                        timeout_at REAL,
                        PRIMARY KEY (tenant_id, job_id, thing)
                    );
                    CREATE INDEX job_executions_by_thing ON job_executions (tenant_id, thing, released_at);
                    CREATE INDEX job_executions_unreleased ON job_executions (tenant_id, job_id, wave, thing) WHERE released_at IS NULL;
                    CREATE INDEX job_executions_released ON job_executions (tenant_id, job_id, released_at) WHERE released_at IS NOT NULL;
                    CREATE INDEX job_executions_timing_out ON job_executions (timeout_at) WHERE timeout_at IS NOT NULL;
                    CREATE TABLE job_changes (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant_id TEXT NOT NULL,
                        thing TEXT NOT NULL
                    );
                    CREATE TABLE thing_firmware (
                        tenant_id TEXT NOT NULL,
                        thing TEXT NOT NULL,
                        version TEXT,
                        security_counter INTEGER,
                        reported_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, thing)
                    );
                    CREATE TABLE firmware_wraps (
                        release_id TEXT NOT NULL,
                        udid TEXT NOT NULL,
                        wrapped_key BLOB NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (release_id, udid)
                    );
                    ALTER TABLE products ADD COLUMN production_release TEXT;
                    """)
        }
        migrator.registerMigration("v12-default-policy-jobs") { db in
            // A default policy nobody changed gets its next version, which adds the thing's own
            // AWS IoT Jobs topics; one an operator edited is left as it is.
            try upgradeDefaultPolicy(db, from: DefaultPolicy.documentBeforeJobs)
        }
        migrator.registerMigration("v13-fleet-provisioning") { db in
            // AWS IoT fleet provisioning: templates (the AWS document, the parameter carrying the
            // device's UDID, an optional pre-provisioning hook), claims (a shared certificate that
            // may only ask for a device's own certificate, limited in count and time), and the
            // one-hour ownership tokens that bind a certificate given out to its RegisterThing.
            // Things keep the attributes a template gave them; a product may let Hallmark make
            // device keys (off by default).
            try db.execute(
                sql: """
                    CREATE TABLE provisioning_templates (
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        product_id TEXT,
                        document TEXT NOT NULL,
                        udid_parameter TEXT NOT NULL,
                        hook_url TEXT,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, name)
                    );
                    CREATE TABLE claims (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        product_id TEXT NOT NULL,
                        template_name TEXT NOT NULL,
                        fingerprint TEXT NOT NULL UNIQUE,
                        serial TEXT NOT NULL,
                        max_uses INTEGER,
                        used INTEGER NOT NULL DEFAULT 0,
                        expires_at REAL,
                        status TEXT NOT NULL DEFAULT 'active',
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE provisioning_tokens (
                        token_hash TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        claim_id TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        udid TEXT,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        used_at REAL,
                        answer TEXT
                    );
                    CREATE INDEX provisioning_tokens_by_expiry ON provisioning_tokens (expires_at);
                    CREATE INDEX provisioning_tokens_by_certificate ON provisioning_tokens (fingerprint);
                    ALTER TABLE things ADD COLUMN attributes TEXT;
                    ALTER TABLE products ADD COLUMN server_keys INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        migrator.registerMigration("v14-defender") { db in
            // Device Defender: security profiles per product, each thing's last report and event
            // ids (replays and throttling), the reports' datapoints, the violations with their
            // states, and per product whether reports must be signed and how often they may come;
            // the audit's suppressed findings, and the events by code (what the audit reads of them).
            try db.execute(
                sql: """
                    CREATE TABLE security_profiles (
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        product_id TEXT NOT NULL,
                        document TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, name)
                    );
                    CREATE TABLE defender_things (
                        tenant_id TEXT NOT NULL,
                        thing_name TEXT NOT NULL,
                        last_report_id INTEGER,
                        last_report_at REAL,
                        last_event_id INTEGER,
                        missing_since REAL,
                        PRIMARY KEY (tenant_id, thing_name)
                    );
                    CREATE TABLE defender_reports (
                        id INTEGER PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        thing_name TEXT NOT NULL,
                        report_id INTEGER NOT NULL,
                        received_at REAL NOT NULL,
                        signed INTEGER NOT NULL,
                        datapoints TEXT NOT NULL
                    );
                    CREATE INDEX defender_reports_by_thing ON defender_reports (tenant_id, thing_name, received_at);
                    CREATE INDEX defender_reports_by_time ON defender_reports (received_at);
                    CREATE TABLE violations (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        thing_name TEXT NOT NULL,
                        profile_name TEXT NOT NULL,
                        behavior_name TEXT NOT NULL,
                        metric TEXT NOT NULL,
                        metric_value TEXT NOT NULL,
                        state TEXT NOT NULL,
                        started_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        ended_at REAL,
                        mitigations TEXT NOT NULL DEFAULT ''
                    );
                    CREATE INDEX violations_by_state ON violations (tenant_id, state, started_at);
                    CREATE UNIQUE INDEX violations_one_active ON violations (tenant_id, thing_name, profile_name, behavior_name) WHERE state = 'in-alarm';
                    CREATE TABLE audit_suppressions (
                        tenant_id TEXT NOT NULL,
                        check_name TEXT NOT NULL,
                        resource TEXT NOT NULL,
                        until REAL,
                        reason TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (tenant_id, check_name, resource)
                    );
                    CREATE INDEX events_by_code ON events (code, at);
                    ALTER TABLE products ADD COLUMN defender_signed_only INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE products ADD COLUMN defender_interval REAL NOT NULL DEFAULT 300;
                    """)
            try upgradeDefaultPolicy(db, from: DefaultPolicy.documentBeforeDefender)
        }
        return migrator
    }

    /// Gives every tenant whose default policy is still exactly `earlier` the current document as
    /// its next version; a policy an operator edited is left as it is.
    static func upgradeDefaultPolicy(_ db: Database, from earlier: String) throws {
        let latest = try Row.fetchAll(
            db,
            sql: """
                SELECT p.tenant_id, p.version, p.document FROM policies p
                WHERE p.name = ? AND p.version = (SELECT MAX(version) FROM policies q WHERE q.tenant_id = p.tenant_id AND q.name = p.name)
                """,
            arguments: [DefaultPolicy.name])
        for row in latest where (row["document"] as String) == earlier {
            try db.execute(
                sql: "INSERT INTO policies (tenant_id, name, version, document, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [row["tenant_id"] as String, DefaultPolicy.name, (row["version"] as Int) + 1, DefaultPolicy.document, Date().timeIntervalSince1970])
        }
    }
}
