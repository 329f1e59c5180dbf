import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkStore
import Logging

/// `hallmark security-profile`: the behaviours expected of a product's things (Device Defender).
struct SecurityProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "security-profile", abstract: "Security profiles: the behaviours expected of a product's things, and what an alarm does.",
        subcommands: [Create.self, List.self, Show.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a security profile (AWS IoT Device Defender's behaviours, plus Hallmark's mitigationActions); what Hallmark does not evaluate is refused now.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The profile's name ([a-zA-Z0-9:_-]{1,128}).") var name: String
        @Argument(help: "The profile document (JSON).") var file: String
        @Option(help: "The product whose things it watches.") var product: String
        @Flag(help: "Replace the document of an existing profile.") var replace = false

        func run() async throws {
            try await reporting {
                guard let document = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw HallmarkError(.securityProfileInvalid, "The profile file \(file) cannot be read.", remedy: "Check the path.")
                }
                let registry = try data.openRegistry()
                try registry.putSecurityProfile(
                    tenant: try tenant.resolve(in: registry), name: name, product: product, document: document, replace: replace, now: Date())
                let profile = try SecurityProfile(json: Array(document.utf8))
                print("\(name)\tproduct \(product)\tbehaviours \(profile.behaviors.map(\.name).joined(separator: ","))\tmitigations \(profile.mitigations.map(\.name).joined(separator: ",").nonEmpty ?? "none")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the security profiles.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let profiles = try registry.securityProfiles(tenant: tenant.filter)
                guard !json else {
                    let objects: [[String: Any]] = profiles.map { record in
                        var object: [String: Any] = ["tenant": record.tenant, "name": record.name, "product": record.product]
                        object["document"] = try? JSONSerialization.jsonObject(with: Data(record.document.utf8))
                        return object
                    }
                    return print(String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
                }
                for record in profiles {
                    let behaviors = (try? record.parsed())?.behaviors.map(\.name).joined(separator: ",") ?? "?"
                    print("\(record.tenant)\t\(record.name)\tproduct \(record.product)\tbehaviours \(behaviors)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a security profile's document.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var name: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let id = try tenant.resolve(in: registry)
                guard let record = try registry.securityProfiles(tenant: id).first(where: { $0.name == name }) else {
                    throw HallmarkError(.notFound, "There is no security profile \(name.prefix(64)).", remedy: "List them with `hallmark security-profile list`.")
                }
                print("\(record.name)\tproduct \(record.product)")
                print(record.document)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a security profile; its open violations are invalidated.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var name: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try await registry.deleteSecurityProfile(tenant: try tenant.resolve(in: registry), name: name, now: Date())
                print("\(name): deleted")
            }
        }
    }
}

/// `hallmark alarms`: Device Defender's violations.
struct AlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarms", abstract: "Device Defender's violations: the things whose behaviour is in alarm.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the active violations (every one with --all), newest first.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Flag(help: "Print JSON (AWS's ActiveViolation fields).") var json = false
        @Flag(help: "Include cleared and invalidated violations.") var all = false

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let violations = try registry.violations(tenant: tenant.filter, activeOnly: !all)
                guard !json else {
                    let objects: [[String: Any]] = violations.map { violation in
                        var object: [String: Any] = [
                            "violationId": violation.id, "tenant": violation.tenant, "thingName": violation.thing,
                            "securityProfileName": violation.profile, "behavior": ["name": violation.behavior, "metric": violation.metric],
                            "state": violation.state.rawValue, "violationStartTime": Int(violation.startedAt.timeIntervalSince1970),
                            "lastViolationTime": Int(violation.updatedAt.timeIntervalSince1970),
                            "mitigations": violation.mitigations.split(separator: ",").map(String.init),
                        ]
                        object["lastViolationValue"] = try? JSONSerialization.jsonObject(with: Data(violation.metricValue.utf8), options: [.fragmentsAllowed])
                        if let ended = violation.endedAt { object["endTime"] = Int(ended.timeIntervalSince1970) }
                        return object
                    }
                    return print(String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
                }
                for violation in violations {
                    print(
                        "\(violation.state.rawValue)\t\(violation.thing)\t\(violation.profile)/\(violation.behavior)\t\(violation.metric) = \(violation.metricValue)"
                            + "\tsince \(ISO8601DateFormatter().string(from: violation.startedAt))"
                            + (violation.mitigations.isEmpty ? "" : "\t\(violation.mitigations)"))
                }
            }
        }
    }
}

extension ProductCommand {
    struct Defender: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Device Defender settings of a product: whether reports must be signed (COSE_Sign1), and the shortest interval between two reports.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var product: String
        @Option(help: "on: unsigned reports ($aws/…/json, /cbor) are refused; off: both are taken.") var signedOnly: String?
        @Option(help: "Seconds: a report sooner than this after the last is refused as throttled (AWS: 300; 0: no throttling).") var reportInterval: Double?

        func run() async throws {
            try await reporting {
                if let signedOnly, !["on", "off"].contains(signedOnly) {
                    throw HallmarkError(.productInvalid, "'\(signedOnly.prefix(20))' is neither on nor off.", remedy: "Use --signed-only on or off.")
                }
                let registry = try data.openRegistry()
                let id = try tenant.resolve(in: registry)
                if signedOnly != nil || reportInterval != nil {
                    try await registry.setDefenderSettings(
                        tenant: id, product: product, signedOnly: signedOnly.map { $0 == "on" }, minimumInterval: reportInterval, now: Date())
                }
                let settings = try registry.defenderSettings(tenant: id, product: product)
                print("\(product): signed reports \(settings.signedOnly ? "required" : "optional"), at most one every \(Int(settings.minimumInterval)) s")
            }
        }
    }
}

extension DeviceCommand {
    struct Defender: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the device's network and send Hallmark a signed Device Defender report (COSE_Sign1), then its pending security events.")
        @Option var state: String
        @Option(help: "The MQTT broker as HOST:PORT.") var mqtt: String
        @Option(help: "A custom metric, NAME=NUMBER (repeatable).") var custom: [String] = []
        @Option(help: "Raise a security event now: tamper, failover-boot, self-test-failure, rollback-refused, clock-tampering.") var event: String?
        @Option(help: "The event's detail.") var detail: String?
        @Option(help: "Reports to send (0: only the event).") var count = 1
        @Option(help: "Seconds between reports.") var interval = 300.0

        func run() async throws {
            try await reporting {
                let device = try DeviceState.load(from: URL(fileURLWithPath: state, isDirectory: true))
                let broker = try DeviceCommand.hostAndPort(mqtt)
                let agent = DefenderAgent(state: device, host: broker.host, port: broker.port)
                var metrics: [String: Double] = [:]
                for pair in custom {
                    guard let equals = pair.firstIndex(of: "="), let value = Double(pair[pair.index(after: equals)...]) else {
                        throw HallmarkError(.configInvalid, "'\(pair.prefix(64))' is not NAME=NUMBER.", remedy: "Give --custom cpu_usage=12.5.")
                    }
                    metrics[String(pair[..<equals])] = value
                }
                var refused = false
                if let event {
                    guard let kind = SecurityEvent.Kind(rawValue: event) else {
                        throw HallmarkError(.configInvalid, "'\(event.prefix(40))' is no security event.",
                                            remedy: "Use one of " + SecurityEvent.Kind.allCases.map(\.rawValue).joined(separator: ", ") + ".")
                    }
                    let answer = try await agent.raise(kind, detail: detail)
                    print(Self.describe("event \(event)", answer))
                    refused = refused || !answer.accepted
                }
                for index in 0..<count {
                    if index > 0 { try await Task.sleep(for: .seconds(interval)) }
                    let answers = try await agent.reportOnce(custom: metrics)
                    for (offset, answer) in answers.enumerated() {
                        print(Self.describe(offset == 0 ? "report" : "pending event", answer))
                        refused = refused || !answer.accepted
                    }
                }
                if refused { throw ExitCode(1) }
            }
        }

        static func describe(_ what: String, _ answer: DefenderAgent.Answer) -> String {
            answer.accepted
                ? "\(what): accepted"
                : "\(what): rejected (\(answer.hallmarkCode ?? answer.errorCode ?? "?")): \(answer.message ?? "")"
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
