import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

/// The tenant a command acts for.
struct TenantOption: ParsableArguments {
    @Option(help: "The tenant (an OEM) to act for (default: $HALLMARK_TENANT or 'default').")
    var tenant: String?

    var id: String { filter ?? Registry.defaultTenant }

    /// The tenant if one was named; listings without one show every tenant.
    var filter: String? { tenant ?? ProcessInfo.processInfo.environment["HALLMARK_TENANT"] }

    /// The tenant id, checked to exist.
    func resolve(in registry: Registry) throws -> String {
        try registry.requireTenant(id)
        return id
    }
}

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "OEM tenants, each with its own fleet, events and administrator credential.",
        subcommands: [Create.self, List.self, Credential.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tenant and print its administrator credential (shown once).")
        @OptionGroup var data: DataOptions
        @Argument(help: "The tenant id: 1–32 of a–z, 0–9, '-'. Its devices enrol at /.well-known/est/<id>/simpleenroll.")
        var id: String
        @Option(help: "A display name.") var name: String?

        func run() async throws {
            try await reporting {
                let secret = try data.openRegistry().createTenant(id: id, name: name ?? id, now: Date())
                print("tenant \(id) created")
                print("  EST:        /.well-known/est/\(id)/simpleenroll")
                print("  credential: \(secret)")
                print("  (shown once; the API takes it as 'Authorization: Bearer …')")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants with their fleet sizes.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            try await reporting {
                for tenant in try data.openRegistry().tenants() {
                    print("\(tenant.id)\t\(tenant.devices) devices\t\(tenant.things) things\t\(tenant.hasCredential ? "credential set" : "no credential")\t\(tenant.name)")
                }
            }
        }
    }

    struct Credential: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a tenant a new administrator credential; the old one stops working at once.")
        @OptionGroup var data: DataOptions
        @Argument var id: String

        func run() async throws {
            try await reporting {
                print(try data.openRegistry().rotateTenantCredential(id, now: Date()))
            }
        }
    }
}
