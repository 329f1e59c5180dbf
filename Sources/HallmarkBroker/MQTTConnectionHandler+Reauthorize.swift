import HallmarkCore
import HallmarkStore
import MQTTCore

import Foundation

extension MQTTConnectionHandler {
    /// Decides again whether this connection may go on, after the registry changed (a certificate
    /// revoked or deactivated, a thing deactivated, a device quarantined, a policy changed). A
    /// connection no longer allowed is closed at once; one that is gets its new policies.
    /// - Parameter found: The certificate's registry record, read off the event loop after the change.
    func reauthorize(with found: Result<ConnectionIdentity?, any Error>) {
        guard state == .connected, listener == .tls, let peer = peerBox.peer, let session else { return }
        let decision: Result<Authorizer, HallmarkError>
        switch found {
        case _ where !broker.trust.trusts(caID: peer.caID):
            decision = .failure(HallmarkError(.certificateUntrusted, "The CA of certificate \(peer.serial) is no longer registered and active.",
                                              remedy: "Reactivate the CA, or move the device to a trusted CA."))
        case .success(let identity?):
            self.identity = identity
            decision = ConnectDecision.decide(identity: identity, clientID: clientID, peer: peer)
        case .success(nil):
            decision = .failure(HallmarkError(.certificateUnknown, "Certificate \(peer.serial) left the registry.", remedy: "Enrol again."))
        case .failure(let error):
            broker.logger.error("registry read failed while re-checking \(clientID): \(error)")
            return
        }
        switch decision {
        case .success(let authorizer):
            self.authorizer = authorizer
            session.replaceAuthorizer(authorizer)
        case .failure(let error):
            broker.record(AuditEvent(
                at: Date(), tenant: identity?.tenant ?? Registry.defaultTenant, action: .mqttSession, decision: .refuse,
                code: error.code.rawValue, udid: identity?.udid, thing: identity?.thingName, serial: identity?.serial,
                source: remoteAddress, detail: "live session of client id \(clientID) ended: \(error.reason)"))
            closeWithReason(.administrativeAction, "\(error.code): \(error.reason)")
        }
    }

    /// The fingerprint of the connection's verified client certificate (none on the plain listener).
    var peerFingerprint: String? { peerBox.peer?.fingerprint }

    /// Whether a registry event concerns this connection, by its action's declared scope.
    func isAffected(by event: AuditEvent) -> Bool {
        guard let identity, event.tenant == identity.tenant, let scope = event.action.liveEffect.sessions else { return false }
        switch scope {
        case .tenant:
            return true
        case .tenantsRegisteredCAs:
            return !TrustStore.isHallmark(identity.caID)
        case .subject:
            if let thing = event.thing, thing == identity.thingName { return true }
            if let serial = event.serial, serial == identity.serial { return true }
            if let udid = event.udid, udid == identity.udid { return true }
            return false
        }
    }
}
