import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Create, version, attach and detach MQTT authorisation policies (AWS IoT policy syntax).",
        subcommands: [Create.self, List.self, Show.self, Attach.self, Detach.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a policy from a JSON file, or a new version of it if it exists (the latest version is in force).")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The policy's name.") var name: String
        @Argument(help: "The JSON policy document.") var file: String

        func run() async throws {
            try await reporting {
                guard let document = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw HallmarkError(.notFound, "Cannot read \(file).", remedy: "Check the path.")
                }
                let registry = try data.openRegistry()
                let version = try await registry.putPolicy(
                    name: name, document: document, tenant: try tenant.resolve(in: registry), now: Date())
                print("policy \(name) version \(version)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for policy in try registry.policies(tenant: try tenant.resolve(in: registry)) {
                    print("\(policy.name)\tversion \(policy.version)\tattached to \(policy.attachments) thing(s)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var name: String
        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let policy = try registry.policies(tenant: try tenant.resolve(in: registry)).first(where: { $0.name == name }) else {
                    throw HallmarkError(.notFound, "There is no policy named \(name).", remedy: "List them with `hallmark policy list`.")
                }
                print(policy.document)
            }
        }
    }

    struct Attachment: ParsableArguments {
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The policy's name.") var policy: String
        @Argument(help: "The thing's name.") var thing: String

        func set(attached: Bool) async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try await registry.setPolicyAttachment(
                    policy: policy, thing: thing, attached: attached, tenant: try tenant.resolve(in: registry), now: Date())
                print(attached ? "attached \(policy) to \(thing)" : "detached \(policy) from \(thing)")
            }
        }
    }

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Attach a policy to a thing (live sessions pick it up within a second).")
        @OptionGroup var target: Attachment
        func run() async throws { try await target.set(attached: true) }
    }

    struct Detach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Detach a policy from a thing.")
        @OptionGroup var target: Attachment
        func run() async throws { try await target.set(attached: false) }
    }
}

struct TelemetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telemetry", abstract: "Show what a thing published: the last value per topic, or a topic's history.")
    @OptionGroup var data: DataOptions
    @Argument(help: "The thing's name.") var thing: String
    @Option(help: "Show this topic's history, newest first.") var topic: String?
    @Option var limit = 20

    func run() async throws {
        try await reporting {
            let registry = try data.openRegistry()
            let samples = try topic.map { try registry.telemetry(thing: thing, topic: $0, limit: limit) } ?? registry.latestTelemetry(thing: thing)
            if samples.isEmpty { print("no telemetry for \(thing)") }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            for sample in samples {
                let text = String(validating: sample.payload, as: UTF8.self).map { "\"\($0)\"" } ?? "\(sample.payload.count) bytes (binary)"
                print("\(formatter.string(from: sample.at))\t\(sample.topic)\t\(text)")
            }
        }
    }
}
