import FuzzSupport
import HallmarkCore

/// An AWS IoT policy document and a resource to decide on (the input's two parts, cut at its
/// first zero byte), as `hallmark policy create` parses and the broker evaluates. A document is
/// accepted or refused with `policy_invalid`; deciding never traps; an explicit Deny wins whatever
/// the order of the policies; nothing is allowed without an Allow.
let denyAll = try! Policy(document: #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}"#)
let allowOwn = try! Policy(document: #"""
    {"Version":"2012-10-17","Statement":[
     {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
     {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*"},
     {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/things/${iot:Connection.Thing.ThingName}/*"}]}
    """#)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicy(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let (documentBytes, resourceBytes) = split(input(start, count))
    let policy: Policy
    do {
        policy = try Policy(document: String(decoding: documentBytes, as: UTF8.self))
    } catch {
        requireRefusal(error, "the policy document", codes: ["policy_invalid"])
        return 0
    }
    let resource = String(decoding: resourceBytes, as: UTF8.self)
    let contexts = [
        Policy.Context(thingName: "DEV-1", clientID: "DEV-1", certificateCommonName: "DEV-1"),
        Policy.Context(thingName: nil, clientID: resource, certificateCommonName: nil),
    ]
    let allows = policy.statements.contains { $0.effect == .allow }
    for context in contexts {
        for action in Policy.Action.allCases {
            let alone = Policy.evaluate([policy], action: action, resource: resource, context: context)
            if !allows { require(alone != .allow, "a policy with no Allow allowed \(action) on \(resource)") }
            require(Policy.evaluate([policy, denyAll], action: action, resource: resource, context: context) == .deny(explicit: true),
                    "a Deny of everything did not win over the policy for \(action) on \(resource)")
            let after = Policy.evaluate([allowOwn, policy], action: action, resource: resource, context: context)
            let before = Policy.evaluate([policy, allowOwn], action: action, resource: resource, context: context)
            require(after.isAllowed == before.isAllowed, "the order of two policies changed the decision for \(action) on \(resource)")
        }
    }
    return 0
}

/// The process's entry when the build names it `FuzzPolicy_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzPolicy_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzPolicy)
}
