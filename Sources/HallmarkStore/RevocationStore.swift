import GRDB
import HallmarkCore
import Revocation

import Foundation

/// What the CRL publisher and the OCSP responder need of the registry: the revoked (and held)
/// certificates of an issuing CA, one certificate's status, the change feed, and the retirement
/// of old certificates.
public protocol RevocationStore: Sendable {
    /// The certificates of the CA with this key identifier that are revoked or held and not yet
    /// expired at `now`, oldest revocation first.
    func revokedCertificates(issuer: String, now: Date) throws -> [CertificateRevocationList.Entry]
    /// The status of the CA's certificate with this serial (hex), or nil if the CA never issued it.
    func revocationStatus(issuer: String, serial: String) throws -> OCSPResponder.Status?
    func latestEventID() throws -> Int64
    func events(after id: Int64, actions: [EventAction], limit: Int) throws -> [Registry.LoggedEvent]
    func append(_ event: AuditEvent) async throws
    /// Revokes (superseded) what these serials replaced: the devices use their new certificates.
    func retireSuperseded(replacedBy serials: [String], now: Date) async throws -> Int
    /// Revokes (superseded) what was replaced longer ago than the product's grace.
    func retireSupersededPastGrace(now: Date) async throws -> Int
    /// Raises `certificate_expiring` for certificates within their product's warning of expiry.
    func warnExpiring(now: Date) async throws -> Int
    /// Revokes fleet provisioning certificates nobody registered within their token's hour.
    func sweepProvisioningTokens(now: Date) async throws -> Int
}

extension Registry: RevocationStore {
    public func revokedCertificates(issuer: String, now: Date) throws -> [CertificateRevocationList.Entry] {
        try pool.read { db in
            let statement = try db.cachedStatement(
                sql: """
                    SELECT serial, status, status_changed_at, revocation_reason FROM certificates
                    WHERE issuer_key_id = ? AND status IN ('revoked', 'inactive') AND not_after > ?
                    ORDER BY status_changed_at
                    """)
            let rows = try Row.fetchCursor(statement, arguments: [issuer, now.timeIntervalSince1970])
            var entries: [CertificateRevocationList.Entry] = []
            while let row = try rows.next() {
                guard let serial = [UInt8](hexString: row[0]) else { continue }
                let status = Self.revocation(status: row[1], at: row[2], reason: row[3])
                guard case .revoked(let at, let reason) = status else { continue }
                entries.append(.init(serial: serial, revokedAt: at, reason: reason))
            }
            return entries
        }
    }

    public func revocationStatus(issuer: String, serial: String) throws -> OCSPResponder.Status? {
        try pool.read { db in
            let statement = try db.cachedStatement(
                sql: """
                    SELECT status, status_changed_at, revocation_reason FROM certificates
                    WHERE ca_id = 'hallmark' AND serial = ? AND issuer_key_id = ?
                    """)
            guard let row = try Row.fetchOne(statement, arguments: [serial, issuer]) else { return nil }
            return Self.revocation(status: row[0], at: row[1], reason: row[2])
        }
    }

    /// How a certificate's registry status reads to the outside world: a revoked certificate is
    /// revoked with its reason; one an operator set aside is on hold (certificateHold, lifted when
    /// it is activated again); every other (active, or superseded by a renewal not yet retired) is good.
    static func revocation(status: String, at: Double?, reason: Int?) -> OCSPResponder.Status {
        let since = Date(timeIntervalSince1970: at ?? 0)
        switch CertificateStatus(rawValue: status) {
        case .revoked: return .revoked(at: since, reason: reason.flatMap(RevocationReason.init(rawValue:)) ?? .unspecified)
        case .inactive: return .revoked(at: since, reason: .certificateHold)
        default: return .good
        }
    }
}
