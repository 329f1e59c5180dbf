/// Topics no client publishes to, whatever its policy says: the broker's and Hallmark's own
/// announcements, and the shared-subscription prefix, which names no topic.
enum ReservedTopics {
    static let publishPrefixes = ["$aws/events/", "$SYS/", "$hallmark/", "$share/"]

    /// Whether a PUBLISH to `topic` is refused before any policy is asked.
    static func refusesPublish(_ topic: String) -> Bool {
        topic.utf8.first == UInt8(ascii: "$") && publishPrefixes.contains { topic.hasPrefix($0) }
    }
}
