import MQTTCore
import Testing

@Suite("Topics")
struct TopicTests {
    @Test("filter validation")
    func filters() {
        for good in ["#", "+", "a/#", "a/+/c", "+/+", "/", "a//b", "$SYS/#"] { #expect(Topic.isValidFilter(good), "\(good)") }
        for bad in ["", "a#", "a/#/b", "a+", "a/b+/c", "##"] { #expect(!Topic.isValidFilter(bad), "\(bad)") }
    }

    @Test("matching, including $-topics and the parent level of #")
    func matching() {
        let cases: [(String, String, Bool)] = [
            ("a/b", "a/b", true), ("a/+", "a/b", true), ("a/+", "a/b/c", false), ("a/#", "a", true),
            ("a/#", "a/b/c", true), ("#", "a/b", true), ("+/+", "/x", true), ("+", "/x", false),
            ("#", "$SYS/x", false), ("+/x", "$SYS/x", false), ("$SYS/#", "$SYS/x", true), ("a/+/c", "a//c", true),
        ]
        var tree = SubscriptionTree<Int>()
        for (index, (filter, _, _)) in cases.enumerated() { tree.insert(filter: filter, key: "s\(index)", value: index) }
        for (index, (filter, topic, expected)) in cases.enumerated() {
            #expect(Topic.matches(filter: filter, topic: topic) == expected, "\(filter) ~ \(topic)")
            var found = false
            tree.forEachMatch(topic: topic) { key, _ in if key == "s\(index)" { found = true } }
            #expect(found == expected, "tree: \(filter) ~ \(topic)")
        }
    }

    @Test("removing subscriptions prunes the tree")
    func removal() {
        var tree = SubscriptionTree<Int>()
        tree.insert(filter: "a/b", key: "x", value: 1)
        tree.insert(filter: "a/b", key: "y", value: 2)
        let replacedIsNew = tree.insert(filter: "a/b", key: "x", value: 3)
        #expect(!replacedIsNew)
        #expect(tree.count == 2)
        let removed = tree.remove(filter: "a/b", key: "x")
        let removedAgain = tree.remove(filter: "a/b", key: "x")
        #expect(removed && !removedAgain)
        var seen: [Int] = []
        tree.forEachMatch(topic: "a/b") { _, v in seen.append(v) }
        #expect(seen == [2])
        tree.remove(filter: "a/b", key: "y")
        #expect(tree.count == 0)
    }
}
