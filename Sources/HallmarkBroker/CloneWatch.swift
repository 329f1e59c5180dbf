import Synchronization
import NIOCore

/// Watches for one device identity in two places at once.
///
/// A device has one certificate and one client id. Two live connections with the same certificate
/// under different client ids, or one client id taken over back and forth (three take-overs by
/// the same certificate within 30 seconds: two devices fighting for one identity; a genuine
/// device that lost its connection reconnects far less often), mean the identity has been copied.
final class CloneWatch: Sendable {
    struct Live {
        var clientID: String
        var source: String?
    }

    /// What a new connection looks like, if it looks like a clone.
    struct Suspicion: Sendable {
        var detail: String
    }

    static let takeoverWindow: TimeAmount = .seconds(30)
    static let takeoverLimit = 3

    private struct State {
        /// Live connections by certificate fingerprint.
        var live: [String: [ObjectIdentifier: Live]] = [:]
        /// Recent take-overs by certificate fingerprint.
        var takeovers: [String: [NIODeadline]] = [:]
        /// Certificates already reported as live in two sessions: one alarm until all their
        /// sessions have closed, however many more open (a product that only raises the alarm
        /// does not end them).
        var reported: Set<String> = []
    }

    private let state = Mutex(State())

    /// Records a connection that has been admitted; returns a suspicion if the identity is
    /// already live elsewhere under another client id, or keeps being taken over.
    func connected(
        fingerprint: String, connection: ObjectIdentifier, clientID: String, source: String?, tookOver: Bool,
        now: NIODeadline = .now()
    ) -> Suspicion? {
        state.withLock { state in
            let other = state.live[fingerprint]?.first { $0.key != connection && $0.value.clientID != clientID }?.value
            state.live[fingerprint, default: [:]][connection] = Live(clientID: clientID, source: source)
            if let other {
                guard state.reported.insert(fingerprint).inserted else { return nil }
                return Suspicion(
                    detail: "one certificate in two live sessions: client id \(clientID) from \(source ?? "?") while client id \(other.clientID) from \(other.source ?? "?") is connected")
            }
            guard tookOver else { return nil }
            var recent = state.takeovers[fingerprint, default: []].filter { now - $0 < Self.takeoverWindow }
            recent.append(now)
            state.takeovers[fingerprint] = recent
            guard recent.count >= Self.takeoverLimit else { return nil }
            state.takeovers[fingerprint] = []
            return Suspicion(
                detail: "client id \(clientID) taken over \(recent.count) times in 30 s by the same certificate: two devices share one identity")
        }
    }

    /// Forgets a connection that has closed.
    func disconnected(fingerprint: String, connection: ObjectIdentifier) {
        state.withLock { state in
            state.live[fingerprint]?[connection] = nil
            // Two boards fighting over one identity always leave one connected; once none is, the
            // identity's take-over count starts afresh (and the map does not grow without bound).
            if state.live[fingerprint]?.isEmpty == true {
                state.live[fingerprint] = nil
                state.takeovers[fingerprint] = nil
                state.reported.remove(fingerprint)
            }
        }
    }
}
