import HallmarkCore
import Testing

@Suite("Policies")
struct PolicyTests {
    static let thing = Policy.Context(thingName: "thing-1", clientID: "thing-1", certificateCommonName: "thing-1")

    static let defaultPolicy = try! Policy(document: """
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
          {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*"},
          {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "topicfilter/things/${iot:ClientId}/*"}
        ]}
        """)

    @Test("variables are filled from the connection")
    func variables() {
        #expect(Policy.evaluate([Self.defaultPolicy], action: .connect, resource: "thing-1", context: Self.thing) == .allow)
        #expect(Policy.evaluate([Self.defaultPolicy], action: .connect, resource: "thing-2", context: Self.thing) == .deny(explicit: false))
        #expect(Policy.evaluate([Self.defaultPolicy], action: .publish, resource: "things/thing-1/temp", context: Self.thing) == .allow)
        #expect(Policy.evaluate([Self.defaultPolicy], action: .publish, resource: "things/thing-2/temp", context: Self.thing).isAllowed == false)
        #expect(Policy.evaluate([Self.defaultPolicy], action: .subscribe, resource: "things/thing-1/#", context: Self.thing) == .allow)
        #expect(Policy.evaluate([Self.defaultPolicy], action: .subscribe, resource: "things/+/temp", context: Self.thing).isAllowed == false)
    }

    @Test("a wildcard character in a variable's value is literal")
    func literalVariables() {
        let sneaky = Policy.Context(thingName: "*", clientID: "*", certificateCommonName: nil)
        #expect(!Policy.evaluate([Self.defaultPolicy], action: .publish, resource: "things/thing-2/temp", context: sneaky).isAllowed)
        #expect(Policy.evaluate([Self.defaultPolicy], action: .publish, resource: "things/*/temp", context: sneaky).isAllowed)
    }

    @Test("explicit deny wins over any allow; nothing is allowed by default")
    func denyWins() throws {
        let deny = try Policy(document: """
            {"Statement": {"Effect": "Deny", "Action": "iot:Publish", "Resource": "topic/things/*/firmware"}}
            """)
        let all = try Policy(document: #"{"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}"#)
        #expect(Policy.evaluate([all, deny], action: .publish, resource: "things/thing-1/firmware", context: Self.thing) == .deny(explicit: true))
        #expect(Policy.evaluate([all, deny], action: .publish, resource: "things/thing-1/temp", context: Self.thing) == .allow)
        #expect(Policy.evaluate([], action: .connect, resource: "thing-1", context: Self.thing) == .deny(explicit: false))
    }

    @Test("an unresolved variable disables an Allow and enforces a Deny")
    func unresolved() throws {
        let noCN = Policy.Context(thingName: nil, clientID: "c", certificateCommonName: nil)
        let allow = try Policy(document: #"{"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/${iot:Connection.Thing.ThingName}"}]}"#)
        #expect(!Policy.evaluate([allow], action: .connect, resource: "c", context: noCN).isAllowed)
        let all = try Policy(document: #"{"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}, {"Effect": "Deny", "Action": "iot:Connect", "Resource": "client/${iot:Certificate.Subject.CommonName}"}]}"#)
        #expect(Policy.evaluate([all], action: .connect, resource: "c", context: noCN) == .deny(explicit: true))
    }

    @Test("? matches one character; resource types do not mix")
    func patterns() throws {
        let p = try Policy(document: #"{"Statement": [{"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe"], "Resource": ["topic/a/?", "topicfilter/a/#"]}]}"#)
        #expect(Policy.evaluate([p], action: .publish, resource: "a/b", context: Self.thing).isAllowed)
        #expect(!Policy.evaluate([p], action: .publish, resource: "a/bc", context: Self.thing).isAllowed)
        #expect(Policy.evaluate([p], action: .subscribe, resource: "a/#", context: Self.thing).isAllowed)
        #expect(!Policy.evaluate([p], action: .subscribe, resource: "a/b", context: Self.thing).isAllowed)
    }

    @Test("documents Hallmark would not enforce as written are refused", arguments: [
        "not json", "{}", #"{"Statement": [{"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}]}"#,
        #"{"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": {}}]}"#,
        #"{"Statement": [{"Effect": "Allow", "NotAction": "iot:Connect", "Resource": "*"}]}"#,
        #"{"Statement": [{"Effect": "Allow", "Action": "iot:UpdateThingShadow", "Resource": "*"}]}"#,
        #"{"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}"#,
    ])
    func invalid(document: String) {
        #expect(throws: HallmarkError.self) { try Policy(document: document) }
    }
}
