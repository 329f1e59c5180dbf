import Crypto
import HallmarkCore
import HallmarkStore
import X509

import Foundation

/// Issues fleet provisioning claims: a P-256 key and a certificate from the tenant's issuing CA,
/// recorded with the claim's template, product and limits.
public enum ClaimIssuance {
    public struct Issued: Sendable {
        public var claim: Registry.ProvisioningClaim
        /// The claim certificate and the issuing CA (what `claim.pem` holds).
        public var chain: [Certificate]
        public var key: P256.Signing.PrivateKey
    }

    /// - Throws: `claim_invalid` for a validity outside 1–3650 days or a limit below 1; what
    ///   ``Registry/createClaim(_:certificate:now:)`` throws.
    public static func issue(
        registry: Registry, authority: IssuingAuthority, tenant: String, product: String, template: String, maxUses: Int?, validDays: Int, now: Date
    ) throws -> Issued {
        guard (1...3650).contains(validDays) else {
            throw HallmarkError(.claimInvalid, "A claim is good for 1 to 3650 days.", remedy: "Give --valid-days within that.")
        }
        if let maxUses, maxUses < 1 {
            throw HallmarkError(.claimInvalid, "--max-uses must be at least 1.", remedy: "Leave it out for no limit.")
        }
        let id = "claim-" + (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let key = P256.Signing.PrivateKey(compactRepresentable: false)
        let deviceKey = try DeviceKey(Certificate.PublicKey(key.publicKey))
        let certificate = try authority.issueDeviceCertificate(
            thingName: id, key: deviceKey, profile: DeviceCertificateProfile(validity: TimeInterval(validDays) * 86_400), now: now)
        let der = try certificate.derBytes()
        let fingerprint = CertificateFingerprint.sha256(der: der)
        let record = CertificateRecord(
            serial: certificate.serialHex, tenant: tenant, thingName: id, udid: nil, fingerprint: fingerprint, keyFingerprint: deviceKey.fingerprint,
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter, status: .active, replacedBy: nil, der: der,
            issuerKeyID: authority.keyIdentifier)
        let claim = Registry.ProvisioningClaim(
            id: id, tenant: tenant, product: product, template: template, serial: record.serial, fingerprint: fingerprint, maxUses: maxUses,
            expiresAt: certificate.notValidAfter, createdAt: now)
        try registry.createClaim(claim, certificate: record, now: now)
        return Issued(claim: claim, chain: [certificate] + authority.chain.dropLast(), key: key)
    }
}
