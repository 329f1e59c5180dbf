import HallmarkCore

/// Topics no client publishes to, whatever its policy says: the broker's and Hallmark's own
/// announcements, and the shared-subscription prefix, which names no topic.
enum ReservedTopics {
    static let publishPrefixes = ["$aws/events/", "$SYS/", "$hallmark/", "$share/"]

    /// Whether a PUBLISH to `topic` is refused before any policy is asked.
    static func refusesPublish(_ topic: String) -> Bool {
        guard topic.utf8.first == UInt8(ascii: "$") else { return false }
        // Device Defender's requests, AWS's and Hallmark's signed ones, are the devices'; its
        // answers are Hallmark's.
        if DefenderTopic.isDefenderTopic(topic) { return DefenderTopic(parsing: topic) == nil }
        if publishPrefixes.contains(where: { topic.hasPrefix($0) }) { return true }
        // In the jobs API's space only requests are published by clients: its replies and
        // notifications are Hallmark's.
        if JobsTopic.isJobsTopic(topic) { return (try? JobsTopic(parsing: topic)) == nil }
        // The same for fleet provisioning: its answers are Hallmark's.
        return ProvisioningTopic.isProvisioningTopic(topic) && ProvisioningTopic(parsing: topic) == nil
    }
}
