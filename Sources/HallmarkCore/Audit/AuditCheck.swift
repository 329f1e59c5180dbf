import Foundation

/// One finding of an audit of the fleet's configuration, in AWS IoT Device Defender Audit's terms:
/// the check's name, its severity, the resource that does not comply and why (AWS's
/// `reasonForNonComplianceCode`), with what to do about it.
public struct AuditFinding: Sendable, Hashable, Codable {
    public enum Severity: String, Sendable, Codable, Comparable, CaseIterable {
        case critical = "CRITICAL", high = "HIGH", medium = "MEDIUM", low = "LOW"

        var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    }

    public var checkName: String
    public var severity: Severity
    public var tenant: String
    /// AWS's resource types: `DEVICE_CERTIFICATE`, `CA_CERTIFICATE`, `IOT_POLICY`, `CLIENT_ID`, `ACCOUNT_SETTINGS`.
    public var resourceType: String
    public var resourceIdentifier: String
    public var reasonForNonComplianceCode: String
    public var reasonForNonCompliance: String
    public var mitigation: String
    public var suppressed = false

    public init(
        _ check: AuditCheck, tenant: String, resourceType: String, resourceIdentifier: String, reasonCode: String, reason: String, mitigation: String
    ) {
        checkName = check.rawValue
        severity = check.severity
        self.tenant = tenant
        self.resourceType = resourceType
        self.resourceIdentifier = resourceIdentifier
        reasonForNonComplianceCode = reasonCode
        reasonForNonCompliance = reason
        self.mitigation = mitigation
    }
}

/// The checks Hallmark runs, by AWS's check ids (those whose resources Hallmark has; AWS's Cognito
/// and role-alias checks concern AWS resources Hallmark has none of).
public enum AuditCheck: String, Sendable, CaseIterable {
    case deviceCertificateShared = "DEVICE_CERTIFICATE_SHARED_CHECK"
    case conflictingClientIDs = "CONFLICTING_CLIENT_IDS_CHECK"
    case deviceCertificateKeyQuality = "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"
    case caCertificateKeyQuality = "CA_CERTIFICATE_KEY_QUALITY_CHECK"
    case policyOverlyPermissive = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"
    case policyMisconfiguration = "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"
    case deviceCertificateExpiring = "DEVICE_CERTIFICATE_EXPIRING_CHECK"
    case caCertificateExpiring = "CA_CERTIFICATE_EXPIRING_CHECK"
    case deviceCertificateAge = "DEVICE_CERTIFICATE_AGE_CHECK"
    case intermediateCARevoked = "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK"
    case loggingDisabled = "LOGGING_DISABLED_CHECK"

    public var severity: AuditFinding.Severity {
        switch self {
        case .deviceCertificateShared, .deviceCertificateKeyQuality, .caCertificateKeyQuality, .policyOverlyPermissive, .intermediateCARevoked: .critical
        case .conflictingClientIDs: .high
        case .policyMisconfiguration, .deviceCertificateExpiring, .caCertificateExpiring: .medium
        case .deviceCertificateAge, .loggingDisabled: .low
        }
    }
}
