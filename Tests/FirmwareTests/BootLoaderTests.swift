import Firmware
import HallmarkCore
import Testing

@Suite struct BootLoaderTests {
    func image(_ version: String, counter: UInt32) -> SlotImage {
        SlotImage(version: ImageVersion(parsing: version)!, securityCounter: counter, digest: version)
    }

    /// A device running a confirmed 1.0.0 (counter 1) in slot A.
    func running() throws -> BootState {
        var (state, _) = try BootLoader.install(BootState(), image("1.0.0", counter: 1), permanent: true)
        (state, _) = BootLoader.boot(state, intact: [true, true])
        #expect(state.running == 0 && state.slots[0].state == .confirmed && state.securityCounter == 1)
        return state
    }

    @Test func anUpdateBootsOnTrialAndRaisesTheCounterOnlyWhenConfirmed() throws {
        var (state, events) = try BootLoader.install(try running(), image("1.1.0", counter: 2))
        #expect(events == [.installed(slot: 1, image("1.1.0", counter: 2), permanent: false)])
        (state, events) = BootLoader.boot(state, intact: [true, true])
        #expect(state.running == 1 && state.slots[1].state == .trial && state.securityCounter == 1)
        #expect(events == [.booted(slot: 1, image("1.1.0", counter: 2), trial: true)])
        (state, events) = BootLoader.confirm(state)
        #expect(events == [.confirmed(slot: 1, image("1.1.0", counter: 2)), .counterRaised(2)])
        #expect(state.lastGood == image("1.1.0", counter: 2))
        (state, _) = BootLoader.boot(state, intact: [true, true])
        #expect(state.running == 1 && state.slots[0].state == .confirmed)  // the old image stays as the fallback
    }

    @Test func anUnconfirmedTrialIsRevertedOnTheNextReset() throws {
        var (state, _) = try BootLoader.install(try running(), image("1.1.0", counter: 2))
        (state, _) = BootLoader.boot(state, intact: [true, true], failing: true)
        var events: [BootLoader.Event]
        (state, events) = BootLoader.boot(state, intact: [true, true])
        #expect(events == [.reverted(slot: 1, image("1.1.0", counter: 2)), .booted(slot: 0, image("1.0.0", counter: 1), trial: false)])
        #expect(state.slots[1].state == .rejected && state.securityCounter == 1)
        #expect(state.lastGood == image("1.0.0", counter: 1))  // a reverted trial is never the last good image
        // The reverted image is never booted again.
        (state, events) = BootLoader.boot(state, intact: [true, true])
        #expect(state.running == 0 && events == [.booted(slot: 0, image("1.0.0", counter: 1), trial: false)])
    }

    @Test func rollbackAndDowngradeAreRefused() throws {
        var (state, _) = try BootLoader.install(try running(), image("2.0.0", counter: 5))
        (state, _) = BootLoader.boot(state, intact: [true, true])
        (state, _) = BootLoader.confirm(state)
        #expect(throws: HallmarkError(.firmwareRollback, "", remedy: "")) { try BootLoader.install(state, image("1.5.0", counter: 4)) }
        #expect(throws: HallmarkError(.firmwareDowngrade, "", remedy: "")) { try BootLoader.install(state, image("1.9.0", counter: 5)) }
        #expect(try BootLoader.install(state, image("2.0.1", counter: 5)).0.slots[0].state == .pendingTest)
        // The old confirmed 1.0.0 in slot A is below the counter now: it can no longer boot.
        var failing = state
        failing.bootCount = failing.bootLimit
        let (after, events) = BootLoader.boot(failing, intact: [true, true])
        #expect(after.running == nil && events.last == .recoveryNeeded)
    }

    @Test func repeatedFailedBootsFailOverToTheOtherSlot() throws {
        var (state, _) = try BootLoader.install(try running(), image("1.1.0", counter: 1))
        (state, _) = BootLoader.boot(state, intact: [true, true])
        (state, _) = BootLoader.confirm(state)
        var events: [BootLoader.Event] = []
        for count in 1...3 {
            (state, events) = BootLoader.boot(state, intact: [true, true], failing: true)
            #expect(events.last == .bootFailed(slot: 1, count: count))
        }
        (state, events) = BootLoader.boot(state, intact: [true, true])
        #expect(events == [.failedOver(from: 1, to: 0), .booted(slot: 0, image("1.0.0", counter: 1), trial: false)])
        #expect(state.running == 0 && state.slots[1].state == .rejected)
    }

    @Test func aTamperedSlotIsRejectedAndTheOtherBoots() throws {
        var (state, _) = try BootLoader.install(try running(), image("1.1.0", counter: 1))
        (state, _) = BootLoader.boot(state, intact: [true, true])
        (state, _) = BootLoader.confirm(state)
        var events: [BootLoader.Event]
        (state, events) = BootLoader.boot(state, intact: [true, false])
        #expect(events == [.tamperDetected(slot: 1), .booted(slot: 0, image("1.0.0", counter: 1), trial: false)])
        // Both broken: recovery from Hallmark, then the restored image boots.
        (state, events) = BootLoader.boot(state, intact: [false, false])
        #expect(events == [.tamperDetected(slot: 0), .recoveryNeeded])
        #expect(throws: HallmarkError(.firmwareRollback, "", remedy: "")) { try BootLoader.restore(state, image("0.9.0", counter: 0)) }
        (state, _) = try BootLoader.restore(state, image("1.1.0", counter: 1))
        (state, events) = BootLoader.boot(state, intact: [true, true])
        #expect(events == [.booted(slot: 0, image("1.1.0", counter: 1), trial: false)])
        #expect(state.running == 0 && state.slots[0].state == .confirmed)
    }

    @Test func aPendingImageBelowTheCounterIsRefusedAtBoot() throws {
        // Written behind the update check's back (a local tool), it still never boots.
        var state = try running()
        state.slots[1] = .init(image: image("0.5.0", counter: 0), state: .pendingTest)
        let (after, events) = BootLoader.boot(state, intact: [true, true])
        #expect(events.first == .refused(slot: 1, image("0.5.0", counter: 0), code: "firmware_rollback"))
        #expect(after.running == 0)
    }
}
