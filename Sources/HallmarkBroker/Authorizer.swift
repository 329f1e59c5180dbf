import Synchronization
import HallmarkCore
import HallmarkStore

/// One connection's policies, evaluated with a small per-resource cache: a thing publishing to the
/// same topics pays for policy matching once per topic.
final class Authorizer: Sendable {
    let policies: [Policy]
    let context: Policy.Context
    private let cache = Mutex<[Key: Policy.Decision]>([:])
    private static let cacheLimit = 4096

    private struct Key: Hashable {
        var action: Policy.Action
        var resource: String
    }

    init(policies: [Policy], context: Policy.Context) {
        self.policies = policies
        self.context = context
    }

    func decide(_ action: Policy.Action, _ resource: String) -> Policy.Decision {
        let key = Key(action: action, resource: resource)
        if let known = cache.withLock({ $0[key] }) { return known }
        let decision = Policy.evaluate(policies, action: action, resource: resource, context: context)
        cache.withLock {
            if $0.count >= Self.cacheLimit { $0.removeAll(keepingCapacity: true) }
            $0[key] = decision
        }
        return decision
    }
}
