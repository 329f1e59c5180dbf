import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Production batches with quotas, for the factory's programming station.",
        subcommands: [Create.self, Report.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a batch and print the programming station's credential (shown once).")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Option var product = Registry.defaultProduct
        @Option(help: "How many devices the factory may program.") var quota: Int

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let batch = try registry.createBatch(tenant: try tenant.resolve(in: registry), product: product, quota: quota, now: Date())
                print("batch \(batch.report.id): product \(product), quota \(quota)")
                print("  station credential: \(batch.stationCredential)")
                print("  the station registers each device with POST /api/v1/station/devices {\"udid\",\"publicKey\"}")
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Programmed, enrolled and refused devices per batch.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "A batch id; all the tenant's batches without it.") var id: String?

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let tenantID = try tenant.resolve(in: registry)
                let batches: [Registry.BatchReport]
                if let id {
                    guard let batch = try registry.batchReport(tenant: tenantID, id: id) else {
                        throw HallmarkError(.notFound, "There is no batch \(id).", remedy: "List batches with `hallmark batch report`.")
                    }
                    batches = [batch]
                } else {
                    batches = try registry.batches(tenant: tenantID)
                }
                print("batch\tproduct\tquota\tprogrammed\tenrolled\trefused")
                for batch in batches {
                    print("\(batch.id)\t\(batch.product)\t\(batch.quota)\t\(batch.programmed)\t\(batch.enrolled)\t\(batch.refused)")
                }
            }
        }
    }
}
