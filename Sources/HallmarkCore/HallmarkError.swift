/// A refusal or failure with a stable code, what was wrong, and what to do about it.
///
/// Codes never change meaning once shipped; callers match on ``code``. The ``reason`` and
/// ``remedy`` are for people and never carry key material or secrets.
public struct HallmarkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable error code such as `unknown_device`.
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
    }

    /// The stable code.
    public let code: Code
    /// What was wrong, in one sentence.
    public let reason: String
    /// What to do about it, in one sentence.
    public let remedy: String

    /// Creates an error.
    public init(_ code: Code, _ reason: String, remedy: String) {
        self.code = code
        self.reason = reason
        self.remedy = remedy
    }

    public var description: String { "\(code): \(reason) \(remedy)" }

    public static func == (lhs: HallmarkError, rhs: HallmarkError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension HallmarkError.Code {
    // Enrollment request shape
    public static let unsupportedMediaType = Self(rawValue: "unsupported_media_type")
    public static let bodyTooLarge = Self(rawValue: "body_too_large")
    public static let bodyEncodingInvalid = Self(rawValue: "body_encoding_invalid")
    public static let csrMalformed = Self(rawValue: "csr_malformed")
    public static let csrSignatureInvalid = Self(rawValue: "csr_signature_invalid")
    public static let udidMissing = Self(rawValue: "udid_missing")
    public static let udidInvalid = Self(rawValue: "udid_invalid")
    public static let keyAlgorithmNotAllowed = Self(rawValue: "key_algorithm_not_allowed")
    // Enrollment authorisation
    public static let unknownDevice = Self(rawValue: "unknown_device")
    public static let keyMismatch = Self(rawValue: "key_mismatch")
    public static let cloneSuspected = Self(rawValue: "clone_suspected")
    public static let deviceDecommissioned = Self(rawValue: "device_decommissioned")
    public static let deviceQuarantined = Self(rawValue: "device_quarantined")
    // Re-enrollment
    public static let clientCertificateRequired = Self(rawValue: "client_certificate_required")
    public static let clientCertificateInvalid = Self(rawValue: "client_certificate_invalid")
    public static let certificateExpired = Self(rawValue: "certificate_expired")
    public static let certificateNotActive = Self(rawValue: "certificate_not_active")
    public static let subjectMismatch = Self(rawValue: "subject_mismatch")
    // Allowlist
    public static let allowlistInvalid = Self(rawValue: "allowlist_invalid")
    public static let allowlistConflict = Self(rawValue: "allowlist_conflict")
    // Certificate authority and keys
    public static let passphraseMissing = Self(rawValue: "passphrase_missing")
    public static let passphraseWrong = Self(rawValue: "passphrase_wrong")
    public static let keyFileInvalid = Self(rawValue: "key_file_invalid")
    public static let caNotInitialised = Self(rawValue: "ca_not_initialised")
    public static let caAlreadyInitialised = Self(rawValue: "ca_already_initialised")
    // Configuration
    public static let configInvalid = Self(rawValue: "config_invalid")
    // Broker: connection, authorisation, certificates
    public static let policyInvalid = Self(rawValue: "policy_invalid")
    public static let notAuthorized = Self(rawValue: "not_authorized")
    public static let certificateUnknown = Self(rawValue: "certificate_unknown")
    public static let certificateRevoked = Self(rawValue: "certificate_revoked")
    public static let certificateUntrusted = Self(rawValue: "certificate_untrusted")
    public static let certificatePendingActivation = Self(rawValue: "certificate_pending_activation")
    public static let thingInactive = Self(rawValue: "thing_inactive")
    public static let protocolViolation = Self(rawValue: "protocol_violation")
    public static let caRegistrationInvalid = Self(rawValue: "ca_registration_invalid")
    public static let provisioningTemplateInvalid = Self(rawValue: "provisioning_template_invalid")
    public static let provisioningFailed = Self(rawValue: "provisioning_failed")
    // Tenants, manufacturers, ownership, production
    public static let credentialInvalid = Self(rawValue: "credential_invalid")
    public static let tenantInvalid = Self(rawValue: "tenant_invalid")
    public static let vendorInvalid = Self(rawValue: "vendor_invalid")
    public static let manifestInvalid = Self(rawValue: "manifest_invalid")
    public static let manifestSignatureInvalid = Self(rawValue: "manifest_signature_invalid")
    public static let attestationChainInvalid = Self(rawValue: "attestation_chain_invalid")
    public static let ownershipConflict = Self(rawValue: "ownership_conflict")
    public static let counterfeitOEM = Self(rawValue: "counterfeit_oem")
    public static let quotaExceeded = Self(rawValue: "quota_exceeded")
    public static let batchInvalid = Self(rawValue: "batch_invalid")
    // Generic
    public static let notFound = Self(rawValue: "not_found")
    public static let internalError = Self(rawValue: "internal_error")
}
