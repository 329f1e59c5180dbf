import Dispatch
import HallmarkCore

/// What every fuzz target checks besides "no crash": a failed invariant stops the run with the
/// reason, and libFuzzer keeps the input that did it.

/// The input as bytes.
public func input(_ start: UnsafeRawPointer, _ count: Int) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: start, count: count))
}

/// The input's first byte, which chooses what the rest is (a format, a mode), and the rest; nil
/// for an empty input.
public func modeAndRest(_ start: UnsafeRawPointer, _ count: Int) -> (mode: UInt8, rest: [UInt8])? {
    let bytes = input(start, count)
    guard let mode = bytes.first else { return nil }
    return (mode, Array(bytes.dropFirst()))
}

/// Stops the fuzzer when an invariant does not hold for this input.
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError("invariant failed: \(message())", file: file, line: line) }
}

/// A refusal of untrusted input: a client's mistake with a code and a reason, never the server's
/// own failure (`internal_error`, a setup problem) and never one of `allowed`'s complement.
public func requireRefusal(
    _ error: HallmarkError, _ what: String, codes allowed: Set<String>? = nil,
    file: StaticString = #fileID, line: UInt = #line
) {
    require(error.code.kind != .internal && error.code.kind != .serverSetup,
            "\(what) failed as the server's fault: \(error.code) \(error.reason)", file: file, line: line)
    require(!error.reason.isEmpty, "\(what) was refused with no reason (\(error.code))", file: file, line: line)
    if let allowed {
        require(allowed.contains(error.code.rawValue),
                "\(what) was refused with \(error.code), not one of \(allowed.sorted())", file: file, line: line)
    }
}

/// The input cut at its first zero byte: two independent parts for targets that take two things.
public func split(_ bytes: [UInt8]) -> (first: [UInt8], second: [UInt8]) {
    guard let cut = bytes.firstIndex(of: 0) else { return (bytes, []) }
    return (Array(bytes[..<cut]), Array(bytes[(cut + 1)...]))
}

/// Runs async work to completion from libFuzzer's synchronous callback.
public func blocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    done.wait()
}

/// libFuzzer's driver, for a target whose `main` the build names `<Target>_main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> CInt

/// Runs libFuzzer over `callback` with the process's arguments.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}
