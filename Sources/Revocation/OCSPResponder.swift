import X509

import Foundation

/// Answers OCSP requests for the CAs it is given, with the statuses a lookup reports: pure, with
/// the time passed in. A request that does not parse is `malformedRequest`; one about a CA not
/// among them, `unauthorized` (RFC 6960 §2.3); a serial the CA never issued, `unknown`.
public struct OCSPResponder: Sendable {
    /// One CA this responder answers for, and who signs its answers.
    public struct Issuer: Sendable {
        /// What the registry knows the CA by (its key identifier, hex).
        public let id: String
        public let certificate: Certificate
        public let signer: OCSPResponse.Signer
        let identities: [IssuerIdentity]

        public init(id: String, certificate: Certificate, signer: OCSPResponse.Signer) throws {
            self.id = id
            self.certificate = certificate
            self.signer = signer
            identities = try IssuerIdentity.HashAlgorithm.allCases.map { try IssuerIdentity(certificate, algorithm: $0) }
        }

        func answers(for identity: IssuerIdentity) -> Bool { identities.contains(identity) }
    }

    /// A certificate's status as the registry has it.
    public enum Status: Sendable, Hashable {
        case good
        case revoked(at: Date, reason: RevocationReason)
    }

    /// What the responder did, for the event log and the cache.
    public enum Outcome: Sendable, Hashable {
        case answered(issuer: String, serials: [[UInt8]], statuses: [OCSPResponse.CertificateStatus], nonce: Bool)
        case malformed(String)
        case unauthorized
        /// The answer could not be signed (answered `internalError`).
        case failed(String)
    }

    public struct Answer: Sendable {
        /// The DER to send, with `Content-Type: application/ocsp-response`.
        public var der: [UInt8]
        public var outcome: Outcome
        /// Until when the same request may be answered with the same bytes (no nonce, one CA).
        public var reusableUntil: Date?
    }

    public let issuers: [Issuer]
    /// How long an answer is good for: its `nextUpdate` is this long after its `thisUpdate`.
    public let validity: TimeInterval

    public init(issuers: [Issuer], validity: TimeInterval) {
        self.issuers = issuers
        self.validity = validity
    }

    /// The CA a request is about, if Hallmark runs it (every CertID must name the same one).
    public func issuer(of request: OCSPRequest) -> Issuer? {
        guard let first = request.certificates.first,
            let issuer = issuers.first(where: { $0.answers(for: first.issuer) }),
            request.certificates.allSatisfy({ issuer.answers(for: $0.issuer) })
        else { return nil }
        return issuer
    }

    /// Answers a DER request.
    /// - Parameter lookup: the status of a serial of the issuer, or nil if the issuer never issued it.
    public func answer(
        _ bytes: [UInt8], now: Date, lookup: (_ issuer: Issuer, _ serial: [UInt8]) throws -> Status?
    ) -> Answer {
        let request: OCSPRequest
        do {
            request = try OCSPRequest(derEncoded: bytes)
        } catch {
            let reason = (error as? OCSPRequest.Malformed)?.description ?? "\(error)"
            return Answer(der: OCSPResponse.unsuccessful(.malformedRequest), outcome: .malformed(reason), reusableUntil: nil)
        }
        return answer(request, now: now, lookup: lookup)
    }

    /// Answers a parsed request.
    public func answer(
        _ request: OCSPRequest, now: Date, lookup: (_ issuer: Issuer, _ serial: [UInt8]) throws -> Status?
    ) -> Answer {
        guard let issuer = issuer(of: request) else {
            return Answer(der: OCSPResponse.unsuccessful(.unauthorized), outcome: .unauthorized, reusableUntil: nil)
        }
        do {
            let thisUpdate = now
            var singles: [OCSPResponse.Single] = []
            for certID in request.certificates {
                let status: OCSPResponse.CertificateStatus =
                    switch try lookup(issuer, certID.serial) {
                    case .good: .good
                    case .revoked(let at, let reason): .revoked(at: at, reason: reason)
                    case nil: .unknown
                    }
                singles.append(.init(certID: certID.der, status: status, thisUpdate: thisUpdate, nextUpdate: thisUpdate + validity))
            }
            let nonce = Self.acceptableNonce(request.nonce)
            let der = try OCSPResponse.successful(singles, producedAt: now, nonce: nonce, signer: issuer.signer)
            return Answer(
                der: der,
                outcome: .answered(
                    issuer: issuer.id, serials: request.certificates.map(\.serial), statuses: singles.map(\.status), nonce: nonce != nil),
                reusableUntil: nonce == nil ? thisUpdate + validity / 2 : nil)
        } catch {
            return Answer(der: OCSPResponse.unsuccessful(.internalError), outcome: .failed("\(error)"), reusableUntil: nil)
        }
    }

    /// RFC 8954: a nonce is an OCTET STRING of 1 to 32 octets. One outside that is not echoed (the
    /// responder MAY answer without it); the client then decides.
    static func acceptableNonce(_ value: [UInt8]?) -> [UInt8]? {
        guard let value, value.count >= 3, value[0] == 0x04, Int(value[1]) == value.count - 2, (1...32).contains(value.count - 2)
        else { return nil }
        return value
    }
}
