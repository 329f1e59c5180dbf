import Foundation
import GRDB
import HallmarkCore

extension Registry {
    /// A product: what its devices' certificates and things get.
    public struct Product: Sendable, Hashable {
        public var tenant: String
        public var id: String
        public var name: String
        /// Its devices' certificate profile (the validity; never past the issuing CA's).
        public var profile: DeviceCertificateProfile
        /// The policy a new thing of the product gets attached.
        public var defaultPolicy: String
        /// What a suspected clone of one of its devices sets off.
        public var cloneResponse: CloneResponse
        /// Whether fleet provisioning may give its devices keys Hallmark made
        /// (CreateKeysAndCertificate): weaker than a device's own key, so off unless asked for.
        public var serverKeys: Bool = false

        public init(
            tenant: String, id: String, name: String, profile: DeviceCertificateProfile = DeviceCertificateProfile(),
            defaultPolicy: String = DefaultPolicy.name, cloneResponse: CloneResponse = .quarantine, serverKeys: Bool = false
        ) {
            self.serverKeys = serverKeys
            self.tenant = tenant
            self.id = id
            self.name = name
            self.profile = profile
            self.defaultPolicy = defaultPolicy
            self.cloneResponse = cloneResponse
        }
    }

    /// Certificate validity a product may ask for: a day to ten years (the issuing CA's own span).
    public static let productValidity: ClosedRange<TimeInterval> = 86_400...(10 * 365 * 86_400)

    /// Finds a product.
    public func product(tenant: String, id: String) throws -> Product? {
        try pool.read { db in try Self.product(db, tenant: tenant, id: id) }
    }

    /// A tenant's products, by id.
    public func products(tenant: String) throws -> [Product] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM products WHERE tenant_id = ? ORDER BY id", arguments: [tenant]).map(Self.product)
        }
    }

    static func product(_ db: Database, tenant: String, id: String) throws -> Product? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM products WHERE tenant_id = ? AND id = ?"), arguments: [tenant, id])
            .map(product)
    }

    private static func product(_ row: Row) -> Product {
        Product(
            tenant: row["tenant_id"], id: row["id"], name: row["name"],
            profile: DeviceCertificateProfile(
                validity: row["certificate_validity_seconds"], supersededGrace: row["superseded_grace_seconds"],
                expiredRenewalWindow: row["expired_renewal_seconds"], expiryWarning: row["expiry_warning_seconds"]),
            defaultPolicy: row["default_policy"], cloneResponse: CloneResponse(rawValue: row["clone_response"]) ?? .quarantine,
            serverKeys: row["server_keys"])
    }

    /// Creates a product, with an event.
    /// - Throws: `product_invalid` for a malformed id or name, a validity out of range or a default
    ///   policy the tenant does not have; `product_exists` if the tenant has a product of that id.
    public func createProduct(_ product: Product, now: Date) throws {
        do {
            try insertProduct(product, now: now)
        } catch let refusal as HallmarkError {
            // A refusal is an event too, with its code.
            try? pool.write { db in
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: product.tenant, action: .productUpdate, decision: .refuse, code: refusal.code.rawValue,
                        detail: "product \(product.id.prefix(64)) not created: \(refusal.reason)"),
                    db)
            }
            throw refusal
        }
    }

    private func insertProduct(_ product: Product, now: Date) throws {
        guard (1...64).contains(product.id.count), product.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw HallmarkError(.productInvalid, "'\(product.id.prefix(40))' is not a product id: 1–64 letters, digits, '-', '_', '.'.",
                                remedy: "Name the product with a short id such as 'thermometer-v2'.")
        }
        guard (1...200).contains(product.name.count) else {
            throw HallmarkError(.productInvalid, "A product name is 1 to 200 characters.", remedy: "Give a shorter name.")
        }
        guard (0...(365 * 86_400)).contains(product.profile.supersededGrace),
            (0...(365 * 86_400)).contains(product.profile.expiredRenewalWindow)
        else {
            throw HallmarkError(.productInvalid, "A superseded certificate's grace and the renewal window after expiry are 0 to 365 days.",
                                remedy: "Choose shorter spans.")
        }
        guard Self.productValidity.contains(product.profile.validity) else {
            throw HallmarkError(.productInvalid, "A device certificate validity of \(Int(product.profile.validity / 86_400)) days is out of range.",
                                remedy: "Choose from 1 to 3650 days.")
        }
        try pool.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM policies WHERE tenant_id = ? AND name = ?",
                                    arguments: [product.tenant, product.defaultPolicy]) ?? false else {
                throw HallmarkError(.productInvalid, "Policy \(product.defaultPolicy.prefix(64)) does not exist.",
                                    remedy: "Create the policy first (`hallmark policy create`), or leave the default.")
            }
            guard try Self.product(db, tenant: product.tenant, id: product.id) == nil else {
                throw HallmarkError(.productExists, "Product \(product.id) already exists.", remedy: "Choose another id.")
            }
            try db.execute(
                sql: """
                    INSERT INTO products (tenant_id, id, name, certificate_validity_seconds, default_policy, clone_response, created_at,
                        superseded_grace_seconds, expired_renewal_seconds, expiry_warning_seconds, server_keys)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    product.tenant, product.id, product.name, product.profile.validity, product.defaultPolicy,
                    product.cloneResponse.rawValue, now.timeIntervalSince1970, product.profile.supersededGrace,
                    product.profile.expiredRenewalWindow, product.profile.expiryWarning, product.serverKeys,
                ])
            try Self.insert(
                AuditEvent(
                    at: now, tenant: product.tenant, action: .productUpdate, decision: .allow, code: "product_created",
                    detail: "product \(product.id): certificates for \(Int(product.profile.validity / 86_400)) days, policy \(product.defaultPolicy), clones met with \(product.cloneResponse.rawValue)"),
                db)
        }
    }
}

extension Registry {
    /// Lets fleet provisioning give a product's devices keys Hallmark made, or stops it.
    public func setServerKeys(tenant: String, product: String, allowed: Bool, now: Date) throws {
        try recordingRefusal(tenant: tenant, action: .productUpdate, now: now, what: "server keys of \(product.prefix(64))") {
            try pool.write { db in
                guard try Self.product(db, tenant: tenant, id: product) != nil else {
                    throw HallmarkError(.notFound, "Product \(product) does not exist.", remedy: "List products with `hallmark product list`.")
                }
                try db.execute(sql: "UPDATE products SET server_keys = ? WHERE tenant_id = ? AND id = ?", arguments: [allowed, tenant, product])
                try Self.insert(
                    AuditEvent(
                        at: now, tenant: tenant, action: .productUpdate, decision: .allow, code: allowed ? "server_keys_allowed" : "server_keys_refused",
                        detail: "product \(product): fleet provisioning " + (allowed ? "may make device keys (CreateKeysAndCertificate)" : "takes devices' own keys only")),
                    db)
            }
        }
    }
}

extension Registry.Product {
    /// A product as an operator or the API describes it: validity in days, the clone response by
    /// name; defaults for what is left out (a year, the default policy, quarantine).
    /// - Throws: `product_invalid` for a clone response that is none.
    public init(
        tenant: String, id: String, name: String, certificateValidityDays: Int?, defaultPolicy: String?, cloneResponse: String?,
        supersededGraceHours: Int? = nil, expiredRenewalDays: Int? = nil
    ) throws {
        var response = Registry.CloneResponse.quarantine
        if let cloneResponse {
            guard let chosen = Registry.CloneResponse(rawValue: cloneResponse) else {
                throw HallmarkError(.productInvalid, "'\(cloneResponse.prefix(40))' is not a clone response.", remedy: "Use quarantine or alarm.")
            }
            response = chosen
        }
        var profile = DeviceCertificateProfile()
        if let certificateValidityDays { profile.validity = TimeInterval(certificateValidityDays) * 86_400 }
        if let supersededGraceHours { profile.supersededGrace = TimeInterval(supersededGraceHours) * 3600 }
        if let expiredRenewalDays { profile.expiredRenewalWindow = TimeInterval(expiredRenewalDays) * 86_400 }
        self.init(
            tenant: tenant, id: id, name: name, profile: profile, defaultPolicy: defaultPolicy ?? DefaultPolicy.name, cloneResponse: response)
    }
}
