import GRDB
import HallmarkCore

import Foundation

extension Registry {
    /// A fleet provisioning template: the AWS document and what Hallmark adds to it.
    public struct ProvisioningTemplateRecord: Sendable, Hashable {
        public var tenant: String
        public var name: String
        /// The product its devices must be of (nil: the claim's product).
        public var product: String?
        public var document: String
        /// The template parameter that carries the device's UDID.
        public var udidParameter: String
        /// The pre-provisioning hook (HTTPS), if any.
        public var hookURL: String?
        public var createdAt: Date

        public init(tenant: String, name: String, product: String?, document: String, udidParameter: String, hookURL: String?, createdAt: Date) {
            self.tenant = tenant
            self.name = name
            self.product = product
            self.document = document
            self.udidParameter = udidParameter
            self.hookURL = hookURL
            self.createdAt = createdAt
        }

        /// The parsed document (it was checked when stored).
        public func parsed() throws(HallmarkError) -> FleetProvisioningTemplate {
            try FleetProvisioningTemplate(json: Data(document.utf8))
        }
    }

    /// The policy a template's n-th inline `PolicyDocument` is stored as.
    public static func templatePolicyName(_ template: String, index: Int) -> String {
        "provisioning-\(template)" + (index == 0 ? "" : "-\(index + 1)")
    }

    /// Stores a template (or, with `replace`, a new document for one): its document is checked,
    /// the UDID parameter must be among its parameters, the hook must be HTTPS, named policies
    /// must exist, and inline policy documents become policies of their own.
    /// - Throws: `provisioning_template_invalid`, `provisioning_template_exists`, `not_found`.
    public func putProvisioningTemplate(_ record: ProvisioningTemplateRecord, replace: Bool = false, now: Date) throws {
        try recordingRefusal(tenant: record.tenant, action: .provisioningTemplate, now: now, what: "template \(record.name.prefix(40))") {
            guard ProvisioningTemplateName.isValid(record.name) else {
                throw HallmarkError(.provisioningTemplateInvalid, "\(record.name.prefix(64)) is not a template name.",
                                    remedy: "Use 1-36 letters, digits, '_' or '-' (AWS's rule).")
            }
            let template = try FleetProvisioningTemplate(json: Data(record.document.utf8))
            guard template.parameters[record.udidParameter] != nil else {
                throw HallmarkError(.provisioningTemplateInvalid, "The template has no parameter \(record.udidParameter) to carry the device's UDID.",
                                    remedy: "Declare it under Parameters, or name the one that carries the UDID (--udid-parameter).")
            }
            if let hook = record.hookURL {
                guard let url = URL(string: hook), url.scheme == "https", url.host != nil else {
                    throw HallmarkError(.provisioningTemplateInvalid, "The pre-provisioning hook \(hook.prefix(100)) is not an https:// URL.",
                                        remedy: "Give the hook's HTTPS address.")
                }
            }
            try pool.write { db in
                if let product = record.product, try Self.product(db, tenant: record.tenant, id: product) == nil {
                    throw HallmarkError(.notFound, "Product \(product) does not exist.", remedy: "Create it with `hallmark product create`.")
                }
                let exists = try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM provisioning_templates WHERE tenant_id = ? AND name = ?", arguments: [record.tenant, record.name]) ?? false
                if exists && !replace {
                    throw HallmarkError(.provisioningTemplateExists, "Template \(record.name) exists.", remedy: "Give --replace to store a new document for it.")
                }
                for policy in template.policies {
                    guard case .literal(let name)? = policy.name else { continue }
                    guard try Bool.fetchOne(db, sql: "SELECT 1 FROM policies WHERE tenant_id = ? AND name = ?", arguments: [record.tenant, name]) ?? false else {
                        throw HallmarkError(.provisioningTemplateInvalid, "The template names the policy \(name.prefix(64)), which the tenant does not have.",
                                            remedy: "Create it first (`hallmark policy create`), or give the document inline as PolicyDocument.")
                    }
                }
                for (index, document) in template.policies.compactMap(\.document).enumerated() {
                    let name = Self.templatePolicyName(record.name, index: index)
                    let latest = try Row.fetchOne(
                        db, sql: "SELECT version, document FROM policies WHERE tenant_id = ? AND name = ? ORDER BY version DESC LIMIT 1",
                        arguments: [record.tenant, name])
                    guard latest?["document"] as String? != document else { continue }
                    try db.execute(
                        sql: "INSERT INTO policies (tenant_id, name, version, document, created_at) VALUES (?, ?, ?, ?, ?)",
                        arguments: [record.tenant, name, (latest?["version"] as Int? ?? 0) + 1, document, now.timeIntervalSince1970])
                }
                try db.execute(
                    sql: """
                        INSERT INTO provisioning_templates (tenant_id, name, product_id, document, udid_parameter, hook_url, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (tenant_id, name) DO UPDATE SET product_id = excluded.product_id, document = excluded.document,
                            udid_parameter = excluded.udid_parameter, hook_url = excluded.hook_url
                        """,
                    arguments: [record.tenant, record.name, record.product, record.document, record.udidParameter, record.hookURL, now.timeIntervalSince1970])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: record.tenant, action: .provisioningTemplate, decision: .allow, code: exists ? "replaced" : "created",
                        detail: "template \(record.name)" + (record.product.map { " for product \($0)" } ?? "") + (record.hookURL == nil ? "" : " with a pre-provisioning hook")),
                    db)
            }
        }
    }

    /// A tenant's template by name.
    public func provisioningTemplate(tenant: String, name: String) throws -> ProvisioningTemplateRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM provisioning_templates WHERE tenant_id = ? AND name = ?", arguments: [tenant, name])
                .map(Self.templateRecord)
        }
    }

    /// A tenant's templates, by name.
    public func provisioningTemplates(tenant: String) throws -> [ProvisioningTemplateRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM provisioning_templates WHERE tenant_id = ? ORDER BY name", arguments: [tenant])
                .map(Self.templateRecord)
        }
    }

    static func templateRecord(_ row: Row) -> ProvisioningTemplateRecord {
        ProvisioningTemplateRecord(
            tenant: row["tenant_id"], name: row["name"], product: row["product_id"], document: row["document"],
            udidParameter: row["udid_parameter"], hookURL: row["hook_url"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    // MARK: Claims

    /// A claim: a certificate shared by many devices of a product, good only for asking for their
    /// own certificates through one template.
    public struct ProvisioningClaim: Sendable, Hashable {
        public var id: String
        public var tenant: String
        public var product: String
        public var template: String
        public var serial: String
        public var fingerprint: String
        /// How many devices it may provision (nil: no limit).
        public var maxUses: Int?
        public var used: Int
        public var expiresAt: Date?
        /// `active` or `revoked`.
        public var status: String
        public var createdAt: Date

        public init(
            id: String, tenant: String, product: String, template: String, serial: String, fingerprint: String, maxUses: Int?,
            used: Int = 0, expiresAt: Date?, status: String = "active", createdAt: Date
        ) {
            self.id = id
            self.tenant = tenant
            self.product = product
            self.template = template
            self.serial = serial
            self.fingerprint = fingerprint
            self.maxUses = maxUses
            self.used = used
            self.expiresAt = expiresAt
            self.status = status
            self.createdAt = createdAt
        }

        /// The refusal of a connection whose claim no longer exists.
        public static let gone = HallmarkError(
            .certificateRevoked, "The claim this connection used no longer exists.", remedy: "Provision with a claim in force.")

        /// The refusal of CreateKeysAndCertificate for a product that does not allow it.
        public static func serverKeysNotAllowed(product: String) -> HallmarkError {
            HallmarkError(
                .serverKeysNotAllowed, "Product \(product) does not let Hallmark make device keys: a device must make its own.",
                remedy: "Send a CSR signed by the device's root-of-trust key ($aws/certificates/create-from-csr); an operator may allow it with `hallmark product server-keys PRODUCT on`.")
        }

        /// Why the claim may not provision this device, if it may not: it is of another product.
        public func refusal(for device: DeviceRecord) -> HallmarkError? {
            guard device.product != product else { return nil }
            return HallmarkError(
                .provisioningDenied, "Device \(device.udid) is of product \(device.product); claim \(id) provisions product \(product).",
                remedy: "Provision each product's devices with that product's claim.")
        }

        /// Why the claim may not provision another device now, if it may not.
        public func refusal(now: Date) -> HallmarkError? {
            if status != "active" {
                return HallmarkError(.certificateRevoked, "ProvisioningClaim \(id) is revoked.", remedy: "Provision with a claim that is in force.")
            }
            if let expiresAt, expiresAt <= now {
                return HallmarkError(.claimExpired, "ProvisioningClaim \(id) expired.", remedy: "An operator issues a new claim (`hallmark claim create`).")
            }
            if let maxUses, used >= maxUses {
                return HallmarkError(.claimExhausted, "ProvisioningClaim \(id) has provisioned the \(maxUses) devices it may.",
                                     remedy: "An operator issues a new claim (`hallmark claim create --max-uses N`).")
            }
            return nil
        }
    }

    /// Records a claim and its certificate (which names no device: it is no device's identity).
    /// - Throws: `not_found` for a template or product the tenant does not have, `claim_invalid`
    ///   for a template of another product.
    public func createClaim(_ claim: ProvisioningClaim, certificate: CertificateRecord, now: Date) throws {
        try recordingRefusal(tenant: claim.tenant, action: .claimCreate, now: now, what: "claim for template \(claim.template.prefix(40))") {
            try pool.write { db in
                guard try Self.product(db, tenant: claim.tenant, id: claim.product) != nil else {
                    throw HallmarkError(.notFound, "Product \(claim.product) does not exist.", remedy: "Create it with `hallmark product create`.")
                }
                guard let template = try Row.fetchOne(
                    db, sql: "SELECT * FROM provisioning_templates WHERE tenant_id = ? AND name = ?", arguments: [claim.tenant, claim.template])
                    .map(Self.templateRecord)
                else {
                    throw HallmarkError(.notFound, "Template \(claim.template) does not exist.", remedy: "Create it with `hallmark provisioning-template create`.")
                }
                if let product = template.product, product != claim.product {
                    throw HallmarkError(.claimInvalid, "Template \(claim.template) provisions devices of product \(product), not \(claim.product).",
                                        remedy: "Give the template's product, or a template for this one.")
                }
                try db.execute(
                    sql: """
                        INSERT INTO certificates (fingerprint, serial, ca_id, tenant_id, thing_name, udid, key_fingerprint, not_before, not_after,
                            status, issued_at, der, issuer_key_id) VALUES (?, ?, 'hallmark', ?, ?, NULL, ?, ?, ?, 'active', ?, ?, ?)
                        """,
                    arguments: [
                        certificate.fingerprint, certificate.serial, claim.tenant, claim.id, certificate.keyFingerprint,
                        certificate.notBefore.timeIntervalSince1970, certificate.notAfter.timeIntervalSince1970, now.timeIntervalSince1970,
                        Data(certificate.der), certificate.issuerKeyID,
                    ])
                try db.execute(
                    sql: """
                        INSERT INTO claims (id, tenant_id, product_id, template_name, fingerprint, serial, max_uses, expires_at, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        claim.id, claim.tenant, claim.product, claim.template, claim.fingerprint, claim.serial, claim.maxUses,
                        claim.expiresAt?.timeIntervalSince1970, now.timeIntervalSince1970,
                    ])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: claim.tenant, action: .claimCreate, decision: .allow, code: "created", serial: claim.serial,
                        detail: "claim \(claim.id) for template \(claim.template), product \(claim.product)"
                            + (claim.maxUses.map { ", at most \($0) devices" } ?? "")),
                    db)
            }
        }
    }

    /// A tenant's claims, newest first.
    public func claims(tenant: String) throws -> [ProvisioningClaim] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM claims WHERE tenant_id = ? ORDER BY created_at DESC, id", arguments: [tenant]).map(Self.claim)
        }
    }

    static func claim(_ row: Row) -> ProvisioningClaim {
        ProvisioningClaim(
            id: row["id"], tenant: row["tenant_id"], product: row["product_id"], template: row["template_name"], serial: row["serial"],
            fingerprint: row["fingerprint"], maxUses: row["max_uses"], used: row["used"],
            expiresAt: (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:)), status: row["status"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    /// A claim by id.
    public func claim(id: String) throws -> ProvisioningClaim? {
        try pool.read { db in try Self.claim(db, id: id) }
    }

    static func claim(_ db: Database, id: String) throws -> ProvisioningClaim? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM claims WHERE id = ?"), arguments: [id]).map(claim)
    }

    /// Revokes a claim: its certificate is revoked (CRL and OCSP say so; its sessions end), and
    /// it provisions no more devices.
    public func revokeClaim(tenant: String, id: String, now: Date) async throws {
        guard let claim = try claim(id: id), claim.tenant == tenant else {
            throw HallmarkError(.notFound, "Tenant \(tenant) has no claim \(id.prefix(64)).", remedy: "List them with `hallmark claim list`.")
        }
        if claim.status == "active" {
            try await setCertificateStatus(claim.fingerprint, to: .revoked, reason: "claim \(id) revoked", revocationReason: .cessationOfOperation, tenant: tenant, now: now)
        }
        try await committer.perform { db in
            try db.execute(sql: "UPDATE claims SET status = 'revoked' WHERE id = ?", arguments: [id])
        }
    }
}
