import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry", abstract: "Inspect and manage the device registry.",
        subcommands: [Status.self, Devices.self, Certificates.self, Events.self, SetStatus.self, Decommission.self, Recommission.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts of devices by status, and things.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let counts = try registry.deviceCounts()
                for status in DeviceStatus.allCases { print("\(status.rawValue): \(counts[status] ?? 0)") }
                print("things: \(try registry.thingCount())")
            }
        }
    }

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List devices on the allowlist.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option(help: "Only devices in this status (allowed, enrolled, quarantined, decommissioned).")
        var status: String?
        @Option var limit = 50

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let filter = try status.map { text in
                    guard let status = DeviceStatus(rawValue: text) else {
                        throw HallmarkError(.notFound, "Unknown status \(text).", remedy: "Use allowed, enrolled, quarantined or decommissioned.")
                    }
                    return status
                }
                for device in try registry.devices(status: filter, tenant: tenant.filter, limit: limit) {
                    print("\(device.udid)\t\(device.status.rawValue)\t\(device.tenant)/\(device.product)\tkey \(device.key.fingerprint.prefix(16))…\tfrom \(device.source)")
                }
            }
        }
    }

    struct Certificates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List issued certificates, newest first.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option var udid: String?
        @Option var limit = 50

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let udid = try udid.map { try UDID(validating: $0) }
                for record in try registry.certificates(udid: udid, tenant: tenant.filter, limit: limit) {
                    print("\(record.serial)\t\(record.status.rawValue)\t\(record.thingName)\tuntil \(record.notAfter)")
                }
            }
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read the append-only event log, newest first.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option(help: "Only events about this device.") var udid: String?
        @Option(help: "Only events with this code.") var code: String?
        @Option(help: "How many events, newest first.") var limit = 50

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let formatter = ISO8601DateFormatter()
                for event in try registry.events(udid: udid, code: code, tenant: tenant.filter, limit: limit) {
                    print(
                        "\(formatter.string(from: event.at))\t\(event.tenant)\t\(event.action)\t\(event.decision.rawValue)\t\(event.code)\t\(event.udid ?? "-")\t\(event.thing ?? "-")\t\(event.detail)")
                }
            }
        }
    }

    struct SetStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-status", abstract: "Quarantine, release or decommission a device.")
        @OptionGroup var data: DataOptions
        @Argument var udid: String
        @Argument(help: "quarantined, decommissioned, or allowed/enrolled to release.")
        var status: String
        @Option var reason = "operator action"

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let status = DeviceStatus(rawValue: status) else {
                    throw HallmarkError(.notFound, "Unknown status \(self.status).", remedy: "Use allowed, enrolled, quarantined or decommissioned.")
                }
                try registry.setDeviceStatus(try UDID(validating: udid), to: status, reason: reason, now: Date())
                print("\(udid): \(status.rawValue)")
            }
        }
    }

    struct Decommission: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a device's life: its certificates revoked (cessationOfOperation), its sessions ended, its thing retired, enrollment refused.",
            discussion: "The record and its history stay. Only `hallmark registry recommission` brings the device back.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var udid: String
        @Option(help: "Why (kept in the event log).") var reason = "decommissioned by an operator"

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try registry.setDeviceStatus(try UDID(validating: udid), to: .decommissioned, reason: reason, tenant: tenant.filter, now: Date())
                print("\(udid): decommissioned")
            }
        }
    }

    struct Recommission: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring a decommissioned device back (logged): it enrols afresh; its old certificates stay revoked.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var udid: String
        @Option(help: "Why (kept in the event log).") var reason: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try registry.recommission(try UDID(validating: udid), reason: reason, tenant: tenant.filter, now: Date())
                print("\(udid): recommissioned (allowed)")
            }
        }
    }
}
