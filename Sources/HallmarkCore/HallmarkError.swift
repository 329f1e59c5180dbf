/// A refusal or failure with a stable code, what was wrong, and what to do about it.
///
/// Codes never change meaning once shipped; callers match on ``code``. The ``reason`` and
/// ``remedy`` are for people and never carry key material or secrets; an ``underlying`` error
/// (kept for `internal_error`) appears only in ``debugDescription``.
public struct HallmarkError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A stable, machine-readable error code such as `unknown_device`: one of a closed set
    /// (``all``), each with the ``Kind`` of refusal it is. New codes never break callers, who
    /// compare codes rather than switch over them.
    public struct Code: Sendable, Hashable, Codable, CustomStringConvertible {
        let value: Value

        init(_ value: Value) { self.value = value }

        /// The code a stored or received string names; nil for a string that is no code.
        public init?(rawValue: String) {
            guard let value = Value(rawValue: rawValue) else { return nil }
            self.value = value
        }

        public var rawValue: String { value.rawValue }
        public var description: String { rawValue }

        /// Every code Hallmark has.
        public static var all: [Code] { Value.allCases.map(Code.init) }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let value = Value(rawValue: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is no Hallmark error code"))
            }
            self.value = value
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        /// What kind of refusal the code is; the wire layers choose a status from it (the HTTP layer
        /// a status code, the broker a reason code).
        public var kind: Kind {
            switch value {
            case .unsupportedMediaType:
                .unsupportedMediaType
            case .bodyTooLarge:
                .tooLarge
            case .bodyEncodingInvalid, .csrMalformed, .csrSignatureInvalid, .udidMissing, .udidInvalid, .keyAlgorithmNotAllowed, .allowlistInvalid, .configInvalid, .policyInvalid, .caRegistrationInvalid, .provisioningTemplateInvalid, .tenantInvalid, .vendorInvalid, .manifestInvalid, .manifestSignatureInvalid, .batchInvalid, .productInvalid, .firmwareImageInvalid, .jobInvalid, .claimInvalid, .provisioningRequestInvalid, .reportInvalid, .securityProfileInvalid:
                .invalid
            case .unknownDevice, .keyMismatch, .cloneSuspected, .deviceDecommissioned, .deviceQuarantined, .clientCertificateRequired, .clientCertificateInvalid, .certificateExpired, .certificateNotActive, .subjectMismatch, .notAuthorized, .certificateUnknown, .certificateRevoked, .certificateUntrusted, .certificatePendingActivation, .thingInactive, .protocolViolation, .provisioningFailed, .attestationChainInvalid, .counterfeitOEM, .quotaExceeded, .firmwareSignatureInvalid, .firmwareSignerUnknown, .firmwareNotForDevice, .firmwareRollback, .firmwareDowngrade, .firmwareWrongProduct, .claimExpired, .claimExhausted, .ownershipTokenInvalid, .provisioningDenied, .serverKeysNotAllowed, .reportSignatureInvalid, .reportSignatureRequired, .reportThrottled:
                .refused
            case .allowlistConflict, .caAlreadyInitialised, .ownershipConflict, .productExists, .deviceStatusInvalid, .logInconsistent, .firmwareKeyMissing, .firmwareKeyExists, .firmwareReleaseExists, .jobExists, .jobStateInvalid, .deviceAlreadyEnrolled, .provisioningTemplateExists, .reportReplayed, .securityProfileExists:
                .conflict
            case .passphraseMissing, .passphraseWrong, .keyFileInvalid, .caNotInitialised:
                .serverSetup
            case .credentialInvalid:
                .unauthenticated
            case .notFound:
                .notFound
            case .storageUnavailable:
                .unavailable
            case .internalError:
                .internal
            }
        }

        enum Value: String, CaseIterable, Sendable {
        case unsupportedMediaType = "unsupported_media_type"
        case bodyTooLarge = "body_too_large"
        case bodyEncodingInvalid = "body_encoding_invalid"
        case csrMalformed = "csr_malformed"
        case csrSignatureInvalid = "csr_signature_invalid"
        case udidMissing = "udid_missing"
        case udidInvalid = "udid_invalid"
        case keyAlgorithmNotAllowed = "key_algorithm_not_allowed"
        case unknownDevice = "unknown_device"
        case keyMismatch = "key_mismatch"
        case cloneSuspected = "clone_suspected"
        case deviceDecommissioned = "device_decommissioned"
        case deviceQuarantined = "device_quarantined"
        case deviceStatusInvalid = "device_status_invalid"
        case clientCertificateRequired = "client_certificate_required"
        case clientCertificateInvalid = "client_certificate_invalid"
        case certificateExpired = "certificate_expired"
        case certificateNotActive = "certificate_not_active"
        case subjectMismatch = "subject_mismatch"
        case allowlistInvalid = "allowlist_invalid"
        case allowlistConflict = "allowlist_conflict"
        case passphraseMissing = "passphrase_missing"
        case passphraseWrong = "passphrase_wrong"
        case keyFileInvalid = "key_file_invalid"
        case caNotInitialised = "ca_not_initialised"
        case caAlreadyInitialised = "ca_already_initialised"
        case configInvalid = "config_invalid"
        case policyInvalid = "policy_invalid"
        case notAuthorized = "not_authorized"
        case certificateUnknown = "certificate_unknown"
        case certificateRevoked = "certificate_revoked"
        case certificateUntrusted = "certificate_untrusted"
        case certificatePendingActivation = "certificate_pending_activation"
        case thingInactive = "thing_inactive"
        case protocolViolation = "protocol_violation"
        case caRegistrationInvalid = "ca_registration_invalid"
        case provisioningTemplateInvalid = "provisioning_template_invalid"
        case provisioningFailed = "provisioning_failed"
        case credentialInvalid = "credential_invalid"
        case tenantInvalid = "tenant_invalid"
        case vendorInvalid = "vendor_invalid"
        case manifestInvalid = "manifest_invalid"
        case manifestSignatureInvalid = "manifest_signature_invalid"
        case attestationChainInvalid = "attestation_chain_invalid"
        case ownershipConflict = "ownership_conflict"
        case counterfeitOEM = "counterfeit_oem"
        case quotaExceeded = "quota_exceeded"
        case batchInvalid = "batch_invalid"
        case productInvalid = "product_invalid"
        case productExists = "product_exists"
        case notFound = "not_found"
        case logInconsistent = "log_inconsistent"
        case firmwareImageInvalid = "firmware_image_invalid"
        case firmwareSignatureInvalid = "firmware_signature_invalid"
        case firmwareSignerUnknown = "firmware_signer_unknown"
        case firmwareNotForDevice = "firmware_not_for_device"
        case firmwareRollback = "firmware_rollback"
        case firmwareDowngrade = "firmware_downgrade"
        case firmwareWrongProduct = "firmware_wrong_product"
        case firmwareKeyMissing = "firmware_key_missing"
        case firmwareKeyExists = "firmware_key_exists"
        case firmwareReleaseExists = "firmware_release_exists"
        case jobInvalid = "job_invalid"
        case jobExists = "job_exists"
        case jobStateInvalid = "job_state_invalid"
        case claimInvalid = "claim_invalid"
        case claimExpired = "claim_expired"
        case claimExhausted = "claim_exhausted"
        case ownershipTokenInvalid = "ownership_token_invalid"
        case deviceAlreadyEnrolled = "device_already_enrolled"
        case provisioningDenied = "provisioning_denied"
        case provisioningRequestInvalid = "provisioning_request_invalid"
        case provisioningTemplateExists = "provisioning_template_exists"
        case serverKeysNotAllowed = "server_keys_not_allowed"
        case reportInvalid = "report_invalid"
        case reportSignatureInvalid = "report_signature_invalid"
        case reportSignatureRequired = "report_signature_required"
        case reportReplayed = "report_replayed"
        case reportThrottled = "report_throttled"
        case securityProfileInvalid = "security_profile_invalid"
        case securityProfileExists = "security_profile_exists"
        case internalError = "internal_error"
        case storageUnavailable = "storage_unavailable"
        }
    }

    /// The kinds of refusal and failure.
    public enum Kind: Sendable, Hashable {
        /// The request itself is malformed or not acceptable as sent (HTTP 400).
        case invalid
        /// The body is not of a type the endpoint takes (HTTP 415).
        case unsupportedMediaType
        /// The body is larger than the endpoint takes (HTTP 413).
        case tooLarge
        /// No valid credential (HTTP 401).
        case unauthenticated
        /// Well-formed, but a security decision says no (HTTP 403).
        case refused
        /// The request conflicts with what another owner or an earlier request holds (HTTP 409).
        case conflict
        /// Nothing of that name, or not the caller's to see (HTTP 404).
        case notFound
        /// The server's own setup (CA files, passphrase) is wrong: an operator's problem (HTTP 500).
        case serverSetup
        /// The server cannot do it now, but may in a moment: its storage is full or failing (HTTP 503,
        /// with Retry-After).
        case unavailable
        /// The server failed (HTTP 500).
        case `internal`
    }

    /// The stable code.
    public let code: Code
    /// What was wrong, in one sentence.
    public let reason: String
    /// What to do about it, in one sentence.
    public let remedy: String
    /// The error behind an `internal_error`, for the logs' debug description only.
    public let underlying: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ reason: String, remedy: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.reason = reason
        self.remedy = remedy
        self.underlying = underlying
    }

    public var description: String { "\(code): \(reason) \(remedy)" }
    public var debugDescription: String { description + (underlying.map { " (underlying: \(String(reflecting: $0)))" } ?? "") }

    public static func == (lhs: HallmarkError, rhs: HallmarkError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension HallmarkError.Code {
    // Enrollment request shape
    public static let unsupportedMediaType = Self(.unsupportedMediaType)
    public static let bodyTooLarge = Self(.bodyTooLarge)
    public static let bodyEncodingInvalid = Self(.bodyEncodingInvalid)
    public static let csrMalformed = Self(.csrMalformed)
    public static let csrSignatureInvalid = Self(.csrSignatureInvalid)
    public static let udidMissing = Self(.udidMissing)
    public static let udidInvalid = Self(.udidInvalid)
    public static let keyAlgorithmNotAllowed = Self(.keyAlgorithmNotAllowed)
    // Enrollment authorisation
    public static let unknownDevice = Self(.unknownDevice)
    public static let keyMismatch = Self(.keyMismatch)
    public static let cloneSuspected = Self(.cloneSuspected)
    public static let deviceDecommissioned = Self(.deviceDecommissioned)
    public static let deviceStatusInvalid = Self(.deviceStatusInvalid)
    public static let logInconsistent = Self(.logInconsistent)
    public static let deviceQuarantined = Self(.deviceQuarantined)
    // Re-enrollment
    public static let clientCertificateRequired = Self(.clientCertificateRequired)
    public static let clientCertificateInvalid = Self(.clientCertificateInvalid)
    public static let certificateExpired = Self(.certificateExpired)
    public static let certificateNotActive = Self(.certificateNotActive)
    public static let subjectMismatch = Self(.subjectMismatch)
    // Allowlist
    public static let allowlistInvalid = Self(.allowlistInvalid)
    public static let allowlistConflict = Self(.allowlistConflict)
    // Certificate authority and keys
    public static let passphraseMissing = Self(.passphraseMissing)
    public static let passphraseWrong = Self(.passphraseWrong)
    public static let keyFileInvalid = Self(.keyFileInvalid)
    public static let caNotInitialised = Self(.caNotInitialised)
    public static let caAlreadyInitialised = Self(.caAlreadyInitialised)
    // Configuration
    public static let configInvalid = Self(.configInvalid)
    // Broker: connection, authorisation, certificates
    public static let policyInvalid = Self(.policyInvalid)
    public static let notAuthorized = Self(.notAuthorized)
    public static let certificateUnknown = Self(.certificateUnknown)
    public static let certificateRevoked = Self(.certificateRevoked)
    public static let certificateUntrusted = Self(.certificateUntrusted)
    public static let certificatePendingActivation = Self(.certificatePendingActivation)
    public static let thingInactive = Self(.thingInactive)
    public static let protocolViolation = Self(.protocolViolation)
    public static let caRegistrationInvalid = Self(.caRegistrationInvalid)
    public static let provisioningTemplateInvalid = Self(.provisioningTemplateInvalid)
    public static let provisioningFailed = Self(.provisioningFailed)
    // Tenants, manufacturers, ownership, production
    public static let credentialInvalid = Self(.credentialInvalid)
    public static let tenantInvalid = Self(.tenantInvalid)
    public static let vendorInvalid = Self(.vendorInvalid)
    public static let manifestInvalid = Self(.manifestInvalid)
    public static let manifestSignatureInvalid = Self(.manifestSignatureInvalid)
    public static let attestationChainInvalid = Self(.attestationChainInvalid)
    public static let ownershipConflict = Self(.ownershipConflict)
    public static let counterfeitOEM = Self(.counterfeitOEM)
    public static let quotaExceeded = Self(.quotaExceeded)
    public static let batchInvalid = Self(.batchInvalid)
    public static let productInvalid = Self(.productInvalid)
    public static let productExists = Self(.productExists)
    // Firmware
    public static let firmwareImageInvalid = Self(.firmwareImageInvalid)
    public static let firmwareSignatureInvalid = Self(.firmwareSignatureInvalid)
    public static let firmwareSignerUnknown = Self(.firmwareSignerUnknown)
    public static let firmwareNotForDevice = Self(.firmwareNotForDevice)
    public static let firmwareRollback = Self(.firmwareRollback)
    public static let firmwareDowngrade = Self(.firmwareDowngrade)
    public static let firmwareWrongProduct = Self(.firmwareWrongProduct)
    public static let firmwareKeyMissing = Self(.firmwareKeyMissing)
    public static let firmwareKeyExists = Self(.firmwareKeyExists)
    public static let firmwareReleaseExists = Self(.firmwareReleaseExists)
    // Jobs
    public static let jobInvalid = Self(.jobInvalid)
    public static let jobExists = Self(.jobExists)
    public static let jobStateInvalid = Self(.jobStateInvalid)
    public static let claimInvalid = Self(.claimInvalid)
    public static let claimExpired = Self(.claimExpired)
    public static let claimExhausted = Self(.claimExhausted)
    public static let ownershipTokenInvalid = Self(.ownershipTokenInvalid)
    public static let deviceAlreadyEnrolled = Self(.deviceAlreadyEnrolled)
    public static let provisioningDenied = Self(.provisioningDenied)
    public static let provisioningRequestInvalid = Self(.provisioningRequestInvalid)
    public static let provisioningTemplateExists = Self(.provisioningTemplateExists)
    public static let serverKeysNotAllowed = Self(.serverKeysNotAllowed)
    // Device Defender
    public static let reportInvalid = Self(.reportInvalid)
    public static let reportSignatureInvalid = Self(.reportSignatureInvalid)
    public static let reportSignatureRequired = Self(.reportSignatureRequired)
    public static let reportReplayed = Self(.reportReplayed)
    public static let reportThrottled = Self(.reportThrottled)
    public static let securityProfileInvalid = Self(.securityProfileInvalid)
    public static let securityProfileExists = Self(.securityProfileExists)
    // Generic
    public static let notFound = Self(.notFound)
    public static let internalError = Self(.internalError)
    public static let storageUnavailable = Self(.storageUnavailable)
}
