import GRDB
import HallmarkCore

import Foundation

extension Registry {
    /// A certificate given out by fleet provisioning, until its RegisterThing.
    public struct ProvisioningToken: Sendable, Hashable {
        public var tenant: String
        public var claimID: String
        /// The certificate it stands for.
        public var fingerprint: String
        /// The device whose root-of-trust key the certificate carries (nil for a key Hallmark made).
        public var udid: String?
        public var expiresAt: Date
        public var usedAt: Date?
        /// The RegisterThing answer, once registered: a repeat gets it again.
        public var answer: String?
    }

    /// How long a certificate ownership token is good for (AWS: one hour).
    public static let ownershipTokenLifetime: TimeInterval = 3600

    /// How a CreateCertificateFromCsr or CreateKeysAndCertificate ended.
    public enum ProvisionalOutcome: Sendable {
        /// A new certificate, pending activation, is recorded with its token.
        case issued(CertificateRecord)
        /// The device already has a pending certificate for this key: it comes back with a new
        /// token, and nothing is signed.
        case existing(CertificateRecord)
        case refused(HallmarkError)
        /// The decision is to issue but nothing was signed: sign and commit again.
        case stale
    }

    public func provisioningToken(hash: String) throws -> ProvisioningToken? {
        try pool.read { db in try Self.provisioningToken(db, hash: hash) }
    }

    static func provisioningToken(_ db: Database, hash: String) throws -> ProvisioningToken? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM provisioning_tokens WHERE token_hash = ?"), arguments: [hash]).map { row in
            ProvisioningToken(
                tenant: row["tenant_id"], claimID: row["claim_id"], fingerprint: row["fingerprint"], udid: row["udid"],
                expiresAt: Date(timeIntervalSince1970: row["expires_at"]), usedAt: (row["used_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                answer: row["answer"])
        }
    }

    /// The device whose root-of-trust key has this fingerprint, if one is on the allowlist.
    public func device(keyFingerprint: String) throws -> DeviceRecord? {
        try pool.read { db in
            try db.fetchRecord(sql: "SELECT \(Self.deviceColumns) FROM devices WHERE key_fingerprint = ?", arguments: [keyFingerprint]) {
                try Self.deviceRecord($0)
            }
        }
    }

    /// The device's certificate pending activation for a key, if fleet provisioning gave it one.
    public func pendingCertificate(udid: UDID, keyFingerprint: String) throws -> CertificateRecord? {
        try pool.read { db in try Self.pendingCertificate(db, udid: udid.rawValue, keyFingerprint: keyFingerprint) }
    }

    static func pendingCertificate(_ db: Database, udid: String, keyFingerprint: String) throws -> CertificateRecord? {
        try db.fetchRecord(
            sql: "SELECT \(certificateColumns) FROM certificates WHERE udid = ? AND key_fingerprint = ? AND status = 'pending_activation' AND ca_id = 'hallmark' ORDER BY issued_at DESC LIMIT 1",
            arguments: [udid, keyFingerprint]) { try certificateRecord($0) }
    }

    /// The claim, if it may provision now; else why not (gone, revoked, expired, used up).
    static func claim(_ db: Database, inForce id: String, now: Date) throws -> Result<ProvisioningClaim, HallmarkError> {
        guard let claim = try claim(db, id: id) else { return .failure(ProvisioningClaim.gone) }
        return claim.refusal(now: now).map { .failure($0) } ?? .success(claim)
    }

    /// Fleet provisioning is for a device's first certificate.
    static func alreadyEnrolled(_ udid: UDID) -> HallmarkError {
        HallmarkError(
            .deviceAlreadyEnrolled, "Device \(udid) is enrolled already; fleet provisioning is for its first certificate.",
            remedy: "The device renews with its certificate (EST simplereenroll); an operator revokes it first to provision it afresh.")
    }

    /// Takes the decision over a CSR from a claim's connection again under the write lock and
    /// carries it out: a certificate pending activation, for the allowlisted device whose
    /// root-of-trust key it carries, with a one-hour ownership token. The device must be of the
    /// claim's product and not enrolled yet.
    public func commitProvisionalCertificate(
        claimID: String, udid: UDID, keyFingerprint: String, decide: @escaping @Sendable (EnrollmentView) -> EnrollmentDecision,
        candidate: CertificateRecord?, tokenHash: String, event: AuditEvent
    ) async throws -> ProvisionalOutcome {
        try await committer.perform { db in
            var event = event
            func refuse(_ error: HallmarkError, device: DeviceRecord? = nil) throws -> ProvisionalOutcome {
                try self.recordRefusal(error, event: event, device: device, db)
                return .refused(error)
            }
            let claim: ProvisioningClaim
            switch try Self.claim(db, inForce: claimID, now: event.at) {
            case .success(let inForce): claim = inForce
            case .failure(let refusal): return try refuse(refusal)
            }
            let view = try Self.enrollmentView(db, udid: udid, presentedFingerprint: nil)
            switch decide(view) {
            case .refuse(let error):
                return try refuse(error, device: view.device)
            case .returnExisting, .issue(_, _?):
                return try refuse(Self.alreadyEnrolled(udid))
            case .issue(_, nil):
                guard let device = view.device else { return .stale }
                if let refusal = claim.refusal(for: device) { return try refuse(refusal) }
                let record: CertificateRecord
                let isNew: Bool
                if let pending = try Self.pendingCertificate(db, udid: udid.rawValue, keyFingerprint: keyFingerprint) {
                    (record, isNew) = (pending, false)
                } else if let candidate {
                    (record, isNew) = (candidate, true)
                    try db.cachedStatement(sql: """
                            INSERT INTO certificates (fingerprint, serial, ca_id, tenant_id, thing_name, udid, key_fingerprint, not_before, not_after,
                                status, issued_at, der, issuer_key_id) VALUES (?, ?, 'hallmark', ?, ?, ?, ?, ?, ?, 'pending_activation', ?, ?, ?)
                            """).execute(
                        arguments: [
                            record.fingerprint, record.serial, device.tenant, record.thingName, udid.rawValue, record.keyFingerprint,
                            record.notBefore.timeIntervalSince1970, record.notAfter.timeIntervalSince1970, event.at.timeIntervalSince1970,
                            Data(record.der), record.issuerKeyID,
                        ])
                } else {
                    return .stale
                }
                try Self.insertToken(db, hash: tokenHash, tenant: device.tenant, claim: claimID, fingerprint: record.fingerprint, udid: udid.rawValue, now: event.at)
                event.decision = .allow
                event.code = isNew ? "issued_pending" : "returned_pending"
                event.serial = record.serial
                event.detail = (isNew ? "certificate \(record.serial) issued" : "certificate \(record.serial) given again, nothing signed")
                    + ", pending its RegisterThing within the hour (claim \(claimID))"
                try Self.insert(event, db)
                return isNew ? .issued(record) : .existing(record)
            }
        }
    }

    /// Records a certificate whose key Hallmark made (CreateKeysAndCertificate), pending
    /// activation and bound to no device until its RegisterThing names one.
    public func commitServerKeyCertificate(claimID: String, record: CertificateRecord, tokenHash: String, event: AuditEvent) async throws -> ProvisionalOutcome {
        try await committer.perform { db in
            var event = event
            var refusal: HallmarkError?
            switch try Self.claim(db, inForce: claimID, now: event.at) {
            case .failure(let error): refusal = error
            case .success(let claim):
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT server_keys FROM products WHERE tenant_id = ? AND id = ?"), arguments: [claim.tenant, claim.product]) != true {
                    refusal = ProvisioningClaim.serverKeysNotAllowed(product: claim.product)
                }
            }
            if let refusal {
                try self.recordRefusal(refusal, event: event, device: nil, db)
                return .refused(refusal)
            }
            try db.cachedStatement(sql: """
                    INSERT INTO certificates (fingerprint, serial, ca_id, tenant_id, thing_name, udid, key_fingerprint, not_before, not_after,
                        status, issued_at, der, issuer_key_id) VALUES (?, ?, 'hallmark', ?, ?, NULL, ?, ?, ?, 'pending_activation', ?, ?, ?)
                    """).execute(
                arguments: [
                    record.fingerprint, record.serial, record.tenant, record.thingName, record.keyFingerprint, record.notBefore.timeIntervalSince1970,
                    record.notAfter.timeIntervalSince1970, event.at.timeIntervalSince1970, Data(record.der), record.issuerKeyID,
                ])
            try Self.insertToken(db, hash: tokenHash, tenant: record.tenant, claim: claimID, fingerprint: record.fingerprint, udid: nil, now: event.at)
            event.decision = .allow
            event.code = "issued_pending"
            event.serial = record.serial
            event.detail = "certificate \(record.serial) issued with a key Hallmark made, pending its RegisterThing within the hour (claim \(claimID))"
            try Self.insert(event, db)
            return .issued(record)
        }
    }

    /// Writes a refusal's event (through the flood limit) and what it sets off for the device.
    func recordRefusal(_ error: HallmarkError, event: AuditEvent, device: DeviceRecord?, _ db: Database) throws {
        var event = event
        event.decision = .refuse
        event.code = error.code.rawValue
        event.detail = error.reason
        for admitted in refusals.admit([event]) { try Self.insert(admitted, db) }
        if let device { try Self.followUp(error, device: device, event: event, db) }
    }

    static func insertToken(_ db: Database, hash: String, tenant: String, claim: String, fingerprint: String, udid: String?, now: Date) throws {
        try db.cachedStatement(sql: """
                INSERT INTO provisioning_tokens (token_hash, tenant_id, claim_id, fingerprint, udid, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(
            arguments: [hash, tenant, claim, fingerprint, udid, now.timeIntervalSince1970, now.timeIntervalSince1970 + ownershipTokenLifetime])
    }

    /// What RegisterThing is to make, worked out from the template before the commit.
    public struct Registration: Sendable {
        public var tokenHash: String
        public var claimID: String
        public var template: String
        /// The device the request's UDID parameter names.
        public var udid: UDID
        public var outcome: FleetProvisioningTemplate.Outcome
        /// The policies to attach: the template's named ones and its inline ones.
        public var policies: [String]
        /// The accepted answer's JSON, kept for a repeat.
        public var answer: String

        public init(tokenHash: String, claimID: String, template: String, udid: UDID, outcome: FleetProvisioningTemplate.Outcome, policies: [String], answer: String) {
            self.tokenHash = tokenHash
            self.claimID = claimID
            self.template = template
            self.udid = udid
            self.outcome = outcome
            self.policies = policies
            self.answer = answer
        }
    }

    public enum RegistrationOutcome: Sendable {
        case registered(answer: String)
        /// The token was used already by this claim: the same answer, nothing done again.
        case repeated(answer: String)
        case refused(HallmarkError)
    }

    /// Carries out RegisterThing under the write lock: the token must be this claim's, unexpired,
    /// for a certificate still pending; the device the UDID parameter names must be the one whose
    /// key the certificate carries (for a key Hallmark made: an allowlisted device of the claim's
    /// product), owned by the tenant, in good standing and not enrolled; the thing must be new.
    /// Then the certificate is active (or inactive, as the template says), the thing made with
    /// its policies and attributes, the device enrolled and the claim's count raised.
    public func commitRegistration(_ registration: Registration, event: AuditEvent) async throws -> RegistrationOutcome {
        try await committer.perform { db in
            var event = event
            func refuse(_ error: HallmarkError, device: DeviceRecord? = nil) throws -> RegistrationOutcome {
                try self.recordRefusal(error, event: event, device: device, db)
                return .refused(error)
            }
            let now = event.at
            guard let token = try Self.provisioningToken(db, hash: registration.tokenHash), token.claimID == registration.claimID, token.tenant == event.tenant
            else {
                return try refuse(HallmarkError(.ownershipTokenInvalid, "The certificate ownership token is not one this claim was given.",
                                                remedy: "Send the certificateOwnershipToken from the create-from-csr answer, over the same claim."))
            }
            if token.usedAt != nil, let answer = token.answer { return .repeated(answer: answer) }
            guard token.expiresAt > now else {
                return try refuse(HallmarkError(.ownershipTokenInvalid, "The certificate ownership token expired (they last an hour).",
                                                remedy: "Ask for a certificate again (create-from-csr) and register within the hour."))
            }
            let claim: ProvisioningClaim
            switch try Self.claim(db, inForce: registration.claimID, now: now) {
            case .success(let inForce): claim = inForce
            case .failure(let refusal): return try refuse(refusal)
            }
            guard let certificate = try Self.certificate(db, fingerprint: token.fingerprint), certificate.status == .pendingActivation else {
                return try refuse(HallmarkError(.ownershipTokenInvalid, "The certificate of this ownership token is no longer waiting for registration.",
                                                remedy: "Ask for a certificate again (create-from-csr)."))
            }
            if let bound = token.udid, bound != registration.udid.rawValue {
                return try refuse(HallmarkError(
                    .subjectMismatch, "The UDID parameter names \(registration.udid), but the certificate carries device \(bound)'s root-of-trust key.",
                    remedy: "Send the device's own UDID in the template's UDID parameter."))
            }
            let found = try Self.device(db, registration.udid)
            let device: DeviceRecord
            switch EnrollmentRules.admit(udid: registration.udid, device: found, tenant: claim.tenant) {
            case .success(let admitted): device = admitted
            case .failure(let refusal): return try refuse(refusal, device: found)
            }
            if let refusal = claim.refusal(for: device) { return try refuse(refusal) }
            if try Self.activeCertificate(db, device.udid) != nil { return try refuse(Self.alreadyEnrolled(registration.udid)) }
            let thingName = registration.outcome.thingName
            if let owner = try Row.fetchOne(db.cachedStatement(sql: "SELECT udid FROM things WHERE tenant_id = ? AND name = ?"), arguments: [claim.tenant, thingName]),
                owner["udid"] as String? != device.udid.rawValue
            {
                return try refuse(HallmarkError(.provisioningFailed, "Thing \(thingName) exists and is another device's.",
                                                remedy: "Send parameters that name this device's own thing."))
            }
            if let other = try String.fetchOne(db.cachedStatement(sql: "SELECT name FROM things WHERE udid = ?"), arguments: [device.udid.rawValue]), other != thingName {
                return try refuse(HallmarkError(.provisioningFailed, "Device \(device.udid) already has thing \(other); the template names \(thingName).",
                                                remedy: "Send parameters that name the device's thing, or have an operator remove the old one."))
            }
            for policy in registration.policies {
                guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM policies WHERE tenant_id = ? AND name = ?"), arguments: [claim.tenant, policy]) ?? false else {
                    return try refuse(HallmarkError(.provisioningFailed, "The template attaches the policy \(policy.prefix(64)), which the tenant does not have.",
                                                    remedy: "An operator creates it (`hallmark policy create`), or the device sends parameters that name one that exists."))
                }
            }
            let status = registration.outcome.certificateActive ? "active" : "inactive"
            let attributes = registration.outcome.attributes.isEmpty ? nil
                : String(decoding: try JSONSerialization.data(withJSONObject: registration.outcome.attributes, options: [.sortedKeys]), as: UTF8.self)
            try db.cachedStatement(sql: """
                    INSERT INTO things (tenant_id, name, udid, product_id, created_at, attributes) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id, name) DO UPDATE SET attributes = excluded.attributes
                    """).execute(
                arguments: [claim.tenant, thingName, device.udid.rawValue, claim.product, now.timeIntervalSince1970, attributes])
            if registration.policies.isEmpty {
                try db.cachedStatement(sql: """
                        INSERT OR IGNORE INTO thing_policies (tenant_id, thing_name, policy_name)
                        SELECT tenant_id, ?, default_policy FROM products WHERE tenant_id = ? AND id = ?
                        """).execute(
                    arguments: [thingName, claim.tenant, claim.product])
            }
            for policy in registration.policies {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO thing_policies (tenant_id, thing_name, policy_name) VALUES (?, ?, ?)").execute(
                               arguments: [claim.tenant, thingName, policy])
            }
            do {
                try db.cachedStatement(sql: "UPDATE certificates SET status = ?, thing_name = ?, udid = ?, status_changed_at = ?, status_reason = ? WHERE fingerprint = ?").execute(
                    arguments: [status, thingName, device.udid.rawValue, now.timeIntervalSince1970, "registered by template \(registration.template)", certificate.fingerprint])
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                return try refuse(HallmarkError(.deviceAlreadyEnrolled, "Device \(device.udid) got another active certificate meanwhile.",
                                                remedy: "The device renews with that certificate."))
            }
            try db.cachedStatement(sql: "UPDATE devices SET status = 'enrolled', updated_at = ? WHERE udid = ? AND status = 'allowed'").execute(
                           arguments: [now.timeIntervalSince1970, device.udid.rawValue])
            try db.cachedStatement(sql: "UPDATE claims SET used = used + 1 WHERE id = ?").execute( arguments: [claim.id])
            try db.cachedStatement(sql: "UPDATE provisioning_tokens SET used_at = ?, answer = ? WHERE token_hash = ?").execute(
                           arguments: [now.timeIntervalSince1970, registration.answer, registration.tokenHash])
            event.decision = .allow
            event.code = "registered"
            event.udid = device.udid.rawValue
            event.thing = thingName
            event.serial = certificate.serial
            event.detail = "thing \(thingName) with certificate \(certificate.serial) (\(status)) by template \(registration.template), claim \(claim.id)"
                + (claim.maxUses.map { ": \(claim.used + 1) of \($0)" } ?? "")
            try Self.insert(event, db)
            return .registered(answer: registration.answer)
        }
    }

    /// Revokes the certificates fleet provisioning gave out and nobody registered within the
    /// token's hour, and forgets the tokens past their hour, used or not (a used one answers a
    /// repeated RegisterThing until then). Returns how many certificates were revoked.
    @discardableResult
    public func sweepProvisioningTokens(now: Date) async throws -> Int {
        try await committer.perform { db in
            let expired = try Row.fetchAll(db.cachedStatement(sql: "SELECT token_hash, tenant_id, claim_id, fingerprint FROM provisioning_tokens WHERE used_at IS NULL AND expires_at <= ? LIMIT 1000"),
                arguments: [now.timeIntervalSince1970])
            try db.cachedStatement(sql: "DELETE FROM provisioning_tokens WHERE expires_at <= ? AND used_at IS NOT NULL")
                .execute(arguments: [now.timeIntervalSince1970])
            var revoked = 0
            for row in expired {
                let fingerprint: String = row["fingerprint"]
                try db.cachedStatement(sql: "DELETE FROM provisioning_tokens WHERE token_hash = ?").execute( arguments: [row["token_hash"] as String])
                let open = try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM provisioning_tokens WHERE fingerprint = ? AND used_at IS NULL AND expires_at > ?"),
                    arguments: [fingerprint, now.timeIntervalSince1970]) ?? false
                guard !open, let certificate = try Self.certificate(db, fingerprint: fingerprint), certificate.status == .pendingActivation else { continue }
                try db.cachedStatement(sql: """
                        UPDATE certificates SET status = 'revoked', status_changed_at = ?, status_reason = 'not registered within the hour',
                            revocation_reason = 5 WHERE fingerprint = ?
                        """).execute(
                    arguments: [now.timeIntervalSince1970, fingerprint])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: row["tenant_id"], action: .certificateStatus, decision: .allow, code: "certificate_revoked",
                        udid: certificate.udid?.rawValue, serial: certificate.serial,
                        detail: "fleet provisioning certificate of claim \(row["claim_id"] as String) not registered within the hour (cessationOfOperation)"),
                    db)
                revoked += 1
            }
            return revoked
        }
    }
}
