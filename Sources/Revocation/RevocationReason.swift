/// RFC 5280 CRLReason, as CRL entries and OCSP answers carry it.
public enum RevocationReason: Int, Sendable, Hashable, CaseIterable, Codable {
    case unspecified = 0
    case keyCompromise = 1
    case caCompromise = 2
    case affiliationChanged = 3
    case superseded = 4
    case cessationOfOperation = 5
    case certificateHold = 6
    case removeFromCRL = 8
    case privilegeWithdrawn = 9
    case aaCompromise = 10

    /// The name RFC 5280 gives it (and `openssl crl -text` prints, capitalised its own way).
    public var name: String {
        switch self {
        case .unspecified: "unspecified"
        case .keyCompromise: "keyCompromise"
        case .caCompromise: "cACompromise"
        case .affiliationChanged: "affiliationChanged"
        case .superseded: "superseded"
        case .cessationOfOperation: "cessationOfOperation"
        case .certificateHold: "certificateHold"
        case .removeFromCRL: "removeFromCRL"
        case .privilegeWithdrawn: "privilegeWithdrawn"
        case .aaCompromise: "aACompromise"
        }
    }

    /// The reason an operator names on the command line or in the API (RFC 5280's names, any case,
    /// or their numbers); nil for anything else.
    public init?(name: String) {
        let lowered = name.lowercased()
        if let number = Int(lowered), let reason = RevocationReason(rawValue: number) {
            self = reason
            return
        }
        guard let reason = Self.allCases.first(where: { $0.name.lowercased() == lowered }) else { return nil }
        self = reason
    }
}
