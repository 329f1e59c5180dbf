import Foundation
import HallmarkDevice
import Testing

@Suite struct RenewalScheduleTests {
    @Test func renewsAtTwoThirdsByDefault() {
        let start = Date(timeIntervalSince1970: 0)
        let due = RenewalSchedule().renewalTime(notBefore: start, notAfter: start + 300)
        #expect(due == start + 200)
    }

    @Test func backoffDoublesUpToTheCap() {
        let schedule = RenewalSchedule(initialBackoff: 2, maximumBackoff: 60)
        #expect(schedule.backoff(attempt: 1, jitter: 0) == 2)
        #expect(schedule.backoff(attempt: 3, jitter: 0) == 8)
        #expect(schedule.backoff(attempt: 10, jitter: 0) == 60)
        #expect(schedule.backoff(attempt: 10, jitter: 1) == 72)
    }
}
