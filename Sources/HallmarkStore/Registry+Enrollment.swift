import GRDB
import HallmarkCore

import Foundation

extension Registry {
    /// The registry state an enrollment decision reads, fetched inside the committing transaction.
    public struct EnrollmentView: Sendable {
        public var device: DeviceRecord?
        public var active: CertificateRecord?
        /// For renewals: the certificate presented, and the certificate that replaced it.
        public var presented: CertificateRecord?
        public var successor: CertificateRecord?
        /// The certificate profile of the device's product.
        public var profile: DeviceCertificateProfile?
    }

    /// How an enrollment ended once committed.
    public enum EnrollmentOutcome: Sendable {
        /// A new certificate was recorded.
        case issued(CertificateRecord)
        /// The request repeated one already answered; this is the certificate it got.
        case existing(CertificateRecord)
        /// Refused; the refusal event is on disk.
        case refused(HallmarkError)
        /// The decision is now to issue, but no certificate was signed: the registry changed since
        /// the caller's first read (the device was imported or released meanwhile). Nothing was
        /// written; read again, sign, and commit again.
        case stale
    }

    /// Reads what a first enrollment or renewal decision needs, on the writer's connection ahead
    /// of its next batch (a fast path; the decision is taken again inside the commit, so its
    /// reads need not come from one snapshot).
    public func enrollmentView(udid: UDID, presentedFingerprint: String? = nil) async throws -> EnrollmentView {
        try await committer.read { db in try Self.enrollmentView(db, udid: udid, presentedFingerprint: presentedFingerprint) }
    }

    /// The view's query: the device's columns, its product's validity (column 6) and window for
    /// renewing after expiry (7), then its active certificate's columns (from 8).
    private static let enrollmentViewSQL = """
        SELECT \(columnList(deviceColumnNames, table: "d")), p.certificate_validity_seconds, p.expired_renewal_seconds,
            \(columnList(certificateColumnNames, table: "c"))
        FROM devices d
        LEFT JOIN products p ON p.tenant_id = d.tenant_id AND p.id = d.product_id
        LEFT JOIN certificates c ON c.udid = d.udid AND c.status = 'active'
        WHERE d.udid = ?
        """

    /// The device, its product's certificate profile and its active certificate, in one query
    /// (read twice per enrollment: ahead of signing, and again under the write lock).
    static func enrollmentView(_ db: Database, udid: UDID, presentedFingerprint: String?) throws -> EnrollmentView {
        var view =
            try db.fetchRecord(sql: enrollmentViewSQL, arguments: [udid.rawValue]) { row in
                EnrollmentView(
                    device: try deviceRecord(row),
                    active: row.isNull(8) ? nil : try certificateRecord(row, from: 8),
                    profile: row.optionalDouble(6).map {
                        DeviceCertificateProfile(validity: $0, expiredRenewalWindow: row.optionalDouble(7) ?? 0)
                    })
            } ?? EnrollmentView()
        if let presentedFingerprint {
            view.presented = try certificate(db, fingerprint: presentedFingerprint)
            if let next = view.presented?.replacedBy {
                view.successor = try certificate(db, serial: next)
            }
        }
        return view
    }

    /// Takes the enrollment decision again under the write lock and carries it out.
    ///
    /// `decide` sees the registry as of this transaction, so two racing requests for one device
    /// cannot both issue: the second sees the first's certificate. `candidate` is the certificate
    /// signed ahead of the commit; it is recorded only if the decision is still to issue.
    /// - Parameters:
    ///   - udid: The device.
    ///   - presentedFingerprint: For renewals, the fingerprint of the client certificate.
    ///   - decide: The pure decision over the fresh registry view.
    ///   - candidate: The certificate to record if the decision is to issue.
    ///   - event: The event to write, completed with the outcome.
    public func commitEnrollment(
        udid: UDID, presentedFingerprint: String?, decide: @escaping @Sendable (EnrollmentView) -> EnrollmentDecision,
        candidate: CertificateRecord?, event: AuditEvent
    ) async throws -> EnrollmentOutcome {
        try await committer.perform { db in
            let view = try Self.enrollmentView(db, udid: udid, presentedFingerprint: presentedFingerprint)
            var event = event
            switch decide(view) {
            case .refuse(let error):
                event.decision = .refuse
                event.code = error.code.rawValue
                event.detail = error.reason
                for admitted in self.refusals.admit([event]) { try Self.insert(admitted, db) }
                if let device = view.device {
                    try Self.followUp(error, device: device, event: event, db)
                }
                return .refused(error)
            case .returnExisting(let serial):
                guard let existing = try Self.certificate(db, serial: serial) else {
                    throw HallmarkError(.internalError, "Certificate \(serial) vanished.", remedy: "Retry.")
                }
                event.decision = .allow
                event.code = "returned_existing"
                event.serial = serial
                event.thing = existing.thingName
                event.detail = "repeat of an answered request; certificate \(serial) returned, nothing issued"
                try Self.insert(event, db)
                return .existing(existing)
            case .issue(let thingName, let supersedes):
                guard var record = candidate, let device = view.device else { return .stale }
                record.thingName = thingName
                try Self.recordIssuance(record, device: device, supersedes: supersedes, issuedAt: event.at, db)
                event.decision = .allow
                event.code = supersedes == nil ? "issued" : "renewed"
                event.serial = record.serial
                event.thing = thingName
                let outcome =
                    supersedes.map { "certificate \(record.serial) issued, superseding \($0)" }
                    ?? "certificate \(record.serial) issued"
                event.detail = event.detail.isEmpty ? outcome : outcome + "; " + event.detail
                try Self.insert(event, db)
                return .issued(record)
            }
        }
    }

    /// What a refusal sets off beyond its own event: the owner of a genuine device that tried to
    /// join another tenant is told (without naming that tenant); a suspected clone raises an alarm
    /// and, if its product says so, quarantines the device (its sessions end, enrollment stops).
    static func followUp(_ error: HallmarkError, device: DeviceRecord, event: AuditEvent, _ db: Database) throws {
        switch error.code {
        case .counterfeitOEM where device.tenant != event.tenant:
            try insert(
                AuditEvent(
                    at: event.at, tenant: device.tenant, action: event.action, decision: .refuse, code: error.code.rawValue,
                    udid: device.udid.rawValue,
                    detail: "your device tried to enrol with another tenant and was refused: its chip is in a product you did not make"),
                db)
        case .cloneSuspected:
            try raiseCloneAlarm(db, device: device, at: event.at, detail: "enrollment with another key: \(error.reason)")
        default:
            break
        }
    }

    /// Raises `clone_suspected` for a device and applies its product's response.
    static func raiseCloneAlarm(_ db: Database, device: DeviceRecord, at: Date, detail: String, serial: String? = nil) throws {
        let response =
            try String.fetchOne(
                db, sql: "SELECT clone_response FROM products WHERE tenant_id = ? AND id = ?",
                arguments: [device.tenant, device.product]) ?? "quarantine"
        try insert(
            AuditEvent(
                at: at, tenant: device.tenant, action: .alarm, decision: .alarm, code: "clone_suspected",
                udid: device.udid.rawValue, serial: serial, detail: detail + (response == "quarantine" ? "; device quarantined" : "")),
            db)
        guard response == "quarantine" else { return }
        try db.execute(
            sql: "UPDATE devices SET status = 'quarantined', updated_at = ? WHERE udid = ? AND status IN ('allowed', 'enrolled')",
            arguments: [at.timeIntervalSince1970, device.udid.rawValue])
        if db.changesCount == 1 {
            try insert(
                AuditEvent(
                    at: at, tenant: device.tenant, action: .deviceStatus, decision: .allow, code: "status_quarantined",
                    udid: device.udid.rawValue, detail: "quarantined as a suspected clone until an operator releases it"),
                db)
        }
    }

    static func recordIssuance(
        _ record: CertificateRecord, device: DeviceRecord, supersedes: String?, issuedAt: Date, _ db: Database
    ) throws {
        let at = issuedAt.timeIntervalSince1970
        if let supersedes {
            try db.cachedStatement(
                sql: "UPDATE certificates SET status = 'superseded', replaced_by = ? WHERE serial = ? AND status = 'active'"
            ).execute(arguments: [record.serial, supersedes])
        }
        try createThingIfMissing(
            db, tenant: device.tenant, name: record.thingName, udid: device.udid.rawValue, product: device.product, now: issuedAt)
        try db.cachedStatement(
            sql: """
                INSERT INTO certificates (serial, tenant_id, thing_name, udid, fingerprint, key_fingerprint,
                    not_before, not_after, status, replaced_by, issued_at, der, issuer_key_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?, ?, ?)
                """
        ).execute(arguments: [
            record.serial, device.tenant, record.thingName, device.udid.rawValue, record.fingerprint,
            record.keyFingerprint, record.notBefore.timeIntervalSince1970, record.notAfter.timeIntervalSince1970,
            issuedAt.timeIntervalSince1970, Data(record.der), record.issuerKeyID,
        ])
        try db.cachedStatement(
            sql: "UPDATE devices SET status = 'enrolled', updated_at = ? WHERE udid = ? AND status = 'allowed'"
        ).execute(arguments: [at, device.udid.rawValue])
    }

    /// Appends one event through the batched writer.
    public func append(_ event: AuditEvent) async throws {
        try await append([event])
    }
}

extension Registry {
    /// Raises `clone_suspected` for an identity seen twice at once (by the broker). A device is
    /// quarantined if its product says so; a thing of a registered CA, with no device behind it,
    /// is deactivated instead. Either way its sessions end and it stays out until an operator
    /// releases it.
    public func reportSuspectedClone(
        tenant: String, udid: String?, thing: String, serial: String, detail: String, now: Date
    ) async throws {
        try await committer.perform { db in
            if let udid, let device = try Self.device(db, try UDID(validating: udid)) {
                try Self.raiseCloneAlarm(db, device: device, at: now, detail: detail, serial: serial)
                return
            }
            try Self.insert(
                AuditEvent(
                    at: now, tenant: tenant, action: .alarm, decision: .alarm, code: "clone_suspected", thing: thing,
                    serial: serial, detail: detail + "; thing deactivated"), db)
            try db.execute(
                sql: "UPDATE things SET status = 'inactive' WHERE tenant_id = ? AND name = ? AND status = 'active'",
                arguments: [tenant, thing])
            if db.changesCount == 1 {
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .thingStatus, decision: .allow, code: "thing_deactivated", thing: thing,
                        detail: "deactivated as a suspected clone until an operator activates it"), db)
            }
        }
    }
}
