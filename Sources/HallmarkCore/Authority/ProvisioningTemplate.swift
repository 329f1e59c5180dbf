import SwiftASN1
import X509

import Foundation

/// What just-in-time provisioning does with the first certificate of a registered CA: the product
/// the thing joins, how the thing is named from the certificate, and the policy attached.
///
/// ```json
/// {"product": "thermo", "thingName": "oem-${iot:Certificate.Subject.CommonName}", "policy": "thermo-policy"}
/// ```
/// `thingName` may use `${iot:Certificate.Subject.CommonName}`, `${iot:Certificate.Subject.SerialNumber}`,
/// `${iot:Certificate.Subject.Organization}` and `${iot:Certificate.SerialNumber}` (hex). Without
/// `policy`, the product's default policy is attached.
public struct ProvisioningTemplate: Codable, Sendable, Hashable {
    public var product: String
    public var thingName: String
    public var policy: String?

    public init(product: String, thingName: String, policy: String? = nil) {
        self.product = product
        self.thingName = thingName
        self.policy = policy
    }

    /// Parses and checks a template document.
    public init(json: Data) throws(HallmarkError) {
        let decoded: ProvisioningTemplate
        do {
            decoded = try JSONDecoder().decode(ProvisioningTemplate.self, from: json)
        } catch {
            throw HallmarkError(
                .provisioningTemplateInvalid, "The provisioning template is not a JSON object with product, thingName and optional policy.",
                remedy: #"Write it as {"product": "…", "thingName": "${iot:Certificate.Subject.CommonName}", "policy": "…"}."#)
        }
        self = decoded
        var rest = Substring(thingName)
        while let start = rest.range(of: "${") {
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw HallmarkError(.provisioningTemplateInvalid, "The thingName pattern has an unclosed ${.", remedy: "Close each variable with }.")
            }
            let variable = rest[start.upperBound..<end]
            guard Self.variables.keys.contains(String(variable)) else {
                throw HallmarkError(
                    .provisioningTemplateInvalid, "The thingName pattern uses the unknown variable ${\(variable)}.",
                    remedy: "Use one of: \(Self.variables.keys.sorted().map { "${\($0)}" }.joined(separator: ", ")).")
            }
            rest = rest[rest.index(after: end)...]
        }
        let literal = thingName.replacingOccurrences(of: #"\$\{[^}]*\}"#, with: "", options: .regularExpression)
        guard literal.allSatisfy(ThingName.isAllowed) else {
            throw HallmarkError(.provisioningTemplateInvalid, "The thingName pattern has characters a thing name may not use.",
                                remedy: "Thing names use letters, digits, ':', '_' and '-'.")
        }
    }

    private static let variables: [String: @Sendable (Certificate) -> String?] = [
        "iot:Certificate.Subject.CommonName": { $0.subject.commonName },
        "iot:Certificate.Subject.SerialNumber": { $0.subject.attributeValue(EnrollmentRequest.serialNumberAttribute) },
        "iot:Certificate.Subject.Organization": { $0.subject.attributeValue(.RDNAttributeType.organizationName) },
        "iot:Certificate.SerialNumber": { Array($0.serialNumber.bytes).hexString },
    ]

    /// The thing name for a device certificate.
    /// - Throws: `provisioning_failed` when a variable has no value or the result is not a thing name.
    public func thingName(for certificate: Certificate) throws(HallmarkError) -> String {
        var name = ""
        var rest = Substring(thingName)
        while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            name += rest[..<start.lowerBound]
            let variable = String(rest[start.upperBound..<end])
            guard let value = Self.variables[variable]?(certificate), !value.isEmpty else {
                throw HallmarkError(.provisioningFailed, "The certificate has no value for ${\(variable)} in the thing-name pattern.",
                                    remedy: "Issue device certificates with that subject field, or change the CA's template.")
            }
            name += value
            rest = rest[rest.index(after: end)...]
        }
        name += rest
        guard ThingName.isValid(name) else {
            throw HallmarkError(.provisioningFailed, "The template makes \"\(name.prefix(140))\", which is not a valid thing name.",
                                remedy: "Thing names are 1-128 letters, digits, ':', '_' or '-'; adjust the certificate fields or the template.")
        }
        return name
    }
}

/// The names things may have (the same rule as AWS IoT).
public enum ThingName {
    public static func isAllowed(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == ":" || character == "_" || character == "-")
    }

    public static func isValid(_ name: String) -> Bool {
        (1...128).contains(name.count) && name.allSatisfy(isAllowed)
    }
}
