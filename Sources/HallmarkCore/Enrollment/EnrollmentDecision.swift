import Foundation

/// What to do with an enrollment request, decided from the request and the registry's records.
public enum EnrollmentDecision: Sendable, Equatable {
    /// Issue a new certificate for the thing; `supersedes` names the certificate it replaces.
    case issue(thingName: String, supersedes: String?)
    /// The request repeats one already answered: send back this certificate, issue nothing.
    case returnExisting(serial: String)
    /// Refuse, with the reason.
    case refuse(HallmarkError)

    /// The refusal, if this is one.
    public var refusal: HallmarkError? {
        if case .refuse(let error) = self { return error }
        return nil
    }
}
