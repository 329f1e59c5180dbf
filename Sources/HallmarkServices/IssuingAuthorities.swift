import HallmarkCore
import HallmarkStore
import Dispatch
import Synchronization
import X509

import Foundation

/// The CAs that sign device certificates: each tenant's own issuing CA, and the shared one made by
/// `ca init`, which signs the default tenant's devices (and those of tenants made before tenants
/// had CAs of their own).
///
/// A tenant's CA is opened on first use (off the caller's thread: the passphrase's key derivation
/// takes a while) and kept; a tenant without one is looked up again each time, so a CA added while
/// the server runs is used from then on.
public final class IssuingAuthorities: Sendable {
    /// The issuing CA `ca init` made.
    public let shared: IssuingAuthority
    private let registry: (any EnrollmentStore)?
    private let open: @Sendable (_ tenant: String, _ certificate: Certificate) throws -> IssuingAuthority
    private let opened = Mutex<[String: IssuingAuthority]>([:])
    /// The revocation listener's base URL once it is bound; device certificates name it from then on.
    private let revocationBase = Mutex<String?>(nil)

    /// - Parameters:
    ///   - registry: Where tenants' CA certificates are recorded; nil for the shared CA only.
    ///   - open: Opens a tenant's CA key (``AuthorityFiles/loadTenantAuthority(tenant:certificate:passphrase:)``).
    public init(
        shared: IssuingAuthority, registry: (any EnrollmentStore)? = nil,
        open: @escaping @Sendable (_ tenant: String, _ certificate: Certificate) throws -> IssuingAuthority = { _, _ in
            throw HallmarkError(.caNotInitialised, "No tenant CA keys here.", remedy: "Open the server's data directory.")
        }
    ) {
        self.shared = shared
        self.registry = registry
        self.open = open
    }

    /// Has the certificates issued from now on name the revocation listener at `base` (`http://host:port`).
    public func publishRevocation(at base: String) {
        revocationBase.withLock { $0 = base }
    }

    /// The CA that signs a tenant's device certificates.
    public func authority(for tenant: String) async throws -> IssuingAuthority {
        var authority = try await openedAuthority(for: tenant)
        authority.revocationBase = revocationBase.withLock { $0 }
        return authority
    }

    /// The shared CA and every tenant's own, each opened once.
    public func all() async throws -> [IssuingAuthority] {
        var authorities = [try await authority(for: Registry.defaultTenant)]
        for tenant in try registry?.tenantIssuingCAs().keys.sorted() ?? [] {
            authorities.append(try await authority(for: tenant))
        }
        return authorities
    }

    private func openedAuthority(for tenant: String) async throws -> IssuingAuthority {
        guard tenant != Registry.defaultTenant, let registry else { return shared }
        if let known = opened.withLock({ $0[tenant] }) { return known }
        guard let certificate = try registry.tenantIssuingCA(tenant) else { return shared }
        let open = self.open
        let authority = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try open(tenant, certificate) }) }
        }
        opened.withLock { $0[tenant] = authority }
        return authority
    }

    /// Whether a certificate was signed by the tenant's CA or the shared one.
    public func issued(_ certificate: Certificate, tenant: String) async -> Bool {
        var issuers = [shared.certificate]
        if let own = try? await authority(for: tenant).certificate, own != shared.certificate { issuers.append(own) }
        return issuers.contains { issuer in
            certificate.issuer == issuer.subject && issuer.publicKey.isValidSignature(certificate.signature, for: certificate)
        }
    }
}
