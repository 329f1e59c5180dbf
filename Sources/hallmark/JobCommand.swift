import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Jobs for things, as AWS IoT Jobs: firmware rollouts in waves that pause and abort themselves.",
        subcommands: [Create.self, List.self, Describe.self, Pause.self, Resume.self, Cancel.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a job for a release (or a document) over things or a product; prints the job id last.",
            discussion: """
                --rollout FILE takes CreateJob's jobExecutionsRolloutConfig, abortConfig and timeoutConfig, and "waves": \
                [{"name", "percent", "successThreshold", "errorThreshold"}] (docs/firmware.md).
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option(help: "The release (its id or 8 or more of its first hex digits).") var release: String?
        @Option(help: "A job document (JSON) instead of a release's.") var document: String?
        @Option(help: "Target things, comma-separated.") var things: String?
        @Option(help: "Target every thing of this product.") var product: String?
        @Option(help: "A rollout file (JSON).") var rollout: String?
        @Option(help: "The job id (default fw-<version>-<release>).") var jobID: String?
        @Option(help: "The HTTPS base URL devices download from (default: none; devices use their server's).") var urlBase: String?

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let catalog = JobCatalog(registry: registry, tenant: try tenant.resolve(in: registry))
                let configuration = try rollout.map { try JobConfiguration(parsing: try readFile($0)) } ?? JobConfiguration()
                let id = try catalog.create(
                    release: release, document: try document.map(readFile), things: things.map { $0.split(separator: ",").map(String.init) },
                    product: product, configuration: configuration, jobID: jobID, urlBase: urlBase)
                print(Describe.describe(try registry.job(tenant: catalog.tenant, id: id)))
                print(id)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for job in try registry.jobs(tenant: try tenant.resolve(in: registry)) { print(Describe.describe(job)) }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A job: its status and its executions counted by status.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var id: String
        @Flag(help: "Print JSON.") var json = false

        static func describe(_ job: Registry.Job) -> String {
            let counts = job.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "\(job.id)\t\(job.status)\(job.paused ? " (paused)" : "")\t\(counts)\(job.reason.map { "\t\($0)" } ?? "")"
        }

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let job = try registry.job(tenant: try tenant.resolve(in: registry), id: id)
                guard json else { return print(Self.describe(job)) }
                var object: [String: Any] = [
                    "jobId": job.id, "status": job.status, "paused": job.paused, "executions": job.counts, "createdAt": Int(job.createdAt.timeIntervalSince1970),
                    "document": (try? JSONSerialization.jsonObject(with: Data(job.document.utf8))) ?? [:],
                ]
                if let reason = job.reason { object["reason"] = reason }
                if let release = job.releaseID { object["release"] = release }
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop releasing a job's executions (those released carry on).")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var id: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try registry.setJobPaused(tenant: try tenant.resolve(in: registry), id: id, paused: true, reason: nil, now: Date())
                print("\(id): paused")
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a paused job's executions again.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var id: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try registry.setJobPaused(tenant: try tenant.resolve(in: registry), id: id, paused: false, reason: nil, now: Date())
                print("\(id): resumed")
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job: its queued executions are canceled, those in progress carry on.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var id: String
        @Option var reason = "canceled by an operator"

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try registry.cancelJob(tenant: try tenant.resolve(in: registry), id: id, reason: reason, now: Date())
                print("\(id): canceled")
            }
        }
    }
}
