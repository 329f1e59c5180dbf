import ArgumentParser
import Firmware
import Foundation
import HallmarkCore
import HallmarkDevice

/// Prints what the bootloader decided, one JSON object per event, and returns them.
private func report(_ events: [BootLoader.Event]) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    for event in events { print(String(decoding: (try? encoder.encode(event.report)) ?? Data(), as: UTF8.self)) }
}

private func firmware(_ state: String) throws -> DeviceFirmware {
    DeviceFirmware(state: try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true)))
}

extension DeviceCommand {
    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put an image in the inactive slot, as a local update tool would: verified completely first, then pending a trial boot.")
        @Option var state: String
        @Flag(help: "Mark it permanent (no trial boot; the security counter rises at its first boot).") var permanent = false
        @Argument var file: String

        func run() async throws {
            try await reporting {
                let (_, events) = try firmware(state).install(try readFile(file), permanent: permanent)
                report(events)
            }
        }
    }

    struct Reboot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reset the device: the bootloader checks both slots and picks one; a trial image runs its self-test and is confirmed if it passes.",
            discussion: """
                With --fail the image that boots fails before its self-test (a crash, a watchdog reset): a trial image is \
                reverted at the next reset, and a confirmed one that fails --boot-limit times in a row fails over to the other \
                slot. With --mqtt the self-test reconnects to the broker over mutual TLS with the device's certificate and \
                publishes a reading; without it, booting is the self-test.
                """)
        @Option var state: String
        @Flag(help: "The image that boots fails.") var fail = false
        @Option(help: "The broker, HOST:PORT, for the self-test.") var mqtt: String?
        @Option(help: "Failed boots of one image before the device fails over (stored; default 3).") var bootLimit: Int?

        func run() async throws {
            try await reporting {
                let device = try firmware(state)
                if let bootLimit {
                    guard (1...100).contains(bootLimit) else {
                        throw HallmarkError(.configInvalid, "A boot limit is 1 to 100.", remedy: "Choose a smaller --boot-limit.")
                    }
                    var boot = try device.bootState()
                    boot.bootLimit = bootLimit
                    try device.saveBootState(boot)
                }
                let (booted, events) = try device.reboot(failing: fail)
                report(events)
                guard !fail, let running = booted.running, booted.slots[running].state == .trial else { return }
                if let mqtt {
                    let broker = try DeviceCommand.hostAndPort(mqtt)
                    do {
                        let sent = try await TelemetryPublisher(state: device.state, host: broker.host, port: broker.port, interval: .seconds(0)).run(count: 1)
                        guard sent == 1 else { throw HallmarkError(.protocolViolation, "The broker did not acknowledge the reading.", remedy: "Check the broker.") }
                    } catch {
                        print(#"{"event":"self_test_failed","reason":"\#(String(describing: error).prefix(120).replacingOccurrences(of: "\"", with: "'"))"}"#)
                        return
                    }
                }
                report(try device.confirm().1)
            }
        }
    }

    struct Slots: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the slots as JSON: each slot's image (version, security counter, digest) and state, the running slot, the stored counter, the boot count.")
        @Option var state: String

        func run() async throws {
            try await reporting {
                let boot = try firmware(state).bootState()
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(SlotsView(boot)), as: UTF8.self))
            }
        }
    }

    struct Tamper: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Simulate an attack on the flash: flip a byte of the running image. The next boot detects it.")
        @Option var state: String

        func run() async throws {
            try await reporting {
                let slot = try firmware(state).tamper()
                print("slot \(BootState.names[slot]): one byte of the image altered")
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the last good release (fetched from Hallmark) when no slot can boot; the next reboot boots it.")
        @Option var state: String
        @Argument var file: String

        func run() async throws {
            try await reporting { report(try firmware(state).restore(try readFile(file)).1) }
        }
    }
}

extension DeviceCommand {
    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take the device's jobs once, as the agent does on every connection: start-next until none is left, each firmware job downloaded, installed, rebooted into, self-tested and reported.")
        @Option var state: String
        @Option(help: "The server, https://HOST:PORT (firmware downloads).") var server: String
        @Option(help: "The broker, HOST:PORT.") var mqtt: String
        @Option(help: "Cut the first download after this many bytes, as a power loss would; the next run resumes it.")
        var stopDownloadAfter: Int?

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let runner = FirmwareJobRunner(state: device, server: try .init(url: server), broker: try DeviceCommand.hostAndPort(mqtt))
                let report = try await runner.runOnce(stopDownloadAfter: stopDownloadAfter)
                for (job, status, details) in report.handled {
                    print("\(job): \(status) \(details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
                }
                print("jobs: \(report.handled.count) handled")
            }
        }
    }
}

extension DeviceCommand {
    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "With no bootable slot, fetch the last good release from Hallmark (over mutual TLS), write it and boot it.")
        @Option var state: String
        @Option(help: "The server, https://HOST:PORT.") var server: String

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let runner = FirmwareJobRunner(state: device, server: try .init(url: server), broker: ("localhost", 0))
                guard let restored = try await runner.recover() else { return print("a slot can boot: nothing to recover") }
                print("restored \(restored.version) (\(restored.digest.prefix(16))…) from Hallmark and booted it")
            }
        }
    }
}

/// `hallmark device slots`' JSON.
struct SlotsView: Encodable {
    struct Slot: Encodable {
        var name: String
        var state: String
        var version: String?
        var securityCounter: UInt32?
        var digest: String?
    }
    var slots: [Slot]
    var running: String?
    var securityCounter: UInt32
    var bootCount: Int
    var bootLimit: Int

    init(_ boot: BootState) {
        slots = boot.slots.enumerated().map { index, slot in
            Slot(
                name: BootState.names[index], state: slot.state.rawValue, version: slot.image?.version.description,
                securityCounter: slot.image?.securityCounter, digest: slot.image?.digest)
        }
        running = boot.running.map { BootState.names[$0] }
        securityCounter = boot.securityCounter
        bootCount = boot.bootCount
        bootLimit = boot.bootLimit
    }
}
