/// A device's request on AWS IoT's fleet provisioning MQTT API:
/// `$aws/certificates/create-from-csr/{json|cbor}`, `$aws/certificates/create/{json|cbor}` and
/// `$aws/provisioning-templates/{template}/provision/{json|cbor}`. Replies go to the request topic
/// + `/accepted` or `/rejected`.
public struct ProvisioningTopic: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        /// CreateCertificateFromCsr: the device's own key, in a CSR.
        case createFromCSR
        /// CreateKeysAndCertificate: a key made by Hallmark (where the product allows it).
        case createKeysAndCertificate
        /// RegisterThing with the named template.
        case registerThing(template: String)
    }

    /// The payload encoding the device chose; the reply uses the same.
    public enum Format: String, Sendable, Hashable {
        case json, cbor
    }

    public var operation: Operation
    public var format: Format
    /// The request's own topic.
    public var topic: String

    static let certificatesPrefix = "$aws/certificates/"
    static let templatesPrefix = "$aws/provisioning-templates/"

    /// Whether a topic is in the fleet provisioning API's space (requests and their replies).
    public static func isProvisioningTopic(_ topic: String) -> Bool {
        topic.hasPrefix(certificatesPrefix) || topic.hasPrefix(templatesPrefix)
    }

    /// Parses a request topic; nil for anything else (a reply topic, a malformed one).
    public init?(parsing topic: String) {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        if topic.hasPrefix(Self.certificatesPrefix), parts.count == 4, let format = Format(rawValue: String(parts[3])) {
            switch parts[2] {
            case "create-from-csr": operation = .createFromCSR
            case "create": operation = .createKeysAndCertificate
            default: return nil
            }
            self.format = format
        } else if topic.hasPrefix(Self.templatesPrefix), parts.count == 5, parts[3] == "provision",
            let format = Format(rawValue: String(parts[4])), ProvisioningTemplateName.isValid(String(parts[2]))
        {
            operation = .registerThing(template: String(parts[2]))
            self.format = format
        } else {
            return nil
        }
        self.topic = topic
    }

    /// The topic of the answer.
    public func reply(accepted: Bool) -> String { topic + (accepted ? "/accepted" : "/rejected") }
}

/// AWS's rule for provisioning template names: `[0-9A-Za-z_-]{1,36}`.
public enum ProvisioningTemplateName {
    public static func isValid(_ name: String) -> Bool {
        (1...36).contains(name.utf8.count)
            && name.utf8.allSatisfy { ASCII.isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }
}
