import HallmarkCore

/// A firmware refusal: a ``HallmarkError`` with one of the firmware codes.
public typealias FirmwareError = HallmarkError

extension HallmarkError {
    static func imageInvalid(_ reason: String) -> HallmarkError {
        HallmarkError(.firmwareImageInvalid, reason, remedy: "Give an MCUboot image made by `hallmark firmware master` or `imgtool sign`.")
    }
}
