import Foundation
@testable import HallmarkBroker
import HallmarkCore
@testable import HallmarkStore
import Testing

/// Whether a known certificate may open a session: the registry's view decides, and a policy that
/// cannot be read fails closed.
@Suite struct ConnectDecisionTests {
    static let allowOwn = """
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/${iot:Connection.Thing.ThingName}"}]}
        """
    static let peer = TrustStore.VerifiedPeer(
        fingerprint: "ab", caID: TrustStore.hallmarkCA, serial: "01", commonName: "DEV-1", notAfter: .distantFuture, der: [])

    func identity(policies: [String]) -> ConnectionIdentity {
        ConnectionIdentity(
            tenant: "default", thingName: "DEV-1", udid: "DEV-1", serial: "01", fingerprint: "ab", caID: TrustStore.hallmarkCA,
            certificateStatus: .active, thingStatus: .active, deviceStatus: .enrolled, policyDocuments: policies)
    }

    @Test func aThingItsPolicyAllowsConnects() {
        let decision = ConnectDecision.decide(identity: identity(policies: [Self.allowOwn]), clientID: "DEV-1", peer: Self.peer)
        guard case .success = decision else { Issue.record("refused: \(decision)"); return }
    }

    @Test func aStoredPolicyThatNoLongerParsesRefusesTheConnection() {
        // Beside a policy that allows it: the unreadable one may have held a Deny.
        let decision = ConnectDecision.decide(
            identity: identity(policies: [Self.allowOwn, #"{"Statement": [{"Effect": "Deny", "Action": "iot:Connect", "Resource": "*", "Condition": {}}]}"#]),
            clientID: "DEV-1", peer: Self.peer)
        guard case .failure(let error) = decision else { Issue.record("admitted with an unreadable policy"); return }
        #expect(error.code == .policyInvalid)
    }
}
