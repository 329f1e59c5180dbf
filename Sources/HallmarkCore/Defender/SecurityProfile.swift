import Foundation

/// A security profile: the behaviours expected of a product's things, in the shape of AWS IoT
/// Device Defender's `CreateSecurityProfile` (`behaviors`, each a metric, its criteria and
/// `suppressAlerts`), and what Hallmark does when one is violated (`mitigationActions`, a
/// Hallmark extension). Anything Hallmark does not evaluate is refused at creation, never ignored.
public struct SecurityProfile: Sendable, Equatable {
    public var description: String?
    public var behaviors: [Behavior]
    public var mitigations: [Mitigation]

    /// What is done, within a second, when a behaviour goes into alarm.
    public enum Mitigation: Sendable, Equatable {
        /// The device is quarantined: its sessions end, it cannot connect or enrol until released.
        case quarantineDevice
        /// The thing's active certificate is deactivated (AWS's `UPDATE_DEVICE_CERTIFICATE`).
        case deactivateCertificate
        /// The thing's active certificate is revoked (keyCompromise), for CRL and OCSP too.
        case revokeCertificate
        /// The device moves to another product of the tenant (its policies and profiles).
        case moveToProduct(String)

        public var name: String {
            switch self {
            case .quarantineDevice: "quarantine-device"
            case .deactivateCertificate: "deactivate-certificate"
            case .revokeCertificate: "revoke-certificate"
            case .moveToProduct(let product): "move-to-product:\(product)"
            }
        }
    }

    /// AWS's pattern for behaviour and metric names: `[a-zA-Z0-9:_-]{1,128}`.
    public static func isValidMetricName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.utf8.allSatisfy { ASCII.isAlphanumeric($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// AWS's rule for security profile names: `[a-zA-Z0-9:_-]{1,128}`.
    public static func isValidName(_ name: String) -> Bool { isValidMetricName(name) }

    public static let maximumBehaviors = 100

    /// Parses and checks a profile document.
    public init(json: [UInt8]) throws(HallmarkError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)), let item = CBOR(jsonObject: object) else {
            throw Self.invalid("the document is not a JSON object")
        }
        var fields = try Fields(item, "the profile", invalid: Self.invalid)
        if let text = try fields.optional("securityProfileDescription", "securityProfileDescription") {
            guard let description = text.text, description.utf8.count <= 1000 else { throw Self.invalid("securityProfileDescription must be text of at most 1000 bytes") }
            self.description = description
        } else {
            description = nil
        }
        guard case .array(let entries) = try fields.required("behaviors", "behaviors"), !entries.isEmpty, entries.count <= Self.maximumBehaviors else {
            throw Self.invalid("behaviors must be a list of 1…\(Self.maximumBehaviors) behaviours")
        }
        behaviors = []
        for entry in entries {
            let behavior = try Behavior(entry)
            guard !behaviors.contains(where: { $0.name == behavior.name }) else { throw Self.invalid("two behaviours are named \(behavior.name)") }
            behaviors.append(behavior)
        }
        mitigations = []
        if let actions = try fields.optional("mitigationActions", "mitigationActions") {
            guard case .array(let list) = actions else { throw Self.invalid("mitigationActions must be a list") }
            for action in list { mitigations.append(try Self.mitigation(action)) }
        }
        for key in ["alertTargets", "additionalMetricsToRetain", "additionalMetricsToRetainV2", "tags", "metricsExportConfig"] {
            if try fields.optional(key, key) != nil {
                throw Self.invalid("\(key) is not supported; alarms go to Hallmark's alarm topic and webhook")
            }
        }
        try fields.finish()
    }

    private static func mitigation(_ item: CBOR) throws(HallmarkError) -> Mitigation {
        var fields = try Fields(item, "a mitigation action", invalid: invalid)
        if let params = try fields.optional("updateDeviceCertificateParams", "updateDeviceCertificateParams") {
            try fields.finish()
            switch params["action"]?.text {
            case "DEACTIVATE": return .deactivateCertificate
            case "REVOKE": return .revokeCertificate
            default: throw invalid("updateDeviceCertificateParams.action must be DEACTIVATE or REVOKE")
            }
        }
        if try fields.optional("quarantineDeviceParams", "quarantineDeviceParams") != nil {
            try fields.finish()
            return .quarantineDevice
        }
        if let params = try fields.optional("moveToProductParams", "moveToProductParams") {
            try fields.finish()
            guard let product = params["product"]?.text, !product.isEmpty, product.utf8.count <= 64 else {
                throw invalid("moveToProductParams.product must name a product")
            }
            return .moveToProduct(product)
        }
        throw invalid("a mitigation action is one of updateDeviceCertificateParams, quarantineDeviceParams, moveToProductParams")
    }

    @Sendable static func invalid(_ what: String) -> HallmarkError {
        HallmarkError(
            .securityProfileInvalid, "The security profile is not one Hallmark evaluates: \(what).",
            remedy: "Write behaviours as AWS IoT Device Defender does (name, metric, criteria); see docs/defender.md.")
    }
}
