/// Where a device stands in its life, as the registry records it.
public enum DeviceStatus: String, Sendable, Codable, CaseIterable {
    /// On the allowlist, never enrolled.
    case allowed
    /// Holds an operational certificate.
    case enrolled
    /// Held by an operator (suspected clone or tampering): no enrollment until released.
    case quarantined
    /// End of life: no enrollment until transferred.
    case decommissioned
}

/// Where a certificate stands, as the registry records it.
public enum CertificateStatus: String, Sendable, Codable, CaseIterable {
    /// The device's current certificate.
    case active
    /// Replaced by a renewal; accepted only to retry the renewal that replaced it.
    case superseded
    /// Revoked by an operator: refused everywhere, for good.
    case revoked
    /// Set aside by an operator; `hallmark cert activate` brings it back.
    case inactive
    /// Presented by a device of a registered CA without a provisioning template (JITR): known, not
    /// yet allowed to connect until an operator activates it.
    case pendingActivation = "pending_activation"
}

/// Whether a thing may connect, as the registry records it.
public enum ThingStatus: String, Sendable, Codable, CaseIterable {
    /// Its certificates may connect (their own status permitting).
    case active
    /// Deactivated by an operator: its sessions end and it cannot connect.
    case inactive
}
