@testable import HallmarkBroker
import HallmarkCore
@testable import HallmarkStore
import HallmarkTesting
import NIOConcurrencyHelpers
import Testing
import X509

import Foundation

@Suite("Broker client-certificate checks")
struct TrustStoreTests {
    let pki = try! TestPKI()
    let now = Date()

    func deviceCertificate(_ pki: TestPKI, at: Date, validity: TimeInterval = 86_400) throws -> [UInt8] {
        let key = Certificate.PrivateKey(P256Key.make())
        let device = try DeviceKey(key.publicKey)
        return try pki.authority.issueDeviceCertificate(
            thingName: "thing-1", key: device, profile: DeviceCertificateProfile(validity: validity), now: at
        ).derBytes()
    }

    /// A leaf signed by the test root, with the given extensions.
    func rootSigned(_ extensions: Certificate.Extensions) throws -> [UInt8] {
        let key = Certificate.PrivateKey(P256Key.make())
        return try Certificate(
            version: .v3, serialNumber: CertificateProfiles.randomSerial(), publicKey: key.publicKey,
            notValidBefore: now - 60, notValidAfter: now + 3600, issuer: pki.root.subject,
            subject: try DistinguishedName { CommonName("odd") },
            signatureAlgorithm: .ecdsaWithSHA384, extensions: extensions, issuerPrivateKey: pki.rootKey
        ).derBytes()
    }

    func code(_ result: Result<TrustStore.VerifiedPeer, HallmarkError>) -> HallmarkError.Code? {
        if case .failure(let error) = result { return error.code }
        return nil
    }

    @Test("a certificate of Hallmark's issuing CA is accepted, and recognised again by fingerprint")
    func accepted() throws {
        let store = TrustStore(authorities: [.init(id: "hallmark", certificate: pki.authority.certificate)])
        let der = try deviceCertificate(pki, at: now)
        let peer = try store.verify(leafDER: der, now: now).get()
        #expect(peer.caID == "hallmark" && peer.commonName == "thing-1")
        #expect(try store.verify(leafDER: der, now: now).get() == peer)
        #expect(code(store.verify(leafDER: der, now: now + 2 * 86_400)) == .certificateExpired)
    }

    @Test("a fake CA with the same name, expired and not-yet-valid certificates are refused")
    func refused() throws {
        let store = TrustStore(authorities: [.init(id: "hallmark", certificate: pki.authority.certificate)])
        let fake = try TestPKI()  // same names, other keys
        #expect(fake.authority.certificate.subject == pki.authority.certificate.subject)
        #expect(code(store.verify(leafDER: try deviceCertificate(fake, at: now), now: now)) == .certificateUntrusted)
        #expect(code(store.verify(leafDER: try deviceCertificate(pki, at: now - 10 * 86_400), now: now)) == .certificateExpired)
        #expect(code(store.verify(leafDER: try deviceCertificate(pki, at: now + 3600), now: now)) == .certificateExpired)
        #expect(code(store.verify(leafDER: [0x30, 0x03, 0x02, 0x01, 0x01], now: now)) == .certificateUntrusted)
    }

    @Test("a refusal is attributed to the tenant whose CA signed the certificate, and to none for a fake CA")
    func refusalTenant() throws {
        let store = TrustStore(authorities: [
            .init(id: "hallmark", certificate: pki.authority.certificate),
            .init(id: TrustStore.tenantCA("acme"), certificate: pki.root),
        ])
        let signedByAcme = try rootSigned(try Certificate.Extensions { try ExtendedKeyUsage([.clientAuth]) })
        #expect(store.tenant(ofIssuerOf: signedByAcme) == "acme")
        #expect(store.tenant(ofIssuerOf: try deviceCertificate(pki, at: now)) == nil)  // the shared CA's: no tenant's own
        #expect(store.tenant(ofIssuerOf: try deviceCertificate(try TestPKI(), at: now)) == nil)
        #expect(TrustStore.Authority(id: "ab12", certificate: pki.root, tenant: "globex").tenant == "globex")
    }

    @Test("a server-only EKU, a CA certificate and a key without digitalSignature are refused")
    func wrongUsage() throws {
        let store = TrustStore(authorities: [.init(id: "oem", certificate: pki.root)])
        let serverOnly = try rootSigned(try Certificate.Extensions { try ExtendedKeyUsage([.serverAuth]) })
        let ca = try rootSigned(try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) })
        let noSignature = try rootSigned(try Certificate.Extensions { Critical(KeyUsage(keyEncipherment: true)) })
        let fine = try rootSigned(try Certificate.Extensions { try ExtendedKeyUsage([.clientAuth]) })
        #expect(code(store.verify(leafDER: serverOnly, now: now)) == .certificateUntrusted)
        #expect(code(store.verify(leafDER: ca, now: now)) == .certificateUntrusted)
        #expect(code(store.verify(leafDER: noSignature, now: now)) == .certificateUntrusted)
        #expect(try store.verify(leafDER: fine, now: now).get().caID == "oem")
    }

    @Test("a tenant's CA added after start is found on the first certificate it signed, and binds it to that tenant")
    func tenantCA() throws {
        let acme = try TestPKI(organization: "acme")
        let added = NIOLockedValueBox<[TrustStore.Authority]>([.init(id: "hallmark", certificate: pki.authority.certificate)])
        let store = TrustStore(authorities: added.withLockedValue { $0 }) { added.withLockedValue { $0 } }
        let der = try deviceCertificate(acme, at: now)
        #expect(store.wouldReload(leafDER: der, now: now + 1))
        #expect(code(store.verifyReloadingIfUnknown(leafDER: der, now: now)) == .certificateUntrusted)
        added.withLockedValue { $0.append(.init(id: TrustStore.tenantCA("acme"), certificate: acme.authority.certificate)) }
        // A refusal a moment ago does not reload again at once; after the interval it does. The
        // event loop's check never reloads.
        #expect(!store.wouldReload(leafDER: der, now: now))
        #expect(code(store.verifyReloadingIfUnknown(leafDER: der, now: now)) == .certificateUntrusted)
        #expect(code(store.verify(leafDER: der, now: now + 1)) == .certificateUntrusted)
        let peer = try store.verifyReloadingIfUnknown(leafDER: der, now: now + 1).get()
        #expect(!store.wouldReload(leafDER: der, now: now + 10))  // its issuer is known now
        #expect(peer.caID == "hallmark:acme" && TrustStore.tenant(ofCA: peer.caID) == "acme")
        #expect(TrustStore.isHallmark(peer.caID) && TrustStore.isHallmark("hallmark") && !TrustStore.isHallmark("5cd60426e3de"))
        #expect(TrustStore.tenant(ofCA: "hallmark") == nil)

        func identity(tenant: String) -> ConnectionIdentity {
            ConnectionIdentity(
                tenant: tenant, thingName: "thing-1", udid: "U-1", serial: peer.serial, fingerprint: peer.fingerprint,
                caID: "hallmark", certificateStatus: .active, thingStatus: .active, deviceStatus: .enrolled,
                policyDocuments: [DefaultPolicy.document])
        }
        guard case .failure(let error) = ConnectDecision.decide(identity: identity(tenant: "globex"), clientID: "thing-1", peer: peer) else {
            Issue.record("a certificate of acme's CA recorded for globex was admitted")
            return
        }
        #expect(error.code == .certificateUntrusted)
        #expect((try? ConnectDecision.decide(identity: identity(tenant: "acme"), clientID: "thing-1", peer: peer).get()) != nil)
    }
}
