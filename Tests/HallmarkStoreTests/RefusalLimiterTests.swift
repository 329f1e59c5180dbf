import Foundation
import HallmarkCore
import Testing

@testable import HallmarkStore

@Suite struct RefusalLimiterTests {
    func refusal(_ source: String, code: String = "unknown_device", at: Date = Date(timeIntervalSince1970: 1000)) -> AuditEvent {
        AuditEvent(at: at, tenant: "default", action: .enroll, decision: .refuse, code: code, source: source, detail: "x")
    }

    @Test func aFloodFromOneHostIsCountedIntoOneEvent() {
        let limiter = RefusalLimiter()
        let start = Date(timeIntervalSince1970: 1000)
        let flood = (0..<100).map { refusal("10.0.0.9:\(40000 + $0)") }
        #expect(limiter.admit(flood, now: start).count == RefusalLimiter.perMinute)
        // Other hosts, other codes and decisions that are not refusals are not held back.
        #expect(limiter.admit([refusal("10.0.0.8:1"), refusal("10.0.0.9:2", code: "key_mismatch")], now: start).count == 2)
        let allowed = AuditEvent(at: start, tenant: "default", action: .enroll, decision: .allow, code: "issued", source: "10.0.0.9:3", detail: "")
        #expect(limiter.admit(Array(repeating: allowed, count: 100), now: start).count == 100)
        #expect(limiter.flush(now: start + 30).isEmpty)
        let counts = limiter.flush(now: start + 61)
        #expect(counts.count == 1)
        #expect(counts.first?.detail.hasPrefix("40 more refusals of this kind from 10.0.0.9") == true)
        #expect(counts.first?.code == "unknown_device" && counts.first?.decision == .refuse)
    }

    @Test func theNextMinuteStartsAfreshAndCarriesTheCount() {
        let limiter = RefusalLimiter()
        let start = Date(timeIntervalSince1970: 1000)
        _ = limiter.admit((0..<61).map { _ in refusal("[::1]:5") }, now: start)
        let next = limiter.admit([refusal("[::1]:6")], now: start + 60)
        #expect(next.count == 2)
        #expect(next.first?.detail.hasPrefix("1 more refusal of this kind from [::1]") == true)
    }
}
