import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import Logging
import SwiftASN1
import X509

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "The device agent: play a device that enrols over EST and sends telemetry over MQTT.",
        subcommands: [Factory.self, Boot.self, Provision.self, Run.self, Telemetry.self, Show.self, Install.self, Reboot.self, Slots.self, Tamper.self, Restore.self, Jobs.self, Recover.self, Defender.self])

    struct Factory: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manufacture devices (UDID + root-of-trust key each) and export their allowlist CSV.",
            discussion: """
                With --vendor, the chip vendor also gives each device an attestation certificate and signs a manifest
                of them (OUT/manifest.json). With --station, the factory's programming station registers each device
                against its production batch over Hallmark's API; devices past the batch quota are refused.
                """)

        @Option(help: "Where to put the devices (one state directory each).")
        var out: String
        @Option var count = 1
        @Option(help: "The CA file devices trust for their server (e.g. DATA/ca/root.pem).")
        var trust: String?
        @Option(help: "Where to write the allowlist (default OUT/allowlist.csv).")
        var allowlist: String?
        @Option(help: "A simulated vendor's directory (`hallmark vendor simulate`): attestation certificates and a signed manifest.")
        var vendor: String?
        @Option(help: "The lot (manifest groupId) these chips ship in.")
        var lot: String?
        @Option(help: "The programming station's server, https://HOST:PORT: register each device against the batch.")
        var station: String?
        @Option(help: "The station credential from `hallmark batch create` (default: $HALLMARK_STATION_CREDENTIAL).")
        var stationCredential: String?
        @Option(help: "A firmware signing key the bootloader trusts (DIR/signing.pub.pem from `hallmark firmware key create`); repeatable.")
        var bootKey: [String] = []
        @Option(help: "The product the devices are (with --tenant, default 'default'): images naming another product's class id are refused.")
        var product: String?
        @Option(help: "The tenant of --product.") var tenant: String?

        func run() async throws {
            try await reporting {
                let base = URL(fileURLWithPath: out, isDirectory: true)
                let trustPEM = try trust.map { try String(contentsOfFile: $0, encoding: .utf8) }
                let chipVendor = try vendor.map { try SimulatedVendor.load(from: URL(fileURLWithPath: $0, isDirectory: true)) }
                let bootKeys = try bootKey.map { String(decoding: try readFile($0), as: UTF8.self) }.joined(separator: "\n")
                var csv = "udid,public_key,firmware_key\n"
                var devices: [DeviceState] = []
                var chips: [(udid: UDID, key: DeviceKey, attestation: Certificate?)] = []
                for index in 1...max(count, 1) {
                    let state = try DeviceState.manufacture(at: base.appendingPathComponent(String(format: "device-%05d", index)))
                    if let trustPEM { try state.install(trustRoots: trustPEM) }
                    let firmware = DeviceFirmware(state: state)
                    if !bootKeys.isEmpty || product != nil { try firmware.provision(bootKeysPEM: bootKeys, tenant: tenant, product: product) }
                    csv += "\(state.udid),\(Data(state.publicKey.spkiDER).base64EncodedString()),\(Data(try firmware.firmwareKeySPKI()).base64EncodedString())\n"
                    let attestation = try chipVendor?.attestationCertificate(udid: state.udid, key: state.publicKey)
                    if let attestation { try state.install(attestation: attestation) }
                    chips.append((state.udid, state.publicKey, attestation))
                    devices.append(state)
                }
                let path = allowlist ?? base.appendingPathComponent("allowlist.csv").path
                try Data(csv.utf8).write(to: URL(fileURLWithPath: path))
                print("Manufactured \(count) device(s) in \(out); allowlist: \(path)")
                if let chipVendor {
                    let manifest = base.appendingPathComponent("manifest.json")
                    try Data(try chipVendor.manifest(chips, lot: lot)).write(to: manifest)
                    print("Vendor \(chipVendor.name) signed manifest: \(manifest.path)")
                }
                if let station {
                    let credential = stationCredential ?? ProcessInfo.processInfo.environment["HALLMARK_STATION_CREDENTIAL"]
                    guard let credential, let trustPEM else {
                        throw HallmarkError(.configInvalid, "--station needs --station-credential and --trust.",
                                            remedy: "Pass the credential from `hallmark batch create` and the server's CA file.")
                    }
                    let programmer = ProgrammingStation(server: try .init(url: station), credential: credential, trustPEM: trustPEM)
                    let results = try await programmer.register(devices)
                    let refused = results.filter { $0.code != nil }
                    for result in refused { print("  \(result.udid): refused [\(result.code!)] \(result.message)") }
                    print("Programming station: \(results.count - refused.count) registered, \(refused.count) refused")
                }
            }
        }
    }

    struct Boot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Boot once: enrol if the device has no certificate, renew if renewal is due.")

        @Option(help: "The device's state directory.")
        var state: String
        @Option(help: "The server, https://HOST:PORT.")
        var server: String
        @Option(help: "Renew after this fraction of the certificate lifetime.")
        var renewAt = 2.0 / 3.0

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let agent = DeviceAgent(state: device, server: try .init(url: server), schedule: .init(fraction: renewAt))
                do {
                    switch try await agent.boot() {
                    case .enrolled(let serial): print("\(device.udid): enrolled, certificate \(serial)")
                    case .renewed(let serial): print("\(device.udid): renewed, certificate \(serial)")
                    case .current(let serial): print("\(device.udid): certificate \(serial) is current")
                    }
                } catch let refusal as ESTClient.Refusal {
                    // The server's code, as it sent it: a newer server may know codes this agent does not.
                    FileHandle.standardError.write(Data("error [\(refusal.code)]: \(refusal.message)\n  fix: See the server's event log.\n".utf8))
                    throw ExitCode(2)
                }
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the agent: enrol, renew before expiry (retrying with back-off) and, with --mqtt, publish temperature readings.")

        @Option var state: String
        @Option var server: String
        @Option var renewAt = 2.0 / 3.0
        @Option(help: "The MQTT broker as HOST:PORT; readings go to things/<thing>/temperature.") var mqtt: String?
        @Option(help: "Seconds between readings.") var interval = 5.0
        @Option(help: "Seconds between looks for jobs (with --mqtt).") var jobsInterval = 30.0

        func run() async throws {
            try await reporting {
                LoggingSystem.bootstrap(StreamLogHandler.standardError)
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let agent = DeviceAgent(state: device, server: try .init(url: server), schedule: .init(fraction: renewAt))
                let broker = try mqtt.map(DeviceCommand.hostAndPort)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await agent.run() }
                    if let broker {
                        tasks.addTask {
                            // Jobs are taken on start and then every --jobs-interval seconds (notify is a hint; start-next decides).
                            let runner = FirmwareJobRunner(state: device, server: try .init(url: server), broker: broker)
                            while true {
                                if try device.certificate() != nil { _ = try? await runner.runOnce() }
                                try await Task.sleep(for: .seconds(jobsInterval))
                            }
                        }
                        tasks.addTask {
                            // Telemetry starts once the device holds a certificate.
                            while try device.certificate() == nil { try await Task.sleep(for: .seconds(1)) }
                            let publisher = TelemetryPublisher(state: device, host: broker.host, port: broker.port, interval: .seconds(interval))
                            try await publisher.run()
                        }
                    }
                    try await tasks.next()
                    tasks.cancelAll()
                }
            }
        }
    }

    struct Telemetry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect with the device's certificate and publish temperature readings to things/<thing>/temperature.")

        @Option var state: String
        @Option(help: "The MQTT broker as HOST:PORT.") var mqtt: String
        @Option(help: "Seconds between readings.") var interval = 5.0
        @Option(help: "Stop after this many readings (default: run until stopped).") var count: Int?

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let broker = try DeviceCommand.hostAndPort(mqtt)
                let publisher = TelemetryPublisher(state: device, host: broker.host, port: broker.port, interval: .seconds(interval))
                if let count {
                    let (client, thing) = try await publisher.connect()
                    client.close()
                    let sent = try await publisher.run(count: count)
                    print("\(thing): \(sent) readings acknowledged on \(TelemetryPublisher.topic(thing: thing))")
                } else {
                    LoggingSystem.bootstrap(StreamLogHandler.standardError)
                    try await publisher.run()
                }
            }
        }
    }

    struct Provision: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Provision the device by claim over MQTT (AWS IoT fleet provisioning, as the AWS SDKs do): its certificate for its root-of-trust key, and its thing.")

        @Option var state: String
        @Option(help: "The MQTT broker as HOST:PORT.") var mqtt: String
        @Option(help: "The claim's directory (claim.pem, claim.key from `hallmark claim create`).") var claim: String
        @Option(help: "The provisioning template.") var template: String
        @Option(help: "The template parameter that carries the device's UDID.") var udidParameter = "SerialNumber"
        @Option(help: "Another template parameter, NAME=VALUE (repeatable).") var parameter: [String] = []

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let broker = try DeviceCommand.hostAndPort(mqtt)
                let directory = URL(fileURLWithPath: claim, isDirectory: true)
                guard let chainPEM = try? String(contentsOf: directory.appendingPathComponent("claim.pem"), encoding: .utf8),
                    let keyPEM = try? String(contentsOf: directory.appendingPathComponent("claim.key"), encoding: .utf8),
                    let chain = try? PEMDocument.parseMultiple(pemString: chainPEM).map({ try Certificate(pemDocument: $0) }),
                    let key = try? Certificate.PrivateKey(pemEncoded: keyPEM)
                else {
                    throw HallmarkError(.keyFileInvalid, "\(claim) holds no readable claim.pem and claim.key.", remedy: "Give the directory `hallmark claim create --out` wrote.")
                }
                var parameters = [udidParameter: device.udid.rawValue]
                for pair in parameter {
                    guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                        throw HallmarkError(.configInvalid, "'\(pair.prefix(64))' is not NAME=VALUE.", remedy: "Give --parameter Region=eu.")
                    }
                    parameters[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
                }
                let client = FleetProvisioningClient(
                    host: broker.host, port: broker.port, claimChain: chain, claimKey: key, template: template,
                    clientID: "provision-" + device.udid.rawValue)
                do {
                    let outcome = try await client.provision(device, parameters: parameters)
                    print("\(device.udid): thing \(outcome.thingName), certificate \(outcome.certificate.serialHex)")
                    for (name, value) in outcome.deviceConfiguration.sorted(by: { $0.key < $1.key }) { print("configuration \(name) = \(value)") }
                } catch let rejected as FleetProvisioningClient.Rejected {
                    throw HallmarkError(.provisioningDenied, rejected.description, remedy: "See the server's event log for the refusal.")
                }
            }
        }
    }

    static func hostAndPort(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw HallmarkError(.configInvalid, "'\(text)' is not HOST:PORT.", remedy: "Give the broker as HOST:PORT, e.g. localhost:8883.")
        }
        return (String(text[..<colon]), port)
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a device's UDID, key and certificate.")
        @Option var state: String

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                print("udid: \(device.udid)")
                print("root-of-trust key fingerprint: \(device.publicKey.fingerprint)")
                if let certificate = try device.certificate() {
                    print("certificate: \(certificate.subject), serial \(certificate.serialNumber), until \(certificate.notValidAfter)")
                } else {
                    print("certificate: none (not enrolled)")
                }
            }
        }
    }
}
