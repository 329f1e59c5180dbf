import HallmarkCore

/// The device's boot and update decisions, as MCUboot (with hardware rollback protection and
/// downgrade prevention) and a U-Boot-style boot counter make them: pure functions from a
/// ``BootState`` and what happened to a new state and the events to report.
public enum BootLoader {
    /// Something a boot or an update decided, to be reported to Hallmark.
    public enum Event: Sendable, Hashable {
        case installed(slot: Int, SlotImage, permanent: Bool)
        case booted(slot: Int, SlotImage, trial: Bool)
        case confirmed(slot: Int, SlotImage)
        case counterRaised(UInt32)
        /// A trial image that was never confirmed, reverted on the next reset.
        case reverted(slot: Int, SlotImage)
        /// An image refused at boot: its security counter is below the stored one, or it is a downgrade.
        case refused(slot: Int, SlotImage, code: String)
        /// A slot whose image no longer verifies (altered in flash): a tamper.
        case tamperDetected(slot: Int)
        case bootFailed(slot: Int, count: Int)
        /// The running image failed `bootLimit` times in a row; the other slot boots.
        case failedOver(from: Int, to: Int)
        /// No slot can boot: the device must fetch its last good release from Hallmark.
        case recoveryNeeded
    }

    /// A reset.
    /// - Parameters:
    ///   - intact: per slot, whether its image still verifies (digest and signature), as the
    ///     bootloader checks on every boot; a slot whose image fails is a tamper.
    ///   - failing: whether the image that boots fails (crashes before its self-test).
    public static func boot(_ state: BootState, intact: [Bool], failing: Bool = false) -> (BootState, [Event]) {
        var state = state
        var events: [Event] = []
        for index in state.slots.indices where state.slots[index].image != nil && !intact[index] && state.slots[index].state != .rejected {
            state.slots[index].state = .rejected
            events.append(.tamperDetected(slot: index))
        }
        // An unconfirmed trial image is reverted: MCUboot gives it one boot.
        if let running = state.running, state.slots[running].state == .trial, let image = state.slots[running].image {
            state.slots[running].state = .rejected
            events.append(.reverted(slot: running, image))
        }
        // Too many failed boots of the running image: fail over to the other slot, if it can boot.
        if let running = state.running, state.bootCount >= state.bootLimit, state.slots[running].state == .confirmed {
            state.slots[running].state = .rejected
            state.bootCount = 0
            if state.slots[1 - running].state == .confirmed { events.append(.failedOver(from: running, to: 1 - running)) }
        }
        var chosen: Int?
        // A pending image comes first, once it passes the rollback and downgrade checks.
        for index in state.slots.indices {
            let slot = state.slots[index]
            guard slot.state == .pendingTest || slot.state == .pendingPermanent, let image = slot.image else { continue }
            if let refusal = refusal(of: image, in: state) {
                state.slots[index].state = .rejected
                events.append(.refused(slot: index, image, code: refusal))
                continue
            }
            if slot.state == .pendingPermanent {
                state.slots[index].state = .confirmed
                state.lastGood = image
                raise(&state, to: image.securityCounter, &events)
            } else {
                state.slots[index].state = .trial
            }
            state.bootCount = 0
            chosen = index
            break
        }
        if chosen == nil {
            let preferred = [state.running, state.running.map { 1 - $0 }, 0, 1].compactMap { $0 }
            chosen = preferred.first { index in
                state.slots[index].state == .confirmed && (state.slots[index].image?.securityCounter ?? 0) >= state.securityCounter
            }
            if let chosen, let previous = state.running, previous != chosen { state.bootCount = 0 }
        }
        guard let chosen, let image = state.slots[chosen].image else {
            state.running = nil
            events.append(.recoveryNeeded)
            return (state, events)
        }
        state.running = chosen
        events.append(.booted(slot: chosen, image, trial: state.slots[chosen].state == .trial))
        if failing {
            state.bootCount += 1
            events.append(.bootFailed(slot: chosen, count: state.bootCount))
        } else if state.slots[chosen].state == .confirmed {
            state.bootCount = 0
        }
        return (state, events)
    }

    /// The self-test of a trial image passed: confirm it and raise the counter to its own.
    public static func confirm(_ state: BootState) -> (BootState, [Event]) {
        var state = state
        guard let running = state.running, state.slots[running].state == .trial, let image = state.slots[running].image else {
            return (state, [])
        }
        var events: [Event] = []
        state.slots[running].state = .confirmed
        state.lastGood = image
        state.bootCount = 0
        events.append(.confirmed(slot: running, image))
        raise(&state, to: image.securityCounter, &events)
        return (state, events)
    }

    /// Writes a verified image into the inactive slot, pending a trial boot (or permanent).
    /// - Throws: `firmware_rollback` when its security counter is below the stored one,
    ///   `firmware_downgrade` when its version is below the running image's.
    public static func install(_ state: BootState, _ image: SlotImage, permanent: Bool = false) throws(FirmwareError) -> (BootState, [Event]) {
        var state = state
        let target = state.inactive
        if let code = refusal(of: image, in: state) {
            throw code == "firmware_rollback"
                ? HallmarkError(
                    .firmwareRollback,
                    "The image's security counter \(image.securityCounter) is below the device's \(state.securityCounter): a rollback.",
                    remedy: "Install a release whose security counter is at least \(state.securityCounter).")
                : HallmarkError(
                    .firmwareDowngrade, "Version \(image.version) is older than the running \(state.runningImage?.version.description ?? "").",
                    remedy: "Install a release newer than the running one.")
        }
        state.slots[target] = .init(image: image, state: permanent ? .pendingPermanent : .pendingTest)
        return (state, [.installed(slot: target, image, permanent: permanent)])
    }

    /// Writes the last good release, fetched from Hallmark, when no slot can boot: the seed's
    /// restore from an off-board location. Only the rollback check applies (nothing runs).
    public static func restore(_ state: BootState, _ image: SlotImage) throws(FirmwareError) -> (BootState, [Event]) {
        guard image.securityCounter >= state.securityCounter else {
            throw HallmarkError(
                .firmwareRollback, "The restored image's security counter \(image.securityCounter) is below the device's \(state.securityCounter).",
                remedy: "Restore a release whose security counter is at least \(state.securityCounter).")
        }
        var state = state
        let target = state.slots[0].state == .confirmed ? 1 : 0
        state.slots[target] = .init(image: image, state: .pendingPermanent)
        state.running = nil
        return (state, [.installed(slot: target, image, permanent: true)])
    }

    private static func refusal(of image: SlotImage, in state: BootState) -> String? {
        if image.securityCounter < state.securityCounter { return "firmware_rollback" }
        if let running = state.runningImage, state.running.map({ state.slots[$0].state == .confirmed }) == true, image.version < running.version {
            return "firmware_downgrade"
        }
        return nil
    }

    private static func raise(_ state: inout BootState, to counter: UInt32, _ events: inout [Event]) {
        guard counter > state.securityCounter else { return }
        state.securityCounter = counter
        events.append(.counterRaised(counter))
    }
}
