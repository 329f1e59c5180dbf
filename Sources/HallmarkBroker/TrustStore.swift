import Synchronization
import HallmarkCore
import NIOPosix
import X509

import Foundation

/// The certificate authorities whose device certificates the broker accepts: Hallmark's shared
/// issuing CA, each tenant's own issuing CA, and the OEM CAs registered with `hallmark ca register`. A client certificate must be signed
/// directly by one of them, be within its validity, be an end-entity certificate, and allow client
/// authentication.
public final class TrustStore: Sendable {
    /// The `ca_id` of certificates Hallmark issued.
    public static let hallmarkCA = "hallmark"

    /// The prefix of a tenant's own issuing CA's id (registered CAs' ids are hex fingerprints).
    private static let tenantCAPrefix = "hallmark:"

    /// The id of a tenant's own issuing CA.
    public static func tenantCA(_ tenant: String) -> String { tenantCAPrefix + tenant }

    /// Whether a CA id names one of Hallmark's issuing CAs (shared or a tenant's).
    public static func isHallmark(_ caID: String) -> Bool { caID == hallmarkCA || caID.hasPrefix(tenantCAPrefix) }

    /// The tenant whose own issuing CA an id names, if it names one.
    public static func tenant(ofCA caID: String) -> String? {
        caID.hasPrefix(tenantCAPrefix) ? String(caID.dropFirst(tenantCAPrefix.count)) : nil
    }

    public struct Authority: Sendable {
        public var id: String
        public var certificate: Certificate
        /// The tenant whose CA it is: a tenant's own issuing CA's, a registered CA's; nil for the shared one.
        public var tenant: String?
        public init(id: String, certificate: Certificate, tenant: String? = nil) {
            self.id = id
            self.certificate = certificate
            self.tenant = tenant ?? TrustStore.tenant(ofCA: id)
        }
    }

    /// A client certificate that passed the checks.
    public struct VerifiedPeer: Sendable, Hashable {
        public var fingerprint: String
        public var caID: String
        public var serial: String
        public var commonName: String?
        public var notAfter: Date
        public var der: [UInt8]
    }

    private let state: Mutex<(authorities: [Authority], verified: [String: VerifiedPeer], reloadedAt: Date)>
    private let reload: (@Sendable () throws -> [Authority])?
    private static let cacheLimit = 200_000
    /// A certificate from an issuer not known here reloads the CAs at most this often.
    private static let reloadInterval: TimeInterval = 0.25

    /// - Parameter reload: Reads the trusted CAs afresh; called when a certificate's issuer is
    ///   unknown (a tenant or CA added a moment ago), at most four times a second.
    public init(authorities: [Authority], reload: (@Sendable () throws -> [Authority])? = nil) {
        state = Mutex((authorities, [:], Date()))
        self.reload = reload
    }

    public var authorities: [Authority] { state.withLock { $0.authorities } }

    /// Replaces the trusted CAs (a CA registered, deactivated or reactivated) and forgets every
    /// certificate checked so far.
    public func replaceAuthorities(_ authorities: [Authority]) {
        state.withLock {
            $0.authorities = authorities
            $0.verified.removeAll()
        }
    }

    /// Whether a CA is trusted now.
    public func trusts(caID: String) -> Bool {
        state.withLock { $0.authorities.contains { $0.id == caID } }
    }

    /// Checks a client certificate (DER) against the CAs known now; no I/O, for the TLS handshake
    /// on an event loop. A certificate seen before is recognised by its SHA-256 fingerprint and
    /// only its validity is checked again.
    public func verify(leafDER: [UInt8], now: Date) -> Result<VerifiedPeer, HallmarkError> {
        verify(leafDER: leafDER, now: now, reloading: false)
    }

    /// Checks a client certificate as ``verify(leafDER:now:)`` does, but first reads the CAs again
    /// (the registry: never on an event loop) if its issuer is unknown and ``reloadInterval`` has
    /// passed since the last reload: a tenant or CA added a moment ago.
    public func verifyReloadingIfUnknown(leafDER: [UInt8], now: Date) -> Result<VerifiedPeer, HallmarkError> {
        verify(leafDER: leafDER, now: now, reloading: true)
    }

    /// Whether ``verifyReloadingIfUnknown(leafDER:now:)`` would read the CAs again for this
    /// certificate: no trusted CA bears its issuer's name, and a reload is due. No I/O.
    public func wouldReload(leafDER: [UInt8], now: Date) -> Bool {
        guard reload != nil, let leaf = try? Certificate(derEncoded: leafDER) else { return false }
        return state.withLock { state in
            now.timeIntervalSince(state.reloadedAt) >= Self.reloadInterval
                && !state.authorities.contains { $0.certificate.subject == leaf.issuer }
        }
    }

    private func verify(leafDER: [UInt8], now: Date, reloading: Bool) -> Result<VerifiedPeer, HallmarkError> {
        let fingerprint = CertificateFingerprint.sha256(der: leafDER)
        if let known = state.withLock({ $0.verified[fingerprint] }) {
            guard now <= known.notAfter else { return .failure(Self.expired(known.serial)) }
            return .success(known)
        }
        let leaf: Certificate
        do {
            leaf = try Certificate(derEncoded: leafDER)
        } catch {
            return .failure(HallmarkError(.certificateUntrusted, "The client certificate is not valid DER X.509.",
                                          remedy: "Connect with the certificate Hallmark or your registered CA issued."))
        }
        let serial = leaf.serialHex
        var candidates = authorities.filter { $0.certificate.subject == leaf.issuer }
        if candidates.isEmpty, reloading, reloadIfDue(now: now) {
            candidates = authorities.filter { $0.certificate.subject == leaf.issuer }
        }
        guard let issuer = candidates.first(where: { $0.certificate.publicKey.isValidSignature(leaf.signature, for: leaf) }) else {
            return .failure(HallmarkError(
                .certificateUntrusted,
                "The client certificate \(serial) (issuer \(leaf.issuer)) is not signed by Hallmark's CA or a registered CA.",
                remedy: "Enrol the device with Hallmark, or register its CA with `hallmark ca register`."))
        }
        guard leaf.notValidBefore <= now, now <= leaf.notValidAfter else { return .failure(Self.expired(serial)) }
        guard issuer.certificate.notValidBefore <= now, now <= issuer.certificate.notValidAfter else {
            return .failure(HallmarkError(.certificateExpired, "The CA that issued certificate \(serial) is outside its validity period.",
                                          remedy: "Register the CA's renewed certificate."))
        }
        if let constraints = try? leaf.extensions.basicConstraints, case .isCertificateAuthority = constraints {
            return .failure(HallmarkError(.certificateUntrusted, "The client certificate \(serial) is a CA certificate.",
                                          remedy: "Connect with the device's own end-entity certificate."))
        }
        if let usage = try? leaf.extensions.extendedKeyUsage, !usage.contains(.clientAuth), !usage.contains(.any) {
            return .failure(HallmarkError(.certificateUntrusted, "The client certificate \(serial) is not for TLS client authentication (no clientAuth EKU).",
                                          remedy: "Issue device certificates with extendedKeyUsage clientAuth."))
        }
        if let keyUsage = try? leaf.extensions.keyUsage, !keyUsage.digitalSignature {
            return .failure(HallmarkError(.certificateUntrusted, "The client certificate \(serial) does not allow digital signatures.",
                                          remedy: "Issue device certificates with keyUsage digitalSignature."))
        }
        let commonName = leaf.subject.commonName
        let peer = VerifiedPeer(
            fingerprint: fingerprint, caID: issuer.id, serial: serial, commonName: commonName,
            notAfter: leaf.notValidAfter, der: leafDER)
        state.withLock {
            if $0.verified.count >= Self.cacheLimit { $0.verified.removeAll(keepingCapacity: true) }
            $0.verified[fingerprint] = peer
        }
        return .success(peer)
    }

    /// The tenant whose CA signed a client certificate, for recording a refusal under that tenant
    /// (an expired device certificate of a tenant's CA is that tenant's event); nil when no trusted
    /// CA signed it, or the shared one did.
    public func tenant(ofIssuerOf leafDER: [UInt8]) -> String? {
        guard let leaf = try? Certificate(derEncoded: leafDER) else { return nil }
        return authorities.first {
            $0.certificate.subject == leaf.issuer && $0.certificate.publicKey.isValidSignature(leaf.signature, for: leaf)
        }?.tenant
    }

    /// Reloads the CAs unless that was done within ``reloadInterval``.
    private func reloadIfDue(now: Date) -> Bool {
        guard let reload else { return false }
        let due = state.withLock { state in
            guard now.timeIntervalSince(state.reloadedAt) >= Self.reloadInterval else { return false }
            state.reloadedAt = now
            return true
        }
        guard due else { return false }
        assert(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a registry read on an event loop")
        guard let authorities = try? reload() else { return false }
        state.withLock { $0.authorities = authorities }
        return true
    }

    private static func expired(_ serial: String) -> HallmarkError {
        HallmarkError(.certificateExpired, "The client certificate \(serial) is outside its validity period.",
                      remedy: "Renew the certificate (EST simplereenroll) or enrol again.")
    }
}
