import HallmarkCore
import X509

import Foundation

/// What enrollment, renewal and the issuing CAs need of a registry: a device's view and
/// attestation, a certificate, the one transaction that decides and records an enrollment, a
/// tenant's issuing CA, and the event log. ``Registry`` (SQLite) is one; a second backend is another.
public protocol EnrollmentStore: Sendable {
    func tenantExists(_ id: String) throws -> Bool
    func tenantIssuingCA(_ tenant: String) throws -> Certificate?
    func tenantIssuingCAs() throws -> [String: Certificate]
    func enrollmentView(udid: UDID, presentedFingerprint: String?) async throws -> Registry.EnrollmentView
    func attestation(udid: UDID, tenant: String) throws -> Registry.DeviceAttestation
    func certificate(fingerprint: String) throws -> CertificateRecord?
    /// Takes the decision again under the registry's write lock and records the outcome with its event.
    func commitEnrollment(
        udid: UDID, presentedFingerprint: String?, decide: @escaping @Sendable (Registry.EnrollmentView) -> EnrollmentDecision,
        candidate: CertificateRecord?, event: AuditEvent
    ) async throws -> Registry.EnrollmentOutcome
    func append(_ event: AuditEvent) async throws
}

extension Registry: EnrollmentStore {}

/// What importing a vendor's signed manifest needs: the vendor's trust, the import, the event log.
public protocol ManifestStore: Sendable {
    func vendorTrust(tenant: String, id: String) throws -> ManufacturerTrust?
    func importManifest(
        _ manifest: VerifiedManifest, vendor: String, tenant: String, claim: Registry.Claim, product: String,
        skipInvalid: Bool, source: String?, now: Date
    ) async throws -> Registry.ManifestImportReport
    func append(_ event: AuditEvent) async throws
}

extension Registry: ManifestStore {}

extension EnrollmentStore {
    /// A device's view for a first enrollment (no certificate presented).
    public func enrollmentView(udid: UDID) async throws -> Registry.EnrollmentView {
        try await enrollmentView(udid: udid, presentedFingerprint: nil)
    }
}
