import Crypto

/// Tenant identifiers: 1–32 of `[a-z0-9-]`, starting with a letter or digit; they appear in EST
/// paths (`/.well-known/est/<tenant>/simpleenroll`) and in the event log.
public enum TenantID {
    public static func validate(_ id: String) throws(HallmarkError) -> String {
        let valid =
            (1...32).contains(id.count) && id.first != "-"
            && id.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard valid else {
            throw HallmarkError(
                .tenantInvalid, "'\(id.prefix(40))' is not a tenant id: 1–32 of a–z, 0–9 and '-', not starting with '-'.",
                remedy: "Choose a short lowercase id such as 'acme'.")
        }
        return id
    }
}
