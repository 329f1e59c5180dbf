import HallmarkCore
import HallmarkStore

import Foundation

/// Decides whether a verified certificate may open an MQTT session with a client id, from the
/// registry's view of the certificate, its thing and its device.
enum ConnectDecision {
    /// - Parameter peer: The verified client certificate; one signed by a tenant's own issuing CA
    ///   must belong to that tenant.
    static func decide(
        identity: ConnectionIdentity, clientID: String, peer: TrustStore.VerifiedPeer, now: Date = Date()
    ) -> Result<Authorizer, HallmarkError> {
        let serial = identity.serial
        let commonName = peer.commonName
        if let issuer = TrustStore.tenant(ofCA: peer.caID), issuer != identity.tenant {
            return .failure(HallmarkError(.certificateUntrusted, "Certificate \(serial) is signed by another tenant's issuing CA.",
                                          remedy: "Connect with the certificate your own tenant's CA issued to this device."))
        }
        switch identity.certificateStatus {
        case .active:
            break
        case .revoked:
            return .failure(HallmarkError(.certificateRevoked, "Certificate \(serial) is revoked.",
                                          remedy: "The device must enrol again; an operator decides whether it may."))
        case .pendingActivation:
            return .failure(HallmarkError(.certificatePendingActivation, "Certificate \(serial) is registered and waiting for activation.",
                                          remedy: "An operator activates it with `hallmark cert activate`."))
        case .inactive, .superseded:
            return .failure(HallmarkError(.certificateNotActive, "Certificate \(serial) is \(identity.certificateStatus.rawValue).",
                                          remedy: "Connect with the device's current certificate, or ask an operator to activate this one."))
        }
        if let claim = identity.claim {
            // A claim is no device: it gets only its provisioning topics, while it is in force.
            if let refusal = claim.refusal(now: now), refusal.code != .claimExhausted {
                return .failure(refusal)
            }
            let policy: Policy
            do {
                policy = try Policy(document: ClaimPolicy.document(template: claim.template))
            } catch {
                return .failure(error)
            }
            return .success(Authorizer(
                policies: [policy], context: Policy.Context(thingName: claim.id, clientID: clientID, certificateCommonName: commonName)))
        }
        switch identity.deviceStatus {
        case .quarantined?:
            return .failure(HallmarkError(.deviceQuarantined, "Device \(identity.udid ?? "?") is quarantined.",
                                          remedy: "An operator must release the device."))
        case .decommissioned?:
            return .failure(HallmarkError(.deviceDecommissioned, "Device \(identity.udid ?? "?") is decommissioned.",
                                          remedy: "A decommissioned device cannot connect."))
        default:
            break
        }
        guard identity.thingStatus == .active else {
            return .failure(HallmarkError(.thingInactive, "Thing \(identity.thingName) is \(identity.thingStatus?.rawValue ?? "missing").",
                                          remedy: "An operator activates it with `hallmark thing activate`."))
        }
        // A stored policy that no longer parses may have held a Deny: refuse rather than drop it.
        var policies: [Policy] = []
        for document in identity.policyDocuments {
            do {
                policies.append(try Policy(document: document))
            } catch {
                return .failure(HallmarkError(
                    .policyInvalid, "A policy attached to thing \(identity.thingName) does not parse: \(error.reason)",
                    remedy: "An operator replaces it (`hallmark policy create NAME FILE` adds a version) or detaches it."))
            }
        }
        let authorizer = Authorizer(
            policies: policies,
            context: Policy.Context(thingName: identity.thingName, clientID: clientID, certificateCommonName: commonName))
        guard authorizer.decide(.connect, clientID).isAllowed else {
            return .failure(HallmarkError(.notAuthorized, "Thing \(identity.thingName) may not connect with client id \"\(clientID)\".",
                                          remedy: "Connect with the thing's name as client id, or attach a policy that allows this one."))
        }
        return .success(authorizer)
    }
}
