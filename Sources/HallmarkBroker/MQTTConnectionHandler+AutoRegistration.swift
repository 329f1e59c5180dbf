import HallmarkCore
import HallmarkStore
import MQTTCore
import NIOCore

import Foundation

extension MQTTConnectionHandler {
    /// The first connection of a certificate signed by a registered CA: with the CA's provisioning
    /// template the thing is created and this same connection goes on (JITP); without, the
    /// certificate is registered pending activation, the registration is announced on
    /// `$aws/events/certificates/registered/<caCertificateId>`, and the connection is refused (JITR).
    func autoRegister(_ connect: ConnectPacket, assigned: String?, peer: TrustStore.VerifiedPeer) {
        guard let context else { return }
        state = .authenticating
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let registry = broker.registry
        let source = remoteAddress
        Task {
            let outcome: Result<Registry.AutoRegistration, any Error>
            do {
                outcome = .success(try await registry.autoRegister(certificateDER: peer.der, caID: peer.caID, source: source, now: Date()))
            } catch {
                outcome = .failure(error)
            }
            loop.execute { handler.value.autoRegistered(outcome, connect: connect, assigned: assigned, peer: peer) }
        }
    }

    private func autoRegistered(
        _ outcome: Result<Registry.AutoRegistration, any Error>, connect: ConnectPacket, assigned: String?, peer: TrustStore.VerifiedPeer
    ) {
        // The client may have gone while the registry worked; what was recorded stays recorded.
        guard state == .authenticating else { return }
        switch outcome {
        case .success(.provisioned(let identity)), .success(.existing(let identity)):
            admit(connect, assigned: assigned, identity: identity, peer: peer)
        case .success(.registered(let identity)):
            self.identity = identity
            announceRegistration(identity, caID: peer.caID)
            refuseConnect(.notAuthorized, HallmarkError(
                .certificatePendingActivation, "Certificate \(identity.serial) is now registered and waits for activation.",
                remedy: "Activate it with `hallmark cert activate \(identity.fingerprint)` (or from a backend subscribed to "
                    + "$aws/events/certificates/registered/\(peer.caID)), then connect again."))
        case .failure(let error as HallmarkError):
            refuseConnect(.notAuthorized, error)
        case .failure(let error):
            broker.logger.error("just-in-time registration failed: \(error)")
            refuseConnect(.serverUnavailable, HallmarkError(
                .internalError, "The certificate could not be registered.", remedy: "Try again later."))
        }
    }

    /// Publishes AWS IoT's JITR event (the same JSON fields; `awsAccountId` carries the tenant).
    private func announceRegistration(_ identity: ConnectionIdentity, caID: String) {
        let milliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        let event = CertificateRegisteredEvent(
            certificateId: identity.fingerprint, caCertificateId: caID, timestamp: milliseconds,
            certificateStatus: "PENDING_ACTIVATION", awsAccountId: identity.tenant, certificateRegistrationTimestamp: milliseconds)
        guard let json = try? JSONEncoder().encode(event) else { return }
        let message = BrokerMessage(
            topic: "$aws/events/certificates/registered/\(caID)", payload: ByteBuffer(bytes: json), qos: .atLeastOnce)
        broker.publish(message, tenant: identity.tenant)
    }
}

/// The payload AWS IoT publishes when just-in-time registration records a certificate.
struct CertificateRegisteredEvent: Codable, Sendable {
    var certificateId: String
    var caCertificateId: String
    var timestamp: Int64
    var certificateStatus: String
    var awsAccountId: String
    var certificateRegistrationTimestamp: Int64
}
