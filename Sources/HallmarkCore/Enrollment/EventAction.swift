/// What an event in the log decided on: a closed set, like the error codes, each declaring what a
/// recorded event of it means for the broker's live sessions. The broker's change feed reads the
/// actions whose ``liveEffect`` is not ``LiveEffect/none`` and re-checks the connections each one
/// concerns, so a write that must end sessions says so here, once, and not in the broker.
public struct EventAction: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Which live MQTT sessions an event of an action concerns.
    public enum Sessions: Sendable, Hashable {
        /// Those of the event's thing, certificate (serial) or device (UDID), in its tenant.
        case subject
        /// Every session of the event's tenant (a policy changed: any thing may hold it).
        case tenant
        /// The event's tenant's sessions on certificates of CAs it registered (a CA's status).
        case tenantsRegisteredCAs
    }

    /// What an event means for live sessions and for the broker's trust in CAs.
    public struct LiveEffect: Sendable, Hashable {
        /// The sessions to check again, if any.
        public var sessions: Sessions?
        /// Whether the CAs the broker trusts must be read again first.
        public var reloadsTrust: Bool

        public init(sessions: Sessions?, reloadsTrust: Bool) {
            self.sessions = sessions
            self.reloadsTrust = reloadsTrust
        }

        public static let none = LiveEffect(sessions: nil, reloadsTrust: false)
        static func sessions(_ scope: Sessions) -> LiveEffect { LiveEffect(sessions: scope, reloadsTrust: false) }
        static let trust = LiveEffect(sessions: nil, reloadsTrust: true)
    }

    let value: Value

    init(_ value: Value) { self.value = value }

    /// The action a stored string names; nil for a string that is none.
    public init?(rawValue: String) {
        guard let value = Value(rawValue: rawValue) else { return nil }
        self.value = value
    }

    public var rawValue: String { value.rawValue }
    public var description: String { rawValue }

    /// Every action.
    public static var all: [EventAction] { Value.allCases.map(EventAction.init) }
    /// The actions whose events the broker's change feed reads.
    public static var live: [EventAction] { all.filter { $0.liveEffect != .none } }

    /// What a recorded event of this action means for live sessions.
    public var liveEffect: LiveEffect {
        switch value {
        case .certificateStatus, .thingStatus, .deviceStatus, .policyAttachment: .sessions(.subject)
        case .policyPut: .sessions(.tenant)
        case .caStatus: LiveEffect(sessions: .tenantsRegisteredCAs, reloadsTrust: true)
        case .tenantCreate, .tenantCA: .trust
        case .alarm, .allowlistImport, .apiAuth, .audit, .batchCreate, .batchRegister, .cacerts, .certificateRegister, .deviceTransfer,
            .certificateExpiry, .enroll, .jobCreate, .jobExecution, .jobStatus, .jobsRequest, .firmwareImage, .firmwareKey, .firmwareRelease, .firmwareSigner, .manifestClaim, .manifestImport, .mqttConnect, .mqttProtocol, .mqttPublish, .mqttSession, .mqttSubscribe,
            .mqttTLS, .productUpdate, .claimCreate, .provisioningTemplate, .provisioningCertificate, .provisioningRegister, .reenroll, .revocation, .tenantCredential, .vendorRegister,
            .defenderEvent, .defenderReport, .defenderViolation, .securityProfile:
            .none
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Value(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is no event action"))
        }
        self.value = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    enum Value: String, CaseIterable, Sendable {
        case alarm
        case allowlistImport = "allowlist.import"
        case apiAuth = "api.auth"
        case audit
        case batchCreate = "batch.create"
        case batchRegister = "batch.register"
        case caStatus = "ca.status"
        case cacerts
        case certificateRegister = "certificate.register"
        case certificateExpiry = "certificate.expiry"
        case certificateStatus = "certificate.status"
        case claimCreate = "claim.create"
        case defenderEvent = "defender.event"
        case defenderReport = "defender.report"
        case defenderViolation = "defender.violation"
        case deviceStatus = "device.status"
        case deviceTransfer = "device.transfer"
        case enroll
        case jobCreate = "job.create"
        case jobExecution = "job.execution"
        case jobStatus = "job.status"
        case jobsRequest = "jobs.request"
        case firmwareImage = "firmware.image"
        case firmwareKey = "firmware.key"
        case firmwareRelease = "firmware.release"
        case firmwareSigner = "firmware.signer"
        case manifestClaim = "manifest.claim"
        case manifestImport = "manifest.import"
        case mqttConnect = "mqtt.connect"
        case mqttProtocol = "mqtt.protocol"
        case mqttPublish = "mqtt.publish"
        case mqttSession = "mqtt.session"
        case mqttSubscribe = "mqtt.subscribe"
        case mqttTLS = "mqtt.tls"
        case policyAttachment = "policy.attachment"
        case policyPut = "policy.put"
        case productUpdate = "product.update"
        case provisioningCertificate = "provisioning.certificate"
        case provisioningRegister = "provisioning.register"
        case provisioningTemplate = "provisioning.template"
        case reenroll
        case revocation
        case securityProfile = "security-profile.put"
        case tenantCA = "tenant.ca"
        case tenantCreate = "tenant.create"
        case tenantCredential = "tenant.credential"
        case thingStatus = "thing.status"
        case vendorRegister = "vendor.register"
    }
}

extension EventAction {
    public static let alarm = Self(.alarm)
    public static let allowlistImport = Self(.allowlistImport)
    public static let apiAuth = Self(.apiAuth)
    public static let audit = Self(.audit)
    public static let batchCreate = Self(.batchCreate)
    public static let batchRegister = Self(.batchRegister)
    public static let caStatus = Self(.caStatus)
    public static let cacerts = Self(.cacerts)
    public static let certificateRegister = Self(.certificateRegister)
    public static let certificateExpiry = Self(.certificateExpiry)
    public static let certificateStatus = Self(.certificateStatus)
    public static let claimCreate = Self(.claimCreate)
    public static let defenderEvent = Self(.defenderEvent)
    public static let defenderReport = Self(.defenderReport)
    public static let defenderViolation = Self(.defenderViolation)
    public static let deviceStatus = Self(.deviceStatus)
    public static let deviceTransfer = Self(.deviceTransfer)
    public static let enroll = Self(.enroll)
    public static let jobCreate = Self(.jobCreate)
    public static let jobExecution = Self(.jobExecution)
    public static let jobStatus = Self(.jobStatus)
    public static let jobsRequest = Self(.jobsRequest)
    public static let firmwareImage = Self(.firmwareImage)
    public static let firmwareKey = Self(.firmwareKey)
    public static let firmwareRelease = Self(.firmwareRelease)
    public static let firmwareSigner = Self(.firmwareSigner)
    public static let manifestClaim = Self(.manifestClaim)
    public static let manifestImport = Self(.manifestImport)
    public static let mqttConnect = Self(.mqttConnect)
    public static let mqttProtocol = Self(.mqttProtocol)
    public static let mqttPublish = Self(.mqttPublish)
    public static let mqttSession = Self(.mqttSession)
    public static let mqttSubscribe = Self(.mqttSubscribe)
    public static let mqttTLS = Self(.mqttTLS)
    public static let policyAttachment = Self(.policyAttachment)
    public static let policyPut = Self(.policyPut)
    public static let productUpdate = Self(.productUpdate)
    public static let provisioningCertificate = Self(.provisioningCertificate)
    public static let provisioningRegister = Self(.provisioningRegister)
    public static let provisioningTemplate = Self(.provisioningTemplate)
    public static let reenroll = Self(.reenroll)
    public static let revocation = Self(.revocation)
    public static let securityProfile = Self(.securityProfile)
    public static let tenantCA = Self(.tenantCA)
    public static let tenantCreate = Self(.tenantCreate)
    public static let tenantCredential = Self(.tenantCredential)
    public static let thingStatus = Self(.thingStatus)
    public static let vendorRegister = Self(.vendorRegister)
}
