import Foundation
import HallmarkCore
@testable import HallmarkBroker
import Synchronization
import Testing

/// The broker's side of Device Defender, with a stand-in monitor: a thing's reports reach the
/// monitor one at a time in the order sent, and a flood waits behind itself, bounded.
@Suite struct DefenderResponderTests {
    /// Records what it is asked, slowly.
    final class SlowMonitor: SecurityMonitor {
        let seen = Mutex<[Int64]>([])
        let inFlight = Mutex<(now: Int, most: Int)>((0, 0))

        func submit(_ submission: DefenderSubmission) async -> DefenderAnswer {
            inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            try? await Task.sleep(for: .milliseconds(2))
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
        for id in 1...100 { responder.handle(submission(id), qos: .atMostOnce, session: session) }
        try await Task.sleep(for: .milliseconds(800))
        let seen = monitor.seen.withLock { $0 }
        #expect(seen == Array(1...Int64(DefenderResponder.maximumWaiting)))  // in order; the rest refused unread
        #expect(monitor.inFlight.withLock { $0.most } == 1)
        // Once the queue has drained, the thing is heard again.
        responder.handle(submission(500), qos: .atMostOnce, session: session)
        try await Task.sleep(for: .milliseconds(100))
        #expect(monitor.seen.withLock { $0.last } == 500)
    }
}
