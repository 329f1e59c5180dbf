import HallmarkCore
import MQTTCore
import NIOCore
import X509

import Foundation

/// The device side of AWS IoT's fleet provisioning by claim, as the AWS IoT Device SDKs do it:
/// connect with the claim certificate, subscribe to the answers, CreateCertificateFromCsr with a
/// CSR signed by the root-of-trust key, RegisterThing with the ownership token, then keep the new
/// certificate and the thing name.
public struct FleetProvisioningClient: Sendable {
    public struct Outcome: Sendable {
        public var certificate: Certificate
        public var certificateID: String
        public var thingName: String
        public var deviceConfiguration: [String: String]
    }

    /// A rejection on `…/rejected`: AWS's `errorCode` (Hallmark's code where AWS has none).
    public struct Rejected: Error, CustomStringConvertible {
        public var operation: String
        public var errorCode: String
        public var message: String
        public var description: String { "\(operation) rejected: \(errorCode): \(message)" }
    }

    public var host: String
    public var port: Int
    public var claimChain: [Certificate]
    public var claimKey: Certificate.PrivateKey
    public var template: String
    /// The client id of the claim's connection (any: the claim's policy allows any).
    public var clientID: String

    public init(host: String, port: Int, claimChain: [Certificate], claimKey: Certificate.PrivateKey, template: String, clientID: String) {
        self.host = host
        self.port = port
        self.claimChain = claimChain
        self.claimKey = claimKey
        self.template = template
        self.clientID = clientID
    }

    /// Provisions the device: its certificate for its root-of-trust key, and its thing. The
    /// template's UDID parameter is given as `parameters`' entry (e.g. `SerialNumber`).
    public func provision(_ state: DeviceState, parameters: [String: String]) async throws -> Outcome {
        let tls = try HTTPSConnection.ClientTLS(trustRoots: state.trustRoots(), identity: (claimChain, claimKey))
        let (answers, continuation) = AsyncStream.makeStream(of: PublishPacket.self)
        let client = try await MQTTClient.connect(
            host: host, port: port, tls: tls.context, serverHostname: host, clientID: clientID, version: .v5, keepAlive: 30,
            onMessage: { continuation.yield($0) })
        defer { continuation.finish() }
        var iterator = answers.makeAsyncIterator()
        let create = "$aws/certificates/create-from-csr/json"
        let register = "$aws/provisioning-templates/\(template)/provision/json"
        _ = try await client.subscribe([create + "/+", register + "/+"].map { Subscription(filter: $0, qos: .atLeastOnce) })

        let csr = try state.makeCSR().serializeAsPEM().pemString
        let created = try await ask(
            client, create, ["certificateSigningRequest": csr], operation: "CreateCertificateFromCsr", answers: &iterator, continuation: continuation)
        guard let pem = created["certificatePem"] as? String, let id = created["certificateId"] as? String,
            let token = created["certificateOwnershipToken"] as? String
        else { throw Rejected(operation: "CreateCertificateFromCsr", errorCode: "InvalidAnswer", message: "the answer lacks a field") }
        let registered = try await ask(
            client, register, ["certificateOwnershipToken": token, "parameters": parameters], operation: "RegisterThing", answers: &iterator,
            continuation: continuation)
        await client.disconnect()
        guard let thing = registered["thingName"] as? String else {
            throw Rejected(operation: "RegisterThing", errorCode: "InvalidAnswer", message: "the answer names no thing")
        }
        let certificate = try Certificate(pemEncoded: pem)
        try state.store(certificate: certificate)
        try state.store(thingName: thing)
        return Outcome(
            certificate: certificate, certificateID: id, thingName: thing,
            deviceConfiguration: registered["deviceConfiguration"] as? [String: String] ?? [:])
    }

    private func ask(
        _ client: MQTTClient, _ topic: String, _ request: [String: Any], operation: String,
        answers: inout AsyncStream<PublishPacket>.AsyncIterator, continuation: AsyncStream<PublishPacket>.Continuation
    ) async throws -> [String: Any] {
        try await client.publish(topic: topic, payload: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: request)), qos: .atLeastOnce)
        // A marker in the stream after 15 s: an answer that never comes ends the wait.
        let timeout = Task {
            try await Task.sleep(for: .seconds(15))
            continuation.yield(PublishPacket(topic: Self.timeoutMarker, payload: ByteBuffer()))
        }
        defer { timeout.cancel() }
        while let message = await answers.next(), message.topic != Self.timeoutMarker {
            guard message.topic.hasPrefix(topic + "/") else { continue }
            let object = (try? JSONSerialization.jsonObject(with: Data(message.payload.readableBytesView))) as? [String: Any] ?? [:]
            if message.topic.hasSuffix("/accepted") { return object }
            throw Rejected(operation: operation, errorCode: object["errorCode"] as? String ?? "?", message: object["errorMessage"] as? String ?? "")
        }
        throw Rejected(operation: operation, errorCode: "Timeout", message: "no answer on \(topic)/accepted or /rejected within 15 s")
    }

    static let timeoutMarker = "\u{0}timeout"
}
