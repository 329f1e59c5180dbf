import HallmarkCore
import HallmarkStore
import X509

import Foundation

/// The certificate authority's files in the data directory: certificates as PEM, private keys
/// sealed under the passphrase (``SealedPrivateKey``), key files mode 0600 in a 0700 directory.
public struct AuthorityFiles: Sendable {
    public let directory: URL

    public init(dataDirectory: URL) {
        self.directory = dataDirectory.appendingPathComponent("ca", isDirectory: true)
    }

    var rootCertificate: URL { directory.appendingPathComponent("root.pem") }
    var rootKey: URL { directory.appendingPathComponent("root.key.sealed") }
    var issuingCertificate: URL { directory.appendingPathComponent("issuing.pem") }
    var issuingKey: URL { directory.appendingPathComponent("issuing.key.sealed") }
    var serverCertificate: URL { directory.appendingPathComponent("tls-server.pem") }
    var serverKey: URL { directory.appendingPathComponent("tls-server.key.sealed") }
    /// The chain devices trust (issuing CA then root), as PEM.
    public var chainFile: URL { directory.appendingPathComponent("chain.pem") }
    /// The root certificate file, for clients (`curl --cacert`).
    public var rootFile: URL { rootCertificate }

    /// Whether `ca init` has run here.
    public var isInitialised: Bool { FileManager.default.fileExists(atPath: issuingKey.path) }

    /// Creates the root (P-384) and issuing CA (P-256).
    /// - Throws: `ca_already_initialised` when a CA exists here.
    @discardableResult
    public func initialise(
        organization: String, passphrase: Passphrase, now: Date
    ) throws -> IssuingAuthority {
        guard !isInitialised else {
            throw HallmarkError(
                .caAlreadyInitialised, "A CA already exists in \(directory.path).",
                remedy: "Use it, or choose another --data-dir for a new CA.")
        }
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let rootKey = Certificate.PrivateKey(P384Key.make())
        let rootName = try DistinguishedName {
            OrganizationName(organization)
            CommonName("\(organization) Root CA")
        }
        let root = try CertificateProfiles.root(key: rootKey, name: rootName, now: now)
        let issuingKey = Certificate.PrivateKey(P256Key.make())
        let issuingName = try DistinguishedName {
            OrganizationName(organization)
            CommonName("\(organization) Issuing CA 1")
        }
        let issuing = try CertificateProfiles.intermediate(
            publicKey: issuingKey.publicKey, name: issuingName, issuer: root, issuerKey: rootKey, now: now)
        try write(SealedPrivateKey.seal(rootKey, purpose: "root-ca", passphrase: passphrase), to: self.rootKey)
        try write(SealedPrivateKey.seal(issuingKey, purpose: "issuing-ca", passphrase: passphrase), to: self.issuingKey)
        try writePEM([root], to: rootCertificate)
        try writePEM([issuing], to: issuingCertificate)
        try writePEM([issuing, root], to: chainFile)
        return IssuingAuthority(certificate: issuing, privateKey: issuingKey, root: root)
    }

    /// Loads the issuing CA, opening its key with the passphrase.
    public func loadIssuingAuthority(passphrase: Passphrase) throws -> IssuingAuthority {
        guard isInitialised else {
            throw HallmarkError(
                .caNotInitialised, "No CA in \(directory.path).",
                remedy: "Run `hallmark ca init --data-dir DIR` first.")
        }
        return try openAuthority(
            certificate: readCertificate(issuingCertificate), keyFile: issuingKey, name: "The issuing CA", passphrase: passphrase)
    }

    /// An issuing CA from its certificate and sealed key, which must match.
    private func openAuthority(
        certificate: Certificate, keyFile: URL, name: String, crlName: String = "hallmark", passphrase: Passphrase
    ) throws -> IssuingAuthority {
        let key = try readSealed(keyFile).open(passphrase: passphrase)
        guard key.publicKey == certificate.publicKey else {
            throw HallmarkError(.keyFileInvalid, "\(name)'s key does not match its certificate.", remedy: "Restore the data directory from backup.")
        }
        return IssuingAuthority(certificate: certificate, privateKey: key, root: try readCertificate(rootCertificate), name: crlName)
    }

    /// The root certificate, without opening any key.
    public func loadRoot() throws -> Certificate { try readCertificate(rootCertificate) }

    /// The shared issuing CA's certificate, without opening any key.
    public func loadIssuingCertificate() throws -> Certificate { try readCertificate(issuingCertificate) }

    // MARK: Tenants' issuing CAs

    /// Where tenants' issuing CA keys are sealed: one file per CA, named by tenant and serial, so
    /// that a failed or repeated creation never overwrites a key in use.
    var tenantKeys: URL { directory.appendingPathComponent("tenants", isDirectory: true) }

    func tenantKey(tenant: String, serial: String) -> URL {
        tenantKeys.appendingPathComponent("\(tenant)-\(serial).key.sealed")
    }

    /// Creates a tenant with an issuing CA of its own (P-256, under Hallmark's root, path length 0),
    /// so that the tenant's devices chain to a CA no other tenant's devices chain to.
    /// Opens the root key with the passphrase: a wrong passphrase creates nothing.
    /// - Returns: The tenant's administrator credential (shown once) and its issuing CA.
    public func createTenant(
        id: String, name: String, in registry: Registry, passphrase: Passphrase, now: Date
    ) throws -> (credential: String, authority: IssuingAuthority) {
        let id = try TenantID.validate(id)
        try registry.requireNoTenant(id)
        let authority = try issueTenantAuthority(tenant: id, passphrase: passphrase, now: now)
        let credential = try registry.createTenant(id: id, name: name, issuingCA: authority.certificate, now: now)
        return (credential, authority)
    }

    /// Gives an existing tenant (one made before tenants had their own CA) its issuing CA.
    /// Certificates the shared CA issued to its devices stay valid until they are renewed.
    public func addTenantAuthority(
        tenant: String, in registry: Registry, passphrase: Passphrase, now: Date
    ) throws -> IssuingAuthority {
        try registry.requireTenant(tenant)
        guard tenant != Registry.defaultTenant else {
            throw HallmarkError(
                .tenantInvalid, "The default tenant's devices are signed by the issuing CA `ca init` made.",
                remedy: "Create a tenant for the OEM with `hallmark tenant create`.")
        }
        try registry.requireNoTenantIssuingCA(tenant)
        let authority = try issueTenantAuthority(tenant: tenant, passphrase: passphrase, now: now)
        try registry.setTenantIssuingCA(authority.certificate, tenant: tenant, now: now)
        return authority
    }

    private func issueTenantAuthority(tenant: String, passphrase: Passphrase, now: Date) throws -> IssuingAuthority {
        guard isInitialised else {
            throw HallmarkError(
                .caNotInitialised, "No CA in \(directory.path).", remedy: "Run `hallmark ca init --data-dir DIR` first.")
        }
        let rootKey = try readSealed(self.rootKey).open(passphrase: passphrase)
        let root = try readCertificate(rootCertificate)
        let key = Certificate.PrivateKey(P256Key.make())
        let name = try DistinguishedName {
            if let organization = root.subject.organizationName { OrganizationName(organization) }
            OrganizationalUnitName(tenant)
            CommonName("\(tenant) Issuing CA")
        }
        let certificate = try CertificateProfiles.intermediate(
            publicKey: key.publicKey, name: name, issuer: root, issuerKey: rootKey, now: now)
        try FileManager.default.createDirectory(
            at: tenantKeys, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try write(
            SealedPrivateKey.seal(key, purpose: "tenant-issuing-ca", passphrase: passphrase),
            to: tenantKey(tenant: tenant, serial: certificate.serialHex))
        return IssuingAuthority(certificate: certificate, privateKey: key, root: root, name: IssuingAuthority.name(tenant: tenant))
    }

    /// Opens a tenant's issuing CA, given its certificate from the registry.
    public func loadTenantAuthority(tenant: String, certificate: Certificate, passphrase: Passphrase) throws -> IssuingAuthority {
        try openAuthority(
            certificate: certificate, keyFile: tenantKey(tenant: tenant, serial: certificate.serialHex),
            name: "Tenant \(tenant)'s issuing CA", crlName: IssuingAuthority.name(tenant: tenant), passphrase: passphrase)
    }

    /// The TLS server identity: reused while it covers `hostNames` and has a month left, else
    /// issued anew by the issuing CA and saved.
    public func serverIdentity(
        authority: IssuingAuthority, hostNames: [String], passphrase: Passphrase, now: Date
    ) throws -> (chain: [Certificate], key: Certificate.PrivateKey) {
        if FileManager.default.fileExists(atPath: serverKey.path),
            let certificate = try? readCertificate(serverCertificate),
            certificate.notValidAfter > now + 30 * 86400,
            Set(try Self.subjectAlternativeNames(certificate)) == Set(hostNames)
        {
            let key = try readSealed(serverKey).open(passphrase: passphrase)
            if key.publicKey == certificate.publicKey { return ([certificate, authority.certificate], key) }
        }
        let key = Certificate.PrivateKey(P256Key.make())
        let certificate = try authority.issueServerCertificate(key: key.publicKey, hostNames: hostNames, now: now)
        try write(SealedPrivateKey.seal(key, purpose: "tls-server", passphrase: passphrase), to: serverKey)
        try writePEM([certificate], to: serverCertificate)
        return ([certificate, authority.certificate], key)
    }

    static func subjectAlternativeNames(_ certificate: Certificate) throws -> [String] {
        guard let san = try certificate.extensions.subjectAlternativeNames else { return [] }
        return san.compactMap { name in
            switch name {
            case .dnsName(let dns): return dns
            case .ipAddress(let octets):
                let bytes = Array(octets.bytes)
                return bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : (bytes == Array(repeating: 0, count: 15) + [1] ? "::1" : nil)
            default: return nil
            }
        }
    }

    func write(_ sealed: SealedPrivateKey, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(sealed)
        // Created 0600 before the first byte is written, so the sealed key is never readable by others.
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw HallmarkError(
                .keyFileInvalid, "Could not create \(url.lastPathComponent).",
                remedy: "Check that the data directory exists and is writable.")
        }
        try data.write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
    }

    func readSealed(_ url: URL) throws -> SealedPrivateKey {
        do {
            return try JSONDecoder().decode(SealedPrivateKey.self, from: Data(contentsOf: url))
        } catch {
            throw HallmarkError(
                .keyFileInvalid, "\(url.lastPathComponent) is missing or not a Hallmark sealed key.",
                remedy: "Restore the data directory from backup.")
        }
    }

    private func writePEM(_ certificates: [Certificate], to url: URL) throws {
        let text = try certificates.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: url)
    }

    private func readCertificate(_ url: URL) throws -> Certificate {
        try Certificate(pemEncoded: String(decoding: Data(contentsOf: url), as: UTF8.self))
    }
}
