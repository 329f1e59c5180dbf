import Foundation

/// When a device renews its certificate, and how it backs off after failures. Pure: time is given.
public struct RenewalSchedule: Sendable, Equatable {
    /// The fraction of the certificate's lifetime after which to renew (default 2/3).
    public var fraction: Double
    /// The first retry delay after a failure; doubled each time, up to `maximumBackoff`.
    public var initialBackoff: TimeInterval
    public var maximumBackoff: TimeInterval

    public init(fraction: Double = 2.0 / 3.0, initialBackoff: TimeInterval = 2, maximumBackoff: TimeInterval = 300) {
        self.fraction = min(max(fraction, 0.05), 0.95)
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// The moment renewal becomes due for a certificate valid from `notBefore` to `notAfter`.
    public func renewalTime(notBefore: Date, notAfter: Date) -> Date {
        notBefore + notAfter.timeIntervalSince(notBefore) * fraction
    }

    /// The delay before retry number `attempt` (1-based), with up to 20% jitter from `jitter` in 0...1.
    public func backoff(attempt: Int, jitter: Double) -> TimeInterval {
        let base = min(initialBackoff * pow(2, Double(max(attempt - 1, 0))), maximumBackoff)
        return base * (1 + 0.2 * jitter)
    }
}
