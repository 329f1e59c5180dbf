import HallmarkCore
import Synchronization

import Foundation

/// Keeps a flood of refusals from growing the event log without bound: of the refusals of one
/// kind (action and code) from one source address, the first ``perMinute`` in each minute are
/// events; the rest are counted, and one event says how many when the minute is over. Alarms and
/// allowed decisions are never held back.
final class RefusalLimiter: Sendable {
    static let perMinute = 60
    static let window: TimeInterval = 60

    struct Key: Hashable {
        var tenant: String
        var action: EventAction
        var code: String
        var source: String
    }

    struct Tally {
        var windowStart: Date
        var logged = 0
        var suppressed = 0
    }

    private let tallies = Mutex<[Key: Tally]>([:])

    /// The source without its port: a flood from one host comes from many ports.
    static func host(_ source: String?) -> String {
        guard let source else { return "" }
        if source.hasPrefix("["), let end = source.firstIndex(of: "]") { return String(source[...end]) }
        if source.filter({ $0 == ":" }).count == 1, let colon = source.lastIndex(of: ":") { return String(source[..<colon]) }
        return source
    }

    /// The events to write for these: those let through, and the counts of minutes that ended.
    func admit(_ events: [AuditEvent], now: Date = Date()) -> [AuditEvent] {
        tallies.withLock { tallies in
            var out: [AuditEvent] = []
            for event in events {
                guard event.decision == .refuse else {
                    out.append(event)
                    continue
                }
                let key = Key(tenant: event.tenant, action: event.action, code: event.code, source: Self.host(event.source))
                var tally = tallies[key] ?? Tally(windowStart: now)
                if now.timeIntervalSince(tally.windowStart) >= Self.window {
                    if let summary = Self.summary(key, tally, now: now) { out.append(summary) }
                    tally = Tally(windowStart: now)
                }
                if tally.logged < Self.perMinute {
                    tally.logged += 1
                    out.append(event)
                } else {
                    tally.suppressed += 1
                }
                tallies[key] = tally
            }
            return out
        }
    }

    /// The counts of the minutes that are over (and forgets them).
    func flush(now: Date = Date()) -> [AuditEvent] {
        tallies.withLock { tallies in
            var out: [AuditEvent] = []
            for (key, tally) in tallies where now.timeIntervalSince(tally.windowStart) >= Self.window {
                if let summary = Self.summary(key, tally, now: now) { out.append(summary) }
                tallies[key] = nil
            }
            return out
        }
    }

    private static func summary(_ key: Key, _ tally: Tally, now: Date) -> AuditEvent? {
        guard tally.suppressed > 0 else { return nil }
        return AuditEvent(
            at: now, tenant: key.tenant, action: key.action, decision: .refuse, code: key.code,
            source: key.source.isEmpty ? nil : key.source,
            detail: "\(tally.suppressed) more refusal\(tally.suppressed == 1 ? "" : "s") of this kind from \(key.source.isEmpty ? "an unknown source" : key.source) in the minute from \(tally.windowStart), counted, not logged one by one")
    }
}
