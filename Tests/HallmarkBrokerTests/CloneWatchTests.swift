@testable import HallmarkBroker
import NIOCore
import Testing

/// The rules of clone suspicion, on their own.
@Suite struct CloneWatchTests {
    final class Connection {}

    @Test func oneCertificateUnderTwoClientIDsAtOnceIsSuspect() {
        let watch = CloneWatch()
        let a = Connection(), b = Connection()
        #expect(watch.connected(fingerprint: "f", connection: ObjectIdentifier(a), clientID: "dev", source: nil, tookOver: false) == nil)
        let suspicion = watch.connected(fingerprint: "f", connection: ObjectIdentifier(b), clientID: "other", source: "10.0.0.2:1", tookOver: false)
        #expect(suspicion?.detail.contains("two live sessions") == true)
        // A third session of the same certificate, while the first two are live, is the same episode: no second alarm.
        let c = Connection()
        #expect(watch.connected(fingerprint: "f", connection: ObjectIdentifier(c), clientID: "third", source: nil, tookOver: false) == nil)
        watch.disconnected(fingerprint: "f", connection: ObjectIdentifier(c))
        // Another certificate, or the same one after the first closed, is not.
        #expect(watch.connected(fingerprint: "g", connection: ObjectIdentifier(Connection()), clientID: "other", source: nil, tookOver: false) == nil)
        watch.disconnected(fingerprint: "f", connection: ObjectIdentifier(a))
        watch.disconnected(fingerprint: "f", connection: ObjectIdentifier(b))
        #expect(watch.connected(fingerprint: "f", connection: ObjectIdentifier(Connection()), clientID: "other", source: nil, tookOver: false) == nil)
    }

    @Test func aClientIDTakenOverAgainAndAgainIsSuspect() {
        let watch = CloneWatch()
        let start = NIODeadline.now()
        var previous = Connection()
        #expect(watch.connected(fingerprint: "f", connection: ObjectIdentifier(previous), clientID: "dev", source: nil, tookOver: false, now: start) == nil)
        var suspicions = 0
        for step in 1...3 {
            let next = Connection()
            if watch.connected(
                fingerprint: "f", connection: ObjectIdentifier(next), clientID: "dev", source: nil, tookOver: true,
                now: start + .seconds(Int64(step))) != nil
            {
                suspicions += 1
            }
            watch.disconnected(fingerprint: "f", connection: ObjectIdentifier(previous))
            previous = next
        }
        #expect(suspicions == 1)
    }

    @Test func takeOversSpreadOverTimeAreAGenuineDeviceReconnecting() {
        let watch = CloneWatch()
        let start = NIODeadline.now()
        var previous = Connection()
        _ = watch.connected(fingerprint: "f", connection: ObjectIdentifier(previous), clientID: "dev", source: nil, tookOver: false, now: start)
        for step in 1...6 {
            let next = Connection()
            #expect(
                watch.connected(
                    fingerprint: "f", connection: ObjectIdentifier(next), clientID: "dev", source: nil, tookOver: true,
                    now: start + .seconds(Int64(step * 20))) == nil)
            watch.disconnected(fingerprint: "f", connection: ObjectIdentifier(previous))
            previous = next
        }
    }
}
