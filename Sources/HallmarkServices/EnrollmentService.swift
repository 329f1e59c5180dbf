import HallmarkCore
import HallmarkStore
import X509

import Foundation

/// Carries out enrollment and renewal: inspects the CSR, decides with ``EnrollmentRules``, signs,
/// and commits through the registry, which takes the decision again under its write lock.
///
/// Every outcome, allowed or refused, is in the event log before the caller gets its answer.
public struct EnrollmentService: Sendable {
    let registry: any EnrollmentStore
    /// The CAs that sign device certificates: each tenant's own, and the shared one.
    public let authorities: IssuingAuthorities
    let clock: @Sendable () -> Date

    public init(registry: any EnrollmentStore, authorities: IssuingAuthorities, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.registry = registry
        self.authorities = authorities
        self.clock = clock
    }

    /// A service whose one CA signs every tenant's devices (for tests and benchmarks).
    public init(registry: any EnrollmentStore, authority: IssuingAuthority, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.init(registry: registry, authorities: IssuingAuthorities(shared: authority), clock: clock)
    }

    /// The chain a tenant's devices are issued under (its issuing CA, then the root): the EST `cacerts` answer.
    public func chain(tenant: String) async throws -> [Certificate] {
        try await authorities.authority(for: tenant).chain
    }

    /// Whether a tenant exists (EST paths name one).
    /// The default tenant is made when the registry opens and never removed: no lookup for it.
    public func knowsTenant(_ tenant: String) throws -> Bool {
        try tenant == Registry.defaultTenant || registry.tenantExists(tenant)
    }

    /// The certificate an enrollment produced, and whether it is new.
    public struct Issued: Sendable {
        public var certificate: Certificate
        public var record: CertificateRecord
        /// False when the request repeated an answered one and the earlier certificate came back.
        public var isNew: Bool
    }

    /// First enrollment (`simpleenroll`) to a tenant.
    ///
    /// With a client certificate that Hallmark did not issue, the device is enrolling by
    /// attestation: the certificate must be the device's factory attestation certificate (an
    /// IDevID), chaining to a root the tenant registered for its vendor and certifying the
    /// device's root-of-trust key. The TLS handshake proved the device holds that key, so the CSR
    /// may then carry a new operational key.
    ///
    /// The tenant must exist (the EST routes check it before reading the request: ``knowsTenant(_:)``).
    /// - Throws: ``HallmarkError`` for every refusal, after logging it.
    public func enroll(
        csrDER: [UInt8], tenant: String = Registry.defaultTenant, clientCertificate: Certificate? = nil, source: String?
    ) async throws -> Issued {
        let now = clock()
        let request = try await inspect(csrDER, action: .enroll, tenant: tenant, source: source, now: now)
        let view = try await registry.enrollmentView(udid: request.udid)
        var attested = false
        if let clientCertificate, await !authorities.issued(clientCertificate, tenant: tenant), let device = view.device, device.tenant == tenant {
            do {
                try await verifyAttestation(clientCertificate, device: device, now: now)
                attested = true
            } catch let error as HallmarkError {
                throw try await refuse(error, action: .enroll, tenant: tenant, udid: request.udid.rawValue, source: source, now: now)
            }
        }
        let isAttested = attested
        let event = AuditEvent(
            at: now, tenant: tenant, action: .enroll, decision: .allow, code: "",
            udid: request.udid.rawValue, source: source, detail: attested ? "attested by the device's IDevID" : "")
        let decide: @Sendable (Registry.EnrollmentView) -> EnrollmentDecision = { view in
            EnrollmentRules.decideEnrollment(
                request, tenant: tenant, device: view.device, active: view.active, attested: isAttested, now: now,
                expiredRenewalWindow: view.profile?.expiredRenewalWindow ?? 0)
        }
        return try await commit(request: request, view: view, presentedFingerprint: nil, decide: decide, event: event, now: now)
    }

    /// Checks an attestation certificate against the device's vendor (or, for a device of no
    /// manifest, any vendor the tenant registered) and the device's root-of-trust key.
    private func verifyAttestation(_ certificate: Certificate, device: DeviceRecord, now: Date) async throws {
        guard (try? DeviceKey(certificate.publicKey)) == device.key else {
            throw HallmarkError(
                .attestationChainInvalid, "The attestation certificate does not certify device \(device.udid)'s root-of-trust key.",
                remedy: "Authenticate with the device's own factory certificate, or enrol without a client certificate.")
        }
        let attestation = try registry.attestation(udid: device.udid, tenant: device.tenant)
        var failure = HallmarkError(
            .attestationChainInvalid, "Tenant \(device.tenant) has registered no vendor attestation root.",
            remedy: "Register the chip vendor: `hallmark vendor register NAME --attestation-root ROOT.pem`.")
        for trust in attestation.trusts {
            do {
                try await AttestationChain.verify([certificate] + attestation.chain.dropFirst(), trust: trust, now: now)
                return
            } catch {
                failure = error
            }
        }
        throw failure
    }

    /// Renewal (`simplereenroll`), authenticated by the TLS client certificate.
    /// - Throws: ``HallmarkError`` for every refusal, after logging it.
    public func reenroll(
        csrDER: [UInt8], tenant: String = Registry.defaultTenant, clientCertificate: Certificate?, source: String?
    ) async throws -> Issued {
        let now = clock()
        guard let clientCertificate else {
            throw try await refuse(
                HallmarkError(
                    .clientCertificateRequired, "simplereenroll needs the device's current certificate as TLS client certificate.",
                    remedy: "Connect with the certificate and key being renewed (curl --cert CERT --key KEY)."),
                action: .reenroll, tenant: tenant, udid: nil, source: source, now: now)
        }
        guard await authorities.issued(clientCertificate, tenant: tenant) else {
            throw try await refuse(
                HallmarkError(
                    .clientCertificateInvalid, "The client certificate was not issued by this Hallmark's CA.",
                    remedy: "Renew with the certificate Hallmark issued; a device without one enrols with simpleenroll."),
                action: .reenroll, tenant: tenant, udid: nil, source: source, now: now)
        }
        let request = try await inspect(csrDER, action: .reenroll, tenant: tenant, source: source, now: now)
        let fingerprint = CertificateFingerprint.sha256(clientCertificate)
        // The device is found through the presented certificate, not through the CSR's claim.
        let presented = try registry.certificate(fingerprint: fingerprint)
        if let presented, presented.tenant != tenant {
            throw try await refuse(
                HallmarkError(
                    .clientCertificateInvalid, "The client certificate belongs to a device of another tenant.",
                    remedy: "Renew at the EST endpoint of the tenant that enrolled the device."),
                action: .reenroll, tenant: tenant, udid: nil, source: source, now: now)
        }
        let event = AuditEvent(
            at: now, tenant: tenant, action: .reenroll, decision: .allow, code: "",
            udid: request.udid.rawValue, source: source, detail: "")
        let decide: @Sendable (Registry.EnrollmentView) -> EnrollmentDecision = { view in
            EnrollmentRules.decideRenewal(
                request, presented: view.presented, successor: view.successor, device: view.device, now: now)
        }
        let view = try await registry.enrollmentView(udid: presented?.udid ?? request.udid, presentedFingerprint: fingerprint)
        return try await commit(
            request: request, view: view, presentedFingerprint: fingerprint, decide: decide, event: event, now: now,
            udid: presented?.udid)
    }

    /// Signs if the decision over `view` is to issue, then commits, where the decision is taken
    /// again. Should the registry have changed so that it now says to issue what was not signed,
    /// the view is read again and the whole step repeated (a few times at most).
    private func commit(
        request: EnrollmentRequest, view: Registry.EnrollmentView, presentedFingerprint: String?,
        decide: @escaping @Sendable (Registry.EnrollmentView) -> EnrollmentDecision, event: AuditEvent, now: Date,
        udid: UDID? = nil
    ) async throws -> Issued {
        var view = view
        for _ in 0..<3 {
            var candidate: (record: CertificateRecord, certificate: Certificate)?
            if case .issue(let thingName, _) = decide(view), let device = view.device {
                candidate = try await sign(
                    request: request, thingName: thingName, device: device, profile: view.profile ?? DeviceCertificateProfile(),
                    now: now)
            }
            let outcome = try await registry.commitEnrollment(
                udid: udid ?? request.udid, presentedFingerprint: presentedFingerprint, decide: decide,
                candidate: candidate?.record, event: event)
            switch outcome {
            case .issued(let record):
                let certificate = try candidate.map(\.certificate) ?? Certificate(derEncoded: record.der)
                return Issued(certificate: certificate, record: record, isNew: true)
            case .existing(let record):
                return Issued(certificate: try Certificate(derEncoded: record.der), record: record, isNew: false)
            case .refused(let error):
                throw error
            case .stale:
                view = try await registry.enrollmentView(udid: udid ?? request.udid, presentedFingerprint: presentedFingerprint)
            }
        }
        throw try await refuse(
            HallmarkError(
                .internalError, "Device \(request.udid)'s registry record kept changing while it enrolled.",
                remedy: "Retry the request."),
            action: event.action, tenant: event.tenant, udid: request.udid.rawValue, source: event.source, now: now)
    }

    private func sign(
        request: EnrollmentRequest, thingName: String, device: DeviceRecord, profile: DeviceCertificateProfile, now: Date
    ) async throws -> (record: CertificateRecord, certificate: Certificate) {
        let authority = try await authorities.authority(for: device.tenant)
        let certificate = try authority.issueDeviceCertificate(thingName: thingName, key: request.key, profile: profile, now: now)
        let der = try certificate.derBytes()
        let record = CertificateRecord(
            serial: certificate.serialHex, tenant: device.tenant, thingName: thingName,
            udid: device.udid, fingerprint: CertificateFingerprint.sha256(der: der), keyFingerprint: request.key.fingerprint,
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter, status: .active,
            replacedBy: nil, der: der, issuerKeyID: authority.keyIdentifier)
        return (record, certificate)
    }

    private func inspect(_ der: [UInt8], action: EventAction, tenant: String, source: String?, now: Date) async throws -> EnrollmentRequest {
        do {
            return try EnrollmentRequest(der: der)
        } catch {
            throw try await refuse(error, action: action, tenant: tenant, udid: nil, source: source, now: now)
        }
    }

    /// Logs a refusal that happens before the registry is consulted, and returns it to throw.
    public func refuse(
        _ error: HallmarkError, action: EventAction, tenant: String = Registry.defaultTenant, udid: String?, source: String?,
        now: Date? = nil
    ) async throws -> HallmarkError {
        try await registry.append(
            AuditEvent(
                at: now ?? clock(), tenant: tenant, action: action, decision: .refuse,
                code: error.code.rawValue, udid: udid, source: source, detail: error.reason))
        return error
    }
}
