import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

struct ProductCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "product", abstract: "Product settings.", subcommands: [CloneResponse.self])

    struct CloneResponse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clone-response",
            abstract: "What a suspected clone of this product's devices sets off: quarantine (the default) or only the alarm.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var product: String
        @Argument(help: "quarantine or alarm") var response: String

        func run() async throws {
            try await reporting {
                guard let choice = Registry.CloneResponse(rawValue: response) else {
                    throw HallmarkError(.configInvalid, "'\(response)' is not a clone response.", remedy: "Use quarantine or alarm.")
                }
                let registry = try data.openRegistry()
                try registry.setCloneResponse(choice, tenant: try tenant.resolve(in: registry), product: product, now: Date())
                print("product \(product): suspected clones are met with \(choice.rawValue)")
            }
        }
    }
}
