import Foundation

/// An authorisation policy in AWS IoT policy syntax: Allow and Deny statements over the actions
/// `iot:Connect`, `iot:Publish`, `iot:Subscribe` and `iot:Receive`, with resources
/// `…:client/ID`, `…:topic/NAME` and `…:topicfilter/FILTER` (`*` and `?` are wildcards, MQTT's `+`
/// and `#` are plain characters), and variables filled from the connection.
///
/// Evaluation: an explicit Deny wins, then an Allow; nothing is allowed by default.
public struct Policy: Sendable, Hashable {
    public enum Action: String, Sendable, CaseIterable {
        case connect = "iot:Connect"
        case publish = "iot:Publish"
        case subscribe = "iot:Subscribe"
        case receive = "iot:Receive"

        /// The resource type this action names.
        var resourceType: String {
            switch self {
            case .connect: "client"
            case .publish, .receive: "topic"
            case .subscribe: "topicfilter"
            }
        }
    }

    public enum Effect: String, Sendable { case allow = "Allow", deny = "Deny" }

    public struct Statement: Sendable, Hashable {
        public var effect: Effect
        public var actions: Set<String>
        public var resources: [String]
    }

    public var statements: [Statement]

    /// Parses a policy document. Anything Hallmark would not enforce as written (conditions,
    /// NotAction, unknown actions) is refused rather than ignored.
    public init(document: String) throws(HallmarkError) {
        func invalid(_ why: String) -> HallmarkError {
            HallmarkError(.policyInvalid, "The policy document is not valid: \(why).",
                          remedy: "Write it in AWS IoT policy syntax: {\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\", \"Action\", \"Resource\"}]}.")
        }
        guard let data = document.data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data),
              let root = json as? [String: Any]
        else { throw invalid("not a JSON object") }
        let rawStatements: [Any]
        if let list = root["Statement"] as? [Any] {
            rawStatements = list
        } else if let one = root["Statement"] as? [String: Any] {
            rawStatements = [one]
        } else {
            throw invalid("no Statement")
        }
        func strings(_ value: Any?, _ field: String) throws(HallmarkError) -> [String] {
            if let one = value as? String { return [one] }
            if let many = value as? [String], !many.isEmpty { return many }
            throw invalid("\(field) must be a string or a list of strings")
        }
        var statements: [Statement] = []
        for raw in rawStatements {
            guard let statement = raw as? [String: Any] else { throw invalid("a statement is not an object") }
            for key in statement.keys where !["Effect", "Action", "Resource", "Sid"].contains(key) {
                throw invalid("\(key) is not supported")
            }
            guard let effectName = statement["Effect"] as? String, let effect = Effect(rawValue: effectName) else {
                throw invalid("Effect must be Allow or Deny")
            }
            let actions = try strings(statement["Action"], "Action")
            let known = Set(Action.allCases.map(\.rawValue) + ["iot:*", "*"])
            for action in actions where !known.contains(action) {
                throw invalid("action \(action) is not one of \(Action.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            statements.append(Statement(effect: effect, actions: Set(actions), resources: try strings(statement["Resource"], "Resource")))
        }
        self.statements = statements
    }

    /// What a connection's policies are evaluated against.
    public struct Context: Sendable, Hashable {
        public var thingName: String?
        public var clientID: String
        public var certificateCommonName: String?
        public init(thingName: String?, clientID: String, certificateCommonName: String?) {
            self.thingName = thingName
            self.clientID = clientID
            self.certificateCommonName = certificateCommonName
        }

        func value(of variable: Substring) -> String? {
            switch variable {
            case "iot:Connection.Thing.ThingName": thingName
            case "iot:ClientId": clientID
            case "iot:Certificate.Subject.CommonName": certificateCommonName
            default: nil
            }
        }
    }

    public enum Decision: Sendable, Hashable {
        case allow
        /// `explicit` when a Deny statement matched; otherwise nothing allowed it.
        case deny(explicit: Bool)

        public var isAllowed: Bool { self == .allow }
    }

    /// Evaluates a set of policies (a thing's attached policies) for one action on one resource
    /// (a client id, topic name or topic filter).
    public static func evaluate(
        _ policies: [Policy], action: Action, resource: String, context: Context
    ) -> Decision {
        var allowed = false
        for policy in policies {
            for statement in policy.statements {
                guard statement.actions.contains(action.rawValue) || statement.actions.contains("iot:*")
                    || statement.actions.contains("*")
                else { continue }
                for pattern in statement.resources {
                    switch ResourcePattern.matches(pattern, type: action.resourceType, resource: resource, context: context) {
                    case .match:
                        if statement.effect == .deny { return .deny(explicit: true) }
                        allowed = true
                    case .unresolved:
                        // A variable with no value: an Allow does not apply, a Deny does.
                        if statement.effect == .deny { return .deny(explicit: true) }
                    case .noMatch:
                        break
                    }
                }
            }
        }
        return allowed ? .allow : .deny(explicit: false)
    }
}
