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
    /// Revoked by an operator.
    case revoked
}
