import Foundation
import HallmarkCore
import Testing

@Suite struct AuditTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func certificate(_ serial: String, issuedDaysAgo: Double = 10, expiresInDays: Double = 300, key: KeyQuality.Key = .ec(curve: "P-256"), ca: String = "hallmark")
        -> AuditSnapshot.CertificateInfo
    {
        .init(tenant: "t", serial: serial, thing: "thing-\(serial)", caID: ca, notAfter: now.addingTimeInterval(expiresInDays * 86_400),
              issuedAt: now.addingTimeInterval(-issuedDaysAgo * 86_400), key: key)
    }

    func checks(_ snapshot: AuditSnapshot) -> [String: [String]] {
        Dictionary(grouping: AuditChecks.run(snapshot, now: now), by: \.checkName).mapValues { $0.map(\.resourceIdentifier).sorted() }
    }

    @Test func certificatesExpiringOldOrWeakAreFound() {
        var snapshot = AuditSnapshot()
        snapshot.newestEvent = now
        snapshot.newestCheckpoint = now
        snapshot.certificates = [
            certificate("fine"), certificate("soon", expiresInDays: 10), certificate("gone", expiresInDays: -1), certificate("old", issuedDaysAgo: 400),
            certificate("short", key: .rsa(bits: 1024, modulus: [0xc1] + [UInt8](repeating: 0x37, count: 127))),
            certificate("roca", key: .rsa(bits: 2048, modulus: [0x01, 0x00, 0x01])),  // 65537: in every subgroup 65537 generates
        ]
        let found = checks(snapshot)
        #expect(found["DEVICE_CERTIFICATE_EXPIRING_CHECK"] == ["gone", "soon"])
        #expect(found["DEVICE_CERTIFICATE_AGE_CHECK"] == ["old"])
        #expect(found["DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"] == ["roca", "short"])
        let findings = AuditChecks.run(snapshot, now: now)
        #expect(findings.first { $0.resourceIdentifier == "roca" }?.reasonForNonComplianceCode == "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361")
        #expect(findings.first { $0.resourceIdentifier == "gone" }?.reasonForNonComplianceCode == "CERTIFICATE_PAST_EXPIRATION")
        #expect(findings.first?.severity == .critical)  // sorted by severity
        #expect(found["LOGGING_DISABLED_CHECK"] == nil)
    }

    @Test func theROCAFingerprintPassesOrdinaryModuli() {
        // A product of two ordinary primes (2^61-1 and 2^31-1) has residues outside the subgroups.
        let n = UInt128((1 << 61) - 1) * UInt128((1 << 31) - 1)
        let bytes = withUnsafeBytes(of: n.bigEndian) { Array($0) }.drop { $0 == 0 }
        #expect(!KeyQuality.isROCAVulnerable(modulus: Array(bytes)))
        #expect(KeyQuality.isROCAVulnerable(modulus: [0x01, 0x00, 0x01]))
    }

    @Test func policiesThatAllowEverythingOrDenyWithWildcardsAreFound() {
        var snapshot = AuditSnapshot()
        snapshot.policies = [
            .init(tenant: "t", name: "open", document: #"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#, attachedThings: 3),
            .init(tenant: "t", name: "topics", document: #"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:hallmark:iot:::topic/*"}]}"#, attachedThings: 0),
            .init(tenant: "t", name: "own", document: #"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:hallmark:iot:::topic/things/${iot:Connection.Thing.ThingName}/*"}]}"#, attachedThings: 9),
            .init(tenant: "t", name: "deny", document: #"{"Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:hallmark:iot:::topic/things/+/cmd"}]}"#, attachedThings: 1),
        ]
        let found = checks(snapshot)
        #expect(found["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"] == ["open", "topics"])
        #expect(found["IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"] == ["deny"])
    }

    @Test func sharedCertificatesConflictingClientIDsAndWithdrawnCAsAreFound() {
        var snapshot = AuditSnapshot()
        snapshot.tenants = ["t"]
        snapshot.sharedCertificates = [("t", "s1", "thing-s1")]
        snapshot.conflictingClientIDs = [("t", "pump-7", 2)]
        snapshot.certificates = [certificate("under-oem", ca: "oem-ca")]
        snapshot.cas = [.init(tenant: "t", id: "oem-ca", subject: "CN=OEM", notAfter: now.addingTimeInterval(5 * 86_400), active: false, key: .ec(curve: "P-256"))]
        snapshot.newestEvent = now
        let found = checks(snapshot)
        #expect(found["DEVICE_CERTIFICATE_SHARED_CHECK"] == ["s1"])
        #expect(found["CONFLICTING_CLIENT_IDS_CHECK"] == ["pump-7"])
        #expect(found["INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK"] == ["oem-ca"])
        #expect(found["CA_CERTIFICATE_EXPIRING_CHECK"] == nil)  // an inactive CA's expiry is moot
        #expect(found["LOGGING_DISABLED_CHECK"] == ["event-log"])  // events, and no checkpoint
    }
}
