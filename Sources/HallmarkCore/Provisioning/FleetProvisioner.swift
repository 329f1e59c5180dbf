/// Answers AWS IoT fleet provisioning requests that reach the broker. The broker carries them;
/// the signing service behind this decides and signs.
public protocol FleetProvisioner: Sendable {
    func answer(_ request: FleetProvisioningRequest) async -> FleetProvisioningAnswer
}

/// A fleet provisioning request and the connection it came over.
public struct FleetProvisioningRequest: Sendable {
    public var topic: ProvisioningTopic
    public var payload: [UInt8]
    public var tenant: String
    /// The claim the connection authenticated with; nil for a device's own certificate (refused).
    public var claimID: String?
    public var clientID: String
    public var source: String?

    public init(topic: ProvisioningTopic, payload: [UInt8], tenant: String, claimID: String?, clientID: String, source: String?) {
        self.topic = topic
        self.payload = payload
        self.tenant = tenant
        self.claimID = claimID
        self.clientID = clientID
        self.source = source
    }
}

/// The answer: its payload goes to the request topic + `/accepted` or `/rejected`.
public struct FleetProvisioningAnswer: Sendable {
    public var accepted: Bool
    public var payload: [UInt8]

    public init(accepted: Bool, payload: [UInt8]) {
        self.accepted = accepted
        self.payload = payload
    }
}
