import GRDB
import HallmarkCore
import SwiftASN1
import X509

import Foundation

/// An OEM's CA registered with `hallmark ca register`.
public struct RegisteredCA: Sendable, Hashable {
    /// The SHA-256 fingerprint of the CA certificate: the `caCertificateId` of JITR events.
    public var id: String
    public var tenant: String
    public var certificate: Certificate
    public var active: Bool
    /// With a template, the CA's devices are provisioned on first connection (JITP); without, their
    /// certificates are registered pending activation (JITR).
    public var template: ProvisioningTemplate?
    public var registeredAt: Date
}

extension Registry {
    // MARK: Registration codes

    /// The tenant's registration code, created on first use: the subject CN a verification
    /// certificate must carry to prove possession of a CA's key.
    public func registrationCode(tenant: String = defaultTenant, now: Date) throws -> String {
        try pool.write { db in
            if let code = try String.fetchOne(db, sql: "SELECT code FROM registration_codes WHERE tenant_id = ?", arguments: [tenant]) {
                return code
            }
            let code = (0..<32).map { _ in UInt8.random(in: .min ... .max) }.hexString
            try db.execute(
                sql: "INSERT INTO registration_codes (tenant_id, code, created_at) VALUES (?, ?, ?)",
                arguments: [tenant, code, now.timeIntervalSince1970])
            return code
        }
    }

    // MARK: Registering CAs

    /// Registers (or re-registers, replacing its template) an OEM CA after checking its proof of
    /// possession. A refusal is logged as an event.
    @discardableResult
    public func registerCA(
        _ certificate: Certificate, verification: Certificate, template: ProvisioningTemplate?,
        tenant: String = defaultTenant, now: Date
    ) async throws -> RegisteredCA {
        do {
            let code = try registrationCode(tenant: tenant, now: now)
            let id = try CARegistration.verify(caCertificate: certificate, verificationCertificate: verification, registrationCode: code, now: now)
            let templateJSON = try template.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            let der = try certificate.derBytes()
            return try await committer.perform { db in
                if let template {
                    guard try Self.product(db, tenant: tenant, id: template.product) != nil else {
                        throw HallmarkError(.provisioningTemplateInvalid, "The template's product \(template.product) does not exist.",
                                            remedy: "Name an existing product (the default product is \"\(Self.defaultProduct)\").")
                    }
                    if let policy = template.policy,
                       try Bool.fetchOne(db, sql: "SELECT 1 FROM policies WHERE tenant_id = ? AND name = ?", arguments: [tenant, policy]) == nil {
                        throw HallmarkError(.provisioningTemplateInvalid, "The template's policy \(policy) does not exist.",
                                            remedy: "Create it first with `hallmark policy create`.")
                    }
                }
                if let owner = try String.fetchOne(db, sql: "SELECT tenant_id FROM ca_certificates WHERE id = ?", arguments: [id]), owner != tenant {
                    throw HallmarkError(.caRegistrationInvalid, "This CA certificate is already registered.",
                                        remedy: "A CA belongs to one tenant; register your own CA.")
                }
                try db.execute(
                    sql: """
                        INSERT INTO ca_certificates (id, tenant_id, subject, der, status, template, registered_at)
                        VALUES (?, ?, ?, ?, 'active', ?, ?)
                        ON CONFLICT (id) DO UPDATE SET status = 'active', template = excluded.template
                        """,
                    arguments: [id, tenant, certificate.subject.description, Data(der), templateJSON, now.timeIntervalSince1970])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .caStatus, decision: .allow, code: "ca_registered",
                        detail: "\(certificate.subject), id \(id), \(template.map { "JITP into product \($0.product)" } ?? "JITR")"), db)
                return RegisteredCA(id: id, tenant: tenant, certificate: certificate, active: true, template: template, registeredAt: now)
            }
        } catch let error as HallmarkError {
            try await append([AuditEvent(
                at: now, tenant: tenant, action: .caStatus, decision: .refuse, code: error.code.rawValue,
                detail: "\(certificate.subject): \(error.reason)")])
            throw error
        }
    }

    /// Deactivates or reactivates a registered CA. Its devices' connections are re-checked by the
    /// broker; while it is inactive they are refused at the TLS handshake.
    public func setCAStatus(_ id: String, active: Bool, tenant: String = defaultTenant, now: Date) async throws {
        try await committer.perform { db in
            try db.execute(
                sql: "UPDATE ca_certificates SET status = ? WHERE tenant_id = ? AND (id = ? OR (length(?) >= 12 AND id LIKE ? || '%'))",
                arguments: [active ? "active" : "inactive", tenant, id, id, id])
            guard db.changesCount == 1 else {
                throw HallmarkError(.notFound, "No single registered CA has the id \(id).", remedy: "List them with `hallmark ca registered`.")
            }
            try Self.insert(
                AuditEvent(at: now, tenant: tenant, action: .caStatus, decision: .allow,
                           code: active ? "ca_activated" : "ca_deactivated", detail: "CA \(id)"), db)
        }
    }

    /// The registered CAs, of one tenant or all.
    public func registeredCAs(tenant: String? = nil) throws -> [RegisteredCA] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM ca_certificates WHERE ? IS NULL OR tenant_id = ? ORDER BY registered_at", arguments: [tenant, tenant])
            return try rows.map { row in
                let der: Data = row["der"]
                let template = try (row["template"] as String?).map { try ProvisioningTemplate(json: Data($0.utf8)) }
                return RegisteredCA(
                    id: row["id"], tenant: row["tenant_id"], certificate: try Certificate(derEncoded: Array(der)),
                    active: row["status"] == "active", template: template,
                    registeredAt: Date(timeIntervalSince1970: row["registered_at"]))
            }
        }
    }

    // MARK: Just-in-time registration and provisioning

    /// What the first connection of an unknown certificate from a registered CA did.
    public enum AutoRegistration: Sendable {
        /// JITP: the thing exists, the certificate is active, the connection may go on.
        case provisioned(ConnectionIdentity)
        /// JITR: the certificate waits for activation.
        case registered(ConnectionIdentity)
        /// Another connection registered it first.
        case existing(ConnectionIdentity)
    }

    /// Records a device certificate signed by a registered CA on its first connection: provisioned
    /// through the CA's template, or registered pending activation when the CA has none. Runs in
    /// one transaction; a certificate is never recorded twice.
    public func autoRegister(certificateDER der: [UInt8], caID: String, source: String?, now: Date) async throws -> AutoRegistration {
        let certificate = try Certificate(derEncoded: der)
        let fingerprint = CertificateFingerprint.sha256(der: der)
        var spki = DER.Serializer()
        try spki.serialize(certificate.publicKey)
        let keyFingerprint = CertificateFingerprint.sha256(der: spki.serializedBytes)
        let serial = Array(certificate.serialNumber.bytes).hexString
        do {
            return try await committer.perform { db in
                if let known = try Self.connectionIdentity(db, fingerprint: fingerprint) { return .existing(known) }
                guard let ca = try Row.fetchOne(db, sql: "SELECT tenant_id, status, template FROM ca_certificates WHERE id = ?", arguments: [caID]),
                      ca["status"] == "active"
                else {
                    throw HallmarkError(.certificateUntrusted, "The CA of certificate \(serial) is not registered or not active.",
                                        remedy: "Register the CA with `hallmark ca register`, or reactivate it.")
                }
                let tenant: String = ca["tenant_id"]
                let template = try (ca["template"] as String?).map { try ProvisioningTemplate(json: Data($0.utf8)) }
                let thing: String
                if let template {
                    thing = try template.thingName(for: certificate)
                    let owner = try Row.fetchOne(db, sql: "SELECT udid FROM things WHERE tenant_id = ? AND name = ?", arguments: [tenant, thing])
                    if let owner, owner["udid"] as String? != nil {
                        throw HallmarkError(.provisioningFailed, "Thing \(thing) belongs to an enrolled device.",
                                            remedy: "Change the template's thing-name pattern so OEM devices get names of their own.")
                    }
                    try Self.createThingIfMissing(db, tenant: tenant, name: thing, udid: nil, product: template.product, policy: template.policy, now: now)
                } else {
                    // Named by its CN, unless that is no thing name or names an enrolled device's thing:
                    // activating this certificate must never hand it another device's identity.
                    let byName = certificate.subject.commonName.flatMap { ThingName.isValid($0) ? $0 : nil }
                    let taken = try byName.map {
                        try Bool.fetchOne(
                            db, sql: "SELECT 1 FROM things WHERE tenant_id = ? AND name = ? AND udid IS NOT NULL", arguments: [tenant, $0]) ?? false
                    } ?? false
                    thing = (taken ? nil : byName) ?? "cert-" + fingerprint.prefix(16)
                }
                let status: CertificateStatus = template == nil ? .pendingActivation : .active
                try db.execute(
                    sql: """
                        INSERT INTO certificates (fingerprint, serial, ca_id, tenant_id, thing_name, udid, key_fingerprint,
                            not_before, not_after, status, issued_at, der, status_changed_at, status_reason)
                        VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        fingerprint, serial, caID, tenant, thing, keyFingerprint, certificate.notValidBefore.timeIntervalSince1970,
                        certificate.notValidAfter.timeIntervalSince1970, status.rawValue, now.timeIntervalSince1970, Data(der),
                        now.timeIntervalSince1970, template == nil ? "just-in-time registration" : "just-in-time provisioning",
                    ])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .certificateRegister, decision: .allow,
                        code: template == nil ? "certificate_registered" : "certificate_provisioned", thing: thing, serial: serial,
                        source: source, detail: "fingerprint \(fingerprint), CA \(caID)"), db)
                guard let identity = try Self.connectionIdentity(db, fingerprint: fingerprint) else {
                    throw HallmarkError(.internalError, "A registered certificate could not be read back.", remedy: "Report this as a bug.")
                }
                return template == nil ? .registered(identity) : .provisioned(identity)
            }
        } catch let error as HallmarkError {
            try await append([AuditEvent(
                at: now, tenant: (try? caTenant(caID)) ?? Self.defaultTenant, action: .certificateRegister, decision: .refuse,
                code: error.code.rawValue, serial: serial, source: source, detail: error.reason)])
            throw error
        }
    }

    private func caTenant(_ id: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT tenant_id FROM ca_certificates WHERE id = ?", arguments: [id]) }
    }
}
