/// What an A/B device with MCUboot keeps across resets: two slots with their trailer state, the
/// non-volatile security counter, the running slot and the count of failed boots.
///
/// Pure data; ``BootLoader`` decides every change. The simulated device stores it as
/// `boot.json` beside its slot files.
public struct BootState: Sendable, Hashable, Codable {
    /// The two slots, A then B.
    public var slots: [Slot]
    /// The slot that booted last; nil when none could boot.
    public var running: Int?
    /// The non-volatile security counter: never decreases, rises only when an image is confirmed
    /// (or installed permanent).
    public var securityCounter: UInt32
    /// Consecutive failed boots of the running image.
    public var bootCount: Int
    /// Failed boots after which the device fails over to the other slot.
    public var bootLimit: Int
    /// The last image confirmed (or installed permanent): what a device without a bootable slot
    /// restores.
    public var lastGood: SlotImage?

    public init(bootLimit: Int = 3) {
        slots = [Slot(), Slot()]
        running = nil
        securityCounter = 0
        bootCount = 0
        self.bootLimit = bootLimit
    }

    /// The slot names, for people.
    public static let names = ["A", "B"]

    /// One slot: the image in it and the trailer's state.
    public struct Slot: Sendable, Hashable, Codable {
        public var image: SlotImage?
        public var state: SlotState

        public init(image: SlotImage? = nil, state: SlotState = .empty) {
            self.image = image
            self.state = state
        }
    }

    /// The slot the next update goes to: the one not running (A when nothing runs).
    public var inactive: Int { running.map { 1 - $0 } ?? (slots[0].state.isBootable ? 1 : 0) }

    /// The running image, if any.
    public var runningImage: SlotImage? { running.flatMap { slots[$0].image } }
}

/// What the bootloader knows of an image in a slot (all of it checked when it was installed).
public struct SlotImage: Sendable, Hashable, Codable {
    public var version: ImageVersion
    public var securityCounter: UInt32
    /// The release id: the hex SHA256 TLV.
    public var digest: String

    public init(version: ImageVersion, securityCounter: UInt32, digest: String) {
        self.version = version
        self.securityCounter = securityCounter
        self.digest = digest
    }
}

/// A slot's state, after MCUboot's image trailer.
public enum SlotState: String, Sendable, Hashable, Codable {
    /// Erased.
    case empty
    /// Written and marked for one trial boot (`boot_set_pending(0)`: magic set, image_ok unset).
    case pendingTest = "pending_test"
    /// Written and marked permanent (`boot_set_pending(1)`).
    case pendingPermanent = "pending_permanent"
    /// Booted on trial, not yet confirmed: reverted by the next reset unless confirmed first.
    case trial
    /// Confirmed (image_ok set): boots from now on.
    case confirmed
    /// Refused or reverted: never booted again until something else is written there.
    case rejected

    /// Whether the bootloader may pick the slot.
    public var isBootable: Bool { self == .confirmed || self == .trial || self == .pendingTest || self == .pendingPermanent }
}
