import Foundation

/// An AWS IoT provisioning template document, as far as Hallmark carries it out.
///
/// Supported: `Parameters` (type `String` or `Number`, with `Default`), `Mappings`, and
/// `Resources` of type `AWS::IoT::Thing` (`ThingName`, `AttributePayload`), `AWS::IoT::Certificate`
/// (`CertificateId` as `{"Ref": "AWS::IoT::Certificate::Id"}`, `Status` `Active` or `Inactive`) and
/// `AWS::IoT::Policy` (`PolicyName`, or a literal `PolicyDocument`), with the intrinsics `Ref`,
/// `Fn::Join` and `Fn::FindInMap`; `DeviceConfiguration`, a flat map of strings. `OverrideSettings`
/// is accepted and has nothing to act on (a provisioned thing is always new). Everything else
/// (`Conditions`, `Fn::If`, thing groups and types, `Fn::Sub`, …) is refused when the template is
/// created, not when a device uses it.
public struct FleetProvisioningTemplate: Sendable {
    public struct Parameter: Sendable, Hashable {
        public var defaultValue: String?
    }

    public struct PolicyResource: Sendable, Hashable {
        /// An existing policy of the tenant, by name.
        public var name: TemplateValue?
        /// A policy document in the template itself (AWS IoT policy JSON).
        public var document: String?
    }

    public var parameters: [String: Parameter]
    public var mappings: [String: [String: [String: String]]]
    public var thingName: TemplateValue
    public var attributes: [String: TemplateValue]
    public var certificateStatus: TemplateValue
    public var policies: [PolicyResource]
    public var deviceConfiguration: [String: TemplateValue]

    /// The parameters AWS fills in from the certificate being registered.
    public static let certificateParameters = [
        "AWS::IoT::Certificate::Id", "AWS::IoT::Certificate::CommonName", "AWS::IoT::Certificate::SerialNumber",
    ]

    /// What a template makes for one device.
    public struct Outcome: Sendable, Hashable {
        public var thingName: String
        public var attributes: [String: String]
        public var certificateActive: Bool
        public var policyNames: [String]
        public var deviceConfiguration: [String: String]
    }

    /// Parses and checks a template document.
    /// - Throws: `provisioning_template_invalid`, saying what is wrong and where.
    public init(json: Data) throws(HallmarkError) {
        guard let root = try? JSONSerialization.jsonObject(with: json), let document = root as? [String: Any] else {
            throw Self.invalid("The template is not a JSON object.", remedy: "Write it as AWS IoT does: {\"Parameters\": …, \"Resources\": …}.")
        }
        let known: Set = ["AWSTemplateFormatVersion", "Description", "Parameters", "Mappings", "Resources", "DeviceConfiguration"]
        if let unknown = document.keys.sorted().first(where: { !known.contains($0) }) {
            throw Self.invalid("The template's section \(unknown) is not supported.", remedy: "Use only Parameters, Mappings, Resources and DeviceConfiguration.")
        }
        parameters = [:]
        for (name, value) in (document["Parameters"] as? [String: Any]) ?? [:] {
            guard let spec = value as? [String: Any], let type = spec["Type"] as? String, ["String", "Number"].contains(type) else {
                throw Self.invalid("Parameter \(name) has no Type String or Number.", remedy: "Declare it as {\"Type\": \"String\"}.")
            }
            let defaultValue = spec["Default"].flatMap(Self.scalar)
            if spec["Default"] != nil, defaultValue == nil {
                throw Self.invalid("Parameter \(name)'s Default is not a string or number.", remedy: "Give a plain value.")
            }
            parameters[name] = Parameter(defaultValue: defaultValue)
        }
        mappings = [:]
        for (name, value) in (document["Mappings"] as? [String: Any]) ?? [:] {
            guard let table = value as? [String: Any] else { throw Self.invalid("Mapping \(name) is not an object.", remedy: "Map keys to objects of strings.") }
            var rows: [String: [String: String]] = [:]
            for (key, row) in table {
                guard let row = row as? [String: Any] else { throw Self.invalid("Mapping \(name).\(key) is not an object.", remedy: "Map keys to objects of strings.") }
                var values: [String: String] = [:]
                for (field, value) in row {
                    guard let text = Self.scalar(value) else { throw Self.invalid("Mapping \(name).\(key).\(field) is not a string.", remedy: "Use strings.") }
                    values[field] = text
                }
                rows[key] = values
            }
            mappings[name] = rows
        }
        guard let resources = document["Resources"] as? [String: Any], !resources.isEmpty else {
            throw Self.invalid("The template has no Resources.", remedy: "Declare an AWS::IoT::Thing and an AWS::IoT::Certificate.")
        }
        var thing: (name: TemplateValue, attributes: [String: TemplateValue])?
        var status: TemplateValue?
        var policies: [PolicyResource] = []
        for (logicalName, value) in resources.sorted(by: { $0.key < $1.key }) {
            guard let resource = value as? [String: Any], let type = resource["Type"] as? String else {
                throw Self.invalid("Resource \(logicalName) has no Type.", remedy: "Give each resource a Type such as AWS::IoT::Thing.")
            }
            let unknownKey = resource.keys.sorted().first { !["Type", "Properties", "OverrideSettings"].contains($0) }
            if let unknownKey {
                throw Self.invalid("Resource \(logicalName)'s \(unknownKey) is not supported.", remedy: "Use only Type, Properties and OverrideSettings.")
            }
            let properties = resource["Properties"] as? [String: Any] ?? [:]
            func only(_ allowed: Set<String>) throws(HallmarkError) {
                if let extra = properties.keys.sorted().first(where: { !allowed.contains($0) }) {
                    throw Self.invalid("\(type) property \(extra) (resource \(logicalName)) is not supported.",
                                       remedy: "Supported: \(allowed.sorted().joined(separator: ", ")).")
                }
            }
            switch type {
            case "AWS::IoT::Thing":
                guard thing == nil else { throw Self.invalid("The template declares two things.", remedy: "Declare one AWS::IoT::Thing.") }
                try only(["ThingName", "AttributePayload"])
                guard let name = properties["ThingName"] else {
                    throw Self.invalid("The thing resource has no ThingName.", remedy: "Name it, e.g. {\"Ref\": \"SerialNumber\"}.")
                }
                var attributes: [String: TemplateValue] = [:]
                if let payload = properties["AttributePayload"] {
                    guard let payload = payload as? [String: Any] else { throw Self.invalid("AttributePayload is not an object.", remedy: "Map names to values.") }
                    for (key, value) in payload { attributes[key] = try TemplateValue(value, at: "AttributePayload.\(key)") }
                }
                thing = (try TemplateValue(name, at: "ThingName"), attributes)
            case "AWS::IoT::Certificate":
                guard status == nil else { throw Self.invalid("The template declares two certificates.", remedy: "Declare one AWS::IoT::Certificate.") }
                try only(["CertificateId", "Status"])
                guard let id = properties["CertificateId"] as? [String: Any], id.count == 1, id["Ref"] as? String == "AWS::IoT::Certificate::Id" else {
                    throw Self.invalid("The certificate resource's CertificateId is not {\"Ref\": \"AWS::IoT::Certificate::Id\"}.",
                                       remedy: "Hallmark registers the certificate the device was just given; reference it so.")
                }
                status = try properties["Status"].map { value throws(HallmarkError) in try TemplateValue(value, at: "Status") } ?? .literal("Active")
                if case .literal(let text) = status, !["Active", "Inactive"].contains(text) {
                    throw Self.invalid("The certificate Status \(text) is neither Active nor Inactive.", remedy: "Use Active or Inactive.")
                }
            case "AWS::IoT::Policy":
                try only(["PolicyName", "PolicyDocument"])
                switch (properties["PolicyName"], properties["PolicyDocument"]) {
                case (let name?, nil):
                    policies.append(PolicyResource(name: try TemplateValue(name, at: "PolicyName")))
                case (nil, let document as String):
                    do {
                        _ = try Policy(document: document)
                    } catch {
                        throw Self.invalid("The PolicyDocument of resource \(logicalName) does not parse: \(error.reason)", remedy: error.remedy)
                    }
                    policies.append(PolicyResource(document: document))
                default:
                    throw Self.invalid("Policy resource \(logicalName) needs a PolicyName or a PolicyDocument string, not both.",
                                       remedy: "Name an existing policy, or give its document as a JSON string.")
                }
            default:
                throw Self.invalid("Resource type \(type) is not supported.", remedy: "Use AWS::IoT::Thing, AWS::IoT::Certificate and AWS::IoT::Policy.")
            }
        }
        guard let thing else { throw Self.invalid("The template declares no AWS::IoT::Thing.", remedy: "Every device certificate belongs to a thing: declare one.") }
        guard let status else {
            throw Self.invalid("The template declares no AWS::IoT::Certificate.", remedy: "Declare {\"Type\": \"AWS::IoT::Certificate\", …} to activate the device's certificate.")
        }
        thingName = thing.name
        attributes = thing.attributes
        certificateStatus = status
        self.policies = policies
        deviceConfiguration = [:]
        for (key, value) in (document["DeviceConfiguration"] as? [String: Any]) ?? [:] {
            deviceConfiguration[key] = try TemplateValue(value, at: "DeviceConfiguration.\(key)")
        }
        // Every reference must name a parameter or a mapping the template declares.
        let values = [thingName, certificateStatus] + Array(attributes.values) + Array(deviceConfiguration.values) + policies.compactMap(\.name)
        for value in values {
            for reference in value.references where parameters[reference] == nil && !Self.certificateParameters.contains(reference) {
                throw Self.invalid("The template refers to \(reference), which is not among its Parameters.", remedy: "Declare it under Parameters.")
            }
            for map in value.mapNames where mappings[map] == nil {
                throw Self.invalid("Fn::FindInMap names the mapping \(map), which the template does not declare.", remedy: "Declare it under Mappings.")
            }
        }
    }

    /// What the template makes with a device's parameters (AWS's certificate parameters included).
    /// - Throws: `provisioning_failed` for a missing parameter, a mapping without the key, or a
    ///   thing name that is not one.
    public func evaluate(_ given: [String: String]) throws(HallmarkError) -> Outcome {
        var values: [String: String] = [:]
        for (name, parameter) in parameters { if let value = given[name] ?? parameter.defaultValue { values[name] = value } }
        for name in Self.certificateParameters { if let value = given[name] { values[name] = value } }
        let name = try thingName.evaluate(values, mappings: mappings)
        guard ThingName.isValid(name) else {
            throw HallmarkError(.provisioningFailed, "The template makes the thing name \"\(name.prefix(140))\", which is not one.",
                                remedy: "Thing names are 1-128 letters, digits, ':', '_' or '-'; send parameters that make one.")
        }
        var attributes: [String: String] = [:]
        for (key, value) in self.attributes { attributes[key] = try value.evaluate(values, mappings: mappings) }
        let status = try certificateStatus.evaluate(values, mappings: mappings)
        guard ["Active", "Inactive"].contains(status) else {
            throw HallmarkError(.provisioningFailed, "The template makes the certificate status \"\(status.prefix(40))\".", remedy: "It must be Active or Inactive.")
        }
        var policyNames: [String] = []
        for policy in policies { if let name = policy.name { policyNames.append(try name.evaluate(values, mappings: mappings)) } }
        var configuration: [String: String] = [:]
        for (key, value) in deviceConfiguration { configuration[key] = try value.evaluate(values, mappings: mappings) }
        return Outcome(thingName: name, attributes: attributes, certificateActive: status == "Active", policyNames: policyNames,
                       deviceConfiguration: configuration)
    }

    static func scalar(_ value: Any) -> String? {
        if let text = value as? String { return text }
        if let number = value as? NSNumber, !JobsRequest.isBoolean(number) { return number.stringValue }
        return nil
    }

    static func invalid(_ reason: String, remedy: String) -> HallmarkError {
        HallmarkError(.provisioningTemplateInvalid, reason, remedy: remedy)
    }
}

/// A value in a template: a literal, or an intrinsic function over other values.
public indirect enum TemplateValue: Sendable, Hashable {
    case literal(String)
    case ref(String)
    case join(String, [TemplateValue])
    case findInMap(String, TemplateValue, TemplateValue)

    init(_ json: Any, at path: String) throws(HallmarkError) {
        if let text = FleetProvisioningTemplate.scalar(json) {
            self = .literal(text)
            return
        }
        guard let object = json as? [String: Any], object.count == 1, let (function, argument) = object.first else {
            throw FleetProvisioningTemplate.invalid("\(path) is neither a string nor one intrinsic function.", remedy: "Use a string, Ref, Fn::Join or Fn::FindInMap.")
        }
        switch function {
        case "Ref":
            guard let name = argument as? String else { throw FleetProvisioningTemplate.invalid("\(path): Ref takes a parameter name.", remedy: "Write {\"Ref\": \"Name\"}.") }
            self = .ref(name)
        case "Fn::Join":
            guard let pair = argument as? [Any], pair.count == 2, let delimiter = pair[0] as? String, let parts = pair[1] as? [Any] else {
                throw FleetProvisioningTemplate.invalid("\(path): Fn::Join takes [delimiter, [values]].", remedy: "Write {\"Fn::Join\": [\"\", [\"prefix_\", {\"Ref\": \"Name\"}]]}.")
            }
            var values: [TemplateValue] = []
            for (index, part) in parts.enumerated() { values.append(try TemplateValue(part, at: "\(path)[\(index)]")) }
            self = .join(delimiter, values)
        case "Fn::FindInMap":
            guard let triple = argument as? [Any], triple.count == 3, let map = triple[0] as? String else {
                throw FleetProvisioningTemplate.invalid("\(path): Fn::FindInMap takes [mapping, key, field].", remedy: "Write {\"Fn::FindInMap\": [\"Table\", {\"Ref\": \"Key\"}, \"Field\"]}.")
            }
            self = .findInMap(map, try TemplateValue(triple[1], at: path), try TemplateValue(triple[2], at: path))
        default:
            throw FleetProvisioningTemplate.invalid("\(path) uses \(function), which Hallmark does not support.", remedy: "Use Ref, Fn::Join or Fn::FindInMap.")
        }
    }

    /// The parameters the value refers to.
    var references: [String] {
        switch self {
        case .literal: []
        case .ref(let name): [name]
        case .join(_, let parts): parts.flatMap(\.references)
        case .findInMap(_, let key, let field): key.references + field.references
        }
    }

    var mapNames: [String] {
        switch self {
        case .literal, .ref: []
        case .join(_, let parts): parts.flatMap(\.mapNames)
        case .findInMap(let map, let key, let field): [map] + key.mapNames + field.mapNames
        }
    }

    func evaluate(_ values: [String: String], mappings: [String: [String: [String: String]]]) throws(HallmarkError) -> String {
        switch self {
        case .literal(let text):
            return text
        case .ref(let name):
            guard let value = values[name] else {
                throw HallmarkError(.provisioningFailed, "The request gives no value for the template parameter \(name), which has no default.",
                                    remedy: "Send it in \"parameters\".")
            }
            return value
        case .join(let delimiter, let parts):
            var texts: [String] = []
            for part in parts { texts.append(try part.evaluate(values, mappings: mappings)) }
            return texts.joined(separator: delimiter)
        case .findInMap(let map, let key, let field):
            let key = try key.evaluate(values, mappings: mappings)
            let field = try field.evaluate(values, mappings: mappings)
            guard let value = mappings[map]?[key]?[field] else {
                throw HallmarkError(.provisioningFailed, "The template's mapping \(map) has no \(key.prefix(64)).\(field.prefix(64)).",
                                    remedy: "Send a parameter the mapping knows.")
            }
            return value
        }
    }
}
