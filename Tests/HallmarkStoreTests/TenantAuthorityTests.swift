import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import Testing
import X509

/// Each tenant's own issuing CA: made under the root with `tenant create`, sealed on disk, and
/// used for that tenant's devices only.
@Suite struct TenantAuthorityTests {
    let directory: URL
    let files: AuthorityFiles
    let registry: Registry
    let passphrase: Passphrase
    let shared: IssuingAuthority

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-tenant-ca-\(UUID().uuidString)")
        files = AuthorityFiles(dataDirectory: directory)
        passphrase = try Passphrase("tenant-ca-test-passphrase")
        shared = try files.initialise(organization: "Tenant Test", passphrase: passphrase, now: Date())
        registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
    }

    func authorities() -> IssuingAuthorities {
        let files = files, passphrase = passphrase
        return IssuingAuthorities(shared: shared, registry: registry) { tenant, certificate in
            try files.loadTenantAuthority(tenant: tenant, certificate: certificate, passphrase: passphrase)
        }
    }

    func deviceCertificate(_ authority: IssuingAuthority) throws -> Certificate {
        let key = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
        return try authority.issueDeviceCertificate(thingName: "t-1", key: key, profile: DeviceCertificateProfile(), now: Date())
    }

    func verifies(_ leaf: Certificate, under chain: [Certificate]) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore([shared.root])) { RFC5280Policy(validationTime: Date()) }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain)) { return true }
        return false
    }

    @Test("a tenant's CA is its own, under the root, with its key sealed 0600")
    func ownCA() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let acme = try files.createTenant(id: "acme", name: "Acme", in: registry, passphrase: passphrase, now: Date())
        let globex = try files.createTenant(id: "globex", name: "Globex", in: registry, passphrase: passphrase, now: Date())
        #expect(acme.credential.hasPrefix("hmk_admin_"))
        #expect(acme.authority.certificate.subject != shared.certificate.subject)
        #expect(acme.authority.certificate.subject.commonName == "acme Issuing CA")
        #expect(try registry.tenantIssuingCA("acme") == acme.authority.certificate)
        #expect(try registry.tenants().first { $0.id == "acme" }?.hasOwnCA == true)

        let keyFiles = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("ca/tenants").path)
        #expect(keyFiles.count == 2)
        for name in keyFiles {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("ca/tenants/\(name)").path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let text = try String(contentsOf: directory.appendingPathComponent("ca/tenants/\(name)"), encoding: .utf8)
            #expect(!text.contains("PRIVATE KEY"))
        }

        let leaf = try deviceCertificate(acme.authority)
        #expect(await verifies(leaf, under: [acme.authority.certificate]))
        #expect(!(await verifies(leaf, under: [globex.authority.certificate, shared.certificate])))

        let all = authorities()
        #expect(try await all.authority(for: "acme").certificate == acme.authority.certificate)
        #expect(try await all.authority(for: Registry.defaultTenant).certificate == shared.certificate)
        #expect(await all.issued(leaf, tenant: "acme"))
        #expect(!(await all.issued(leaf, tenant: "globex")))
        #expect(!(await all.issued(leaf, tenant: Registry.defaultTenant)))
        #expect(try await all.authority(for: "globex").issueDeviceCertificate(
            thingName: "g", key: try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey),
            profile: DeviceCertificateProfile(), now: Date()).issuer == globex.authority.certificate.subject)
    }

    @Test("a wrong passphrase creates nothing; a repeated create keeps the first CA's key")
    func refusals() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: HallmarkError.self) {
            try files.createTenant(id: "acme", name: "Acme", in: registry, passphrase: try Passphrase("not-the-passphrase"), now: Date())
        }
        #expect(try !registry.tenantExists("acme"))
        let acme = try files.createTenant(id: "acme", name: "Acme", in: registry, passphrase: passphrase, now: Date())
        #expect(throws: HallmarkError.self) {
            try files.createTenant(id: "acme", name: "Acme again", in: registry, passphrase: passphrase, now: Date())
        }
        let keys = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("ca/tenants").path)
        #expect(keys.count == 1, "a refused create leaves no key behind")
        let reopened = try files.loadTenantAuthority(tenant: "acme", certificate: acme.authority.certificate, passphrase: passphrase)
        #expect(reopened.certificate == acme.authority.certificate)
        #expect(throws: HallmarkError.self) { try files.addTenantAuthority(tenant: "acme", in: registry, passphrase: passphrase, now: Date()) }
        #expect(throws: HallmarkError.self) {
            try files.addTenantAuthority(tenant: Registry.defaultTenant, in: registry, passphrase: passphrase, now: Date())
        }
    }

    @Test("a tenant made before tenants had CAs uses the shared one until it is given its own")
    func legacyTenant() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try registry.createTenant(id: "legacy", name: "Legacy", now: Date())
        let all = authorities()
        #expect(try await all.authority(for: "legacy").certificate == shared.certificate)
        let own = try files.addTenantAuthority(tenant: "legacy", in: registry, passphrase: passphrase, now: Date())
        #expect(try await all.authority(for: "legacy").certificate == own.certificate)
        #expect(try registry.events(code: "tenant_ca_created", tenant: "legacy").count == 1)
    }
}
