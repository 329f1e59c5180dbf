/// Topic names and topic filters (MQTT 5.0 §4.7).
public enum Topic {
    /// Whether a topic filter is well-formed: `#` only as the whole last level, `+` only as a whole
    /// level, not empty.
    public static func isValidFilter(_ filter: String) -> Bool {
        guard !filter.isEmpty else { return false }
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.contains("#") && (level != "#" || index != levels.count - 1) { return false }
            if level.contains("+") && level != "+" { return false }
        }
        return true
    }

    /// Whether a topic name is well-formed for PUBLISH: not empty, no wildcard.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("+") && !name.contains("#")
    }

    /// A shared subscription's parts: `$share/{group}/{filter}` (MQTT 5.0 §4.8.2; 3.1.1 clients
    /// use the same form). Nil when `filter` is not one, or not a well-formed one: the group is
    /// not empty and holds no `/`, `+` or `#`, and the filter after it is valid.
    public static func sharedSubscription(_ filter: String) -> (group: String, filter: String)? {
        guard filter.hasPrefix("$share/") else { return nil }
        let rest = filter.dropFirst("$share/".count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let group = rest[..<slash]
        let inner = String(rest[rest.index(after: slash)...])
        guard !group.isEmpty, !group.contains("+"), !group.contains("#"), isValidFilter(inner) else { return nil }
        return (String(group), inner)
    }

    /// Whether `filter` matches `topic`. Topics starting with `$` are not matched by a filter whose
    /// first level is a wildcard (MQTT 5.0 §4.7.2).
    public static func matches(filter: String, topic: String) -> Bool {
        if topic.hasPrefix("$") && (filter.hasPrefix("+") || filter.hasPrefix("#")) { return false }
        var f = filter.split(separator: "/", omittingEmptySubsequences: false)[...]
        var t = topic.split(separator: "/", omittingEmptySubsequences: false)[...]
        while let level = f.first {
            if level == "#" { return true }
            guard let name = t.first else { return false }
            if level != "+" && level != name { return false }
            f = f.dropFirst()
            t = t.dropFirst()
        }
        return t.isEmpty
    }
}

/// Subscriptions indexed by topic filter level, so that finding the subscribers of a topic costs
/// the depth of the topic, not the number of subscriptions.
public struct SubscriptionTree<Value: Sendable>: Sendable {
    private final class Node: @unchecked Sendable {
        var children: [Substring: Node] = [:]
        var values: [String: Value] = [:]
        var isEmpty: Bool { children.isEmpty && values.isEmpty }
    }

    private var root = Node()
    public private(set) var count = 0

    public init() {}

    /// Adds or replaces the subscription of `key` (a session) to `filter`. Returns whether it was new.
    @discardableResult
    public mutating func insert(filter: String, key: String, value: Value) -> Bool {
        var node = root
        for level in filter.split(separator: "/", omittingEmptySubsequences: false) {
            if let next = node.children[level] {
                node = next
            } else {
                let next = Node()
                node.children[level] = next
                node = next
            }
        }
        let isNew = node.values.updateValue(value, forKey: key) == nil
        if isNew { count += 1 }
        return isNew
    }

    /// Removes the subscription of `key` to `filter`. Returns whether it existed.
    @discardableResult
    public mutating func remove(filter: String, key: String) -> Bool {
        var path: [(Node, Substring)] = []
        var node = root
        for level in filter.split(separator: "/", omittingEmptySubsequences: false) {
            guard let next = node.children[level] else { return false }
            path.append((node, level))
            node = next
        }
        guard node.values.removeValue(forKey: key) != nil else { return false }
        count -= 1
        // Prune empty branches.
        var child = node
        for (parent, level) in path.reversed() {
            guard child.isEmpty else { break }
            parent.children[level] = nil
            child = parent
        }
        return true
    }

    /// Calls `body` for every subscription whose filter matches `topic`.
    public func forEachMatch(topic: String, _ body: (String, Value) -> Void) {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        let dollar = topic.hasPrefix("$")
        func visit(_ node: Node, _ depth: Int) {
            if let all = node.children["#"], !(dollar && depth == 0) {
                for (key, value) in all.values { body(key, value) }
            }
            guard depth < levels.count else {
                for (key, value) in node.values { body(key, value) }
                return
            }
            if let exact = node.children[levels[depth]] { visit(exact, depth + 1) }
            if let any = node.children["+"], !(dollar && depth == 0) { visit(any, depth + 1) }
        }
        visit(root, 0)
    }
}
