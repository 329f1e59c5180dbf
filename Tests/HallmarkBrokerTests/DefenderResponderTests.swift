import Foundation
import HallmarkCore
@testable import HallmarkBroker
import Synchronization
import Testing

/// The broker's side of Device Defender, with a stand-in monitor: a thing's reports reach the
/// monitor one at a time in the order sent, and a flood waits behind itself, bounded.
@Suite struct DefenderResponderTests {
    /// Records what it is asked, once its gate opens.
    final class SlowMonitor: SecurityMonitor {
        let seen = Mutex<[Int64]>([])
        let inFlight = Mutex<(now: Int, most: Int)>((0, 0))
        let open = Atomic<Bool>(false)

        func submit(_ submission: DefenderSubmission) async -> DefenderAnswer {
            inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            while !open.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
            let id = (try? DefenderReport.decode(submission.payload, format: .json))?.reportID ?? -1
            seen.withLock { $0.append(id) }
            inFlight.withLock { $0.now -= 1 }
            return DefenderAnswer(accepted: true, payload: [])
        }

        func observe(tenant: String, thing: String, _ kind: CloudObservation) {}
        func attach(_ publisher: any AlarmPublisher) {}
    }

    func submission(_ id: Int, thing: String = "t1") -> DefenderSubmission {
        let payload = #"{"header":{"report_id":\#(id),"version":"1.0"},"custom_metrics":{"x":[{"number":1}]}}"#
        return DefenderSubmission(
            topic: DefenderTopic(parsing: "$aws/things/\(thing)/defender/metrics/json")!, payload: Array(payload.utf8), tenant: "t", thing: thing,
            fingerprint: "f", source: nil)
    }

    @Test func aThingsReportsAreAnsweredInOrderAndAFloodIsBounded() async throws {
        let monitor = SlowMonitor()
        let responder = DefenderResponder(monitor: monitor)
        let session = Session(key: "k", tenant: "t", clientID: "t1", maximumQueued: 10)
        // The monitor answers nothing yet: 32 wait, the other 68 are refused unread.
        for id in 1...100 { responder.handle(submission(id), qos: .atMostOnce, session: session) }
        #expect(responder.floodRefusals.load(ordering: .relaxed) == 100 - DefenderResponder.maximumWaiting)
        monitor.open.store(true, ordering: .releasing)
        try await eventually { monitor.seen.withLock { $0.count } == DefenderResponder.maximumWaiting }
        #expect(monitor.seen.withLock { $0 } == Array(1...Int64(DefenderResponder.maximumWaiting)))  // in the order sent
        #expect(monitor.inFlight.withLock { $0.most } == 1)  // one at a time
        // Once the queue has drained, the thing is heard again.
        try await eventually { responder.pendingThings == 0 }
        responder.handle(submission(500), qos: .atMostOnce, session: session)
        try await eventually { monitor.seen.withLock { $0.last } == 500 }
        #expect(responder.floodRefusals.load(ordering: .relaxed) == 100 - DefenderResponder.maximumWaiting)
    }

    /// Waits (20 s at most, the test runner may be busy) until the condition holds.
    func eventually(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("the condition did not hold within 20 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
