import Foundation

/// The rules of first enrollment (`simpleenroll`) and renewal (`simplereenroll`), as pure functions.
public enum EnrollmentRules {
    /// Decides a first enrollment.
    ///
    /// - The UDID must be on the allowlist, and the device neither decommissioned nor quarantined.
    /// - The CSR key must be the root-of-trust key on record. Another key is `key_mismatch` for a
    ///   device never enrolled, and `clone_suspected` for one already enrolled.
    /// - If the device already holds an active certificate for this key, the request is a retry:
    ///   that certificate is returned and nothing is issued, unless it has expired. A device whose
    ///   certificate expired while it was offline gets a new one (the CSR signed by its
    ///   root-of-trust key is the proof) if its product allows it and the expiry is within the
    ///   product's window; otherwise it is refused `certificate_expired`, not handed its expired one.
    /// - The device must belong to the tenant the request came to; a genuine device of another
    ///   tenant is `counterfeit_oem` (its chips in a product that does not own them).
    /// - With an attestation (the device authenticated TLS with its factory IDevID, whose key is
    ///   the root-of-trust key), the CSR may carry a new operational key.
    /// - Parameters:
    ///   - request: The inspected CSR.
    ///   - tenant: The tenant the request was made to.
    ///   - device: The allowlist record for the CSR's UDID, if any.
    ///   - active: The device's active certificate, if any.
    ///   - attested: Whether the device proved its identity with a verified attestation certificate.
    ///   - now: The time of the request.
    ///   - expiredRenewalWindow: How long after expiry the product lets a device renew this way.
    public static func decideEnrollment(
        _ request: EnrollmentRequest, tenant: String, device: DeviceRecord?, active: CertificateRecord?,
        attested: Bool = false, now: Date = Date(), expiredRenewalWindow: TimeInterval = 0
    ) -> EnrollmentDecision {
        let admitted: DeviceRecord
        switch admit(udid: request.udid, device: device, tenant: tenant) {
        case .success(let record): admitted = record
        case .failure(let refusal): return .refuse(refusal)
        }
        let device = admitted
        guard attested || request.key == device.key else {
            if device.status == .enrolled || active != nil {
                return .refuse(
                    HallmarkError(
                        .cloneSuspected,
                        "Device \(request.udid) is already enrolled and this CSR carries another key: a suspected clone.",
                        remedy: "A genuine device signs with its root-of-trust key; an operator should inspect this device."))
            }
            return .refuse(
                HallmarkError(
                    .keyMismatch, "The CSR's key is not the root-of-trust key on record for device \(request.udid).",
                    remedy: "Build the CSR with the device's root-of-trust key, or correct the allowlist record."))
        }
        if let active {
            if active.notAfter < now {
                guard expiredRenewalWindow > 0, now.timeIntervalSince(active.notAfter) <= expiredRenewalWindow else {
                    return .refuse(
                        HallmarkError(
                            .certificateExpired,
                            "Device \(request.udid)'s certificate \(active.serial) expired, and its product allows no renewal that long after expiry.",
                            remedy: "An operator may widen the product's window (--expired-renewal-days), or revoke the expired certificate so that the device enrols afresh."))
                }
                return .issue(thingName: active.thingName, supersedes: active.serial)
            }
            if active.keyFingerprint == request.key.fingerprint {
                return .returnExisting(serial: active.serial)
            }
            return .issue(thingName: active.thingName, supersedes: active.serial)
        }
        return .issue(thingName: thingName(for: device), supersedes: nil)
    }

    /// Decides a renewal, made over TLS with the certificate being renewed.
    ///
    /// - The presented certificate must be one Hallmark issued, within its validity, and active. A
    ///   superseded one is accepted only to repeat the renewal that replaced it (same key): the
    ///   replacement is returned and nothing is issued.
    /// - The CSR must name the same device; its key may be the same or new.
    public static func decideRenewal(
        _ request: EnrollmentRequest, presented: CertificateRecord?, successor: CertificateRecord?,
        device: DeviceRecord?, now: Date
    ) -> EnrollmentDecision {
        guard let presented else {
            return .refuse(
                HallmarkError(
                    .clientCertificateInvalid, "The client certificate was not issued by this Hallmark.",
                    remedy: "Renew with the certificate Hallmark issued; a device without one enrols with simpleenroll."))
        }
        guard presented.notBefore <= now, now <= presented.notAfter else {
            return .refuse(
                HallmarkError(
                    .certificateExpired, "The client certificate \(presented.serial) is outside its validity period.",
                    remedy: "Enrol again with simpleenroll using the root-of-trust key."))
        }
        guard request.udid == presented.udid else {
            return .refuse(
                HallmarkError(
                    .subjectMismatch, "The CSR names \(request.udid) but the client certificate belongs to \(presented.udid?.rawValue ?? "a device of another CA").",
                    remedy: "Renew each device with its own certificate and its own UDID in the CSR."))
        }
        guard let device else {
            return .refuse(
                HallmarkError(
                    .unknownDevice, "Device \(presented.udid?.rawValue ?? "?") is no longer on the allowlist.",
                    remedy: "Ask an operator to restore the device record."))
        }
        if let refusal = refusal(for: device.status, udid: device.udid) { return .refuse(refusal) }
        switch presented.status {
        case .active:
            return .issue(thingName: presented.thingName, supersedes: presented.serial)
        case .superseded:
            if let successor, successor.status == .active, successor.keyFingerprint == request.key.fingerprint {
                return .returnExisting(serial: successor.serial)
            }
            return .refuse(
                HallmarkError(
                    .certificateNotActive, "The client certificate \(presented.serial) was already renewed.",
                    remedy: "Renew with the device's current certificate."))
        case .revoked:
            return .refuse(
                HallmarkError(
                    .certificateRevoked, "The client certificate \(presented.serial) is revoked.",
                    remedy: "A revoked device cannot renew; an operator must re-admit it."))
        case .inactive, .pendingActivation:
            return .refuse(
                HallmarkError(
                    .certificateNotActive, "The client certificate \(presented.serial) is \(presented.status.rawValue).",
                    remedy: "An operator must activate it (hallmark cert activate) before it can renew."))
        }
    }

    /// The device, if it may join a tenant's fleet at all; else why not: it is not on the
    /// allowlist (`unknown_device`), another OEM owns it (`counterfeit_oem`), or it is
    /// decommissioned or quarantined. Enrollment and fleet provisioning both ask.
    public static func admit(udid: UDID, device: DeviceRecord?, tenant: String) -> Result<DeviceRecord, HallmarkError> {
        guard let device else {
            return .failure(HallmarkError(
                .unknownDevice, "Device \(udid) is not on the allowlist.",
                remedy: "Import the device's UDID and root-of-trust key (`hallmark allowlist import`), then retry."))
        }
        guard device.tenant == tenant else {
            return .failure(HallmarkError(
                .counterfeitOEM, "Device \(udid) is a genuine device owned by another OEM; it cannot join this tenant's fleet.",
                remedy: "A product may use only devices its maker owns; the owner must transfer the device first."))
        }
        if let refusal = refusal(for: device.status, udid: device.udid) { return .failure(refusal) }
        return .success(device)
    }

    /// The thing name for a device: its UDID.
    public static func thingName(for device: DeviceRecord) -> String { device.udid.rawValue }

    public static func refusal(for status: DeviceStatus, udid: UDID) -> HallmarkError? {
        switch status {
        case .decommissioned:
            return HallmarkError(
                .deviceDecommissioned, "Device \(udid) is decommissioned.",
                remedy: "A decommissioned device cannot enrol unless an operator transfers or re-admits it.")
        case .quarantined:
            return HallmarkError(
                .deviceQuarantined, "Device \(udid) is quarantined.",
                remedy: "An operator must release the device before it can enrol.")
        case .allowed, .enrolled:
            return nil
        }
    }
}
