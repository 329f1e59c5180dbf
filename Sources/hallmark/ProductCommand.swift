import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkStore

struct ProductCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "product", abstract: "A tenant's products: their devices' certificate validity, default policy and clone response.",
        subcommands: [Create.self, List.self, Show.self, CloneResponse.self, ProductionRelease.self, ServerKeys.self, Defender.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a product.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument(help: "The product id: 1–64 letters, digits, '-', '_', '.'.") var id: String
        @Option(help: "A name for people (default: the id).") var name: String?
        @Option(help: "Its devices' certificate validity, in days (default 365; 1 to 3650).") var validityDays: Int?
        @Option(help: "The policy a new thing of the product gets (default: default-thing-policy).") var policy: String?
        @Option(help: "What a suspected clone sets off: quarantine (default) or alarm.") var cloneResponse: String?
        @Option(help: "Hours a renewal's old certificate stays good if the device does not connect with its new one sooner; then it is revoked (superseded). Default 168.")
        var supersededGraceHours: Int?
        @Option(help: "Days after its certificate expired that an offline device may still enrol with its root-of-trust key (default 0: never).")
        var expiredRenewalDays: Int?

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                let product = try Registry.Product(
                    tenant: try tenant.resolve(in: registry), id: id, name: name ?? id, certificateValidityDays: validityDays,
                    defaultPolicy: policy, cloneResponse: cloneResponse, supersededGraceHours: supersededGraceHours,
                    expiredRenewalDays: expiredRenewalDays)
                try registry.createProduct(product, now: Date())
                print(Show.describe(product))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's products.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                for product in try registry.products(tenant: try tenant.resolve(in: registry)) { print(Show.describe(product)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one product.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var id: String

        static func describe(_ product: Registry.Product) -> String {
            "\(product.id)\t\(product.name)\tcertificates \(Int(product.profile.validity / 86_400)) days\tpolicy \(product.defaultPolicy)\tclones: \(product.cloneResponse.rawValue)"
        }

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                guard let product = try registry.product(tenant: try tenant.resolve(in: registry), id: id) else {
                    throw HallmarkError(.notFound, "Product \(id.prefix(64)) does not exist.", remedy: "List the products with `hallmark product list`.")
                }
                print(Self.describe(product))
            }
        }
    }

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
                    throw HallmarkError(.productInvalid, "'\(response.prefix(40))' is not a clone response.", remedy: "Use quarantine or alarm.")
                }
                let registry = try data.openRegistry()
                try registry.setCloneResponse(choice, tenant: try tenant.resolve(in: registry), product: product, now: Date())
                print("product \(product): suspected clones are met with \(choice.rawValue)")
            }
        }
    }

    struct ProductionRelease: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "production-release",
            abstract: "The release a product's newly enrolled devices get on their first connection (a job of their own), or 'none'.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var product: String
        @Argument(help: "A release id (8 or more of its first hex digits), or none.") var release: String

        func run() async throws {
            try await reporting {
                let registry = try data.openRegistry()
                try registry.setProductionRelease(
                    tenant: try tenant.resolve(in: registry), product: product, release: release == "none" ? nil : release, now: Date())
                print("\(product): production release \(release)")
            }
        }
    }

    struct ServerKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "server-keys",
            abstract: "Whether fleet provisioning may give this product's devices keys Hallmark makes (CreateKeysAndCertificate): off by default.")
        @OptionGroup var data: DataOptions
        @OptionGroup var tenant: TenantOption
        @Argument var product: String
        @Argument(help: "on or off") var setting: String

        func run() async throws {
            try await reporting {
                guard ["on", "off"].contains(setting) else {
                    throw HallmarkError(.productInvalid, "'\(setting.prefix(20))' is neither on nor off.", remedy: "Use on or off.")
                }
                let registry = try data.openRegistry()
                try registry.setServerKeys(tenant: try tenant.resolve(in: registry), product: product, allowed: setting == "on", now: Date())
                print("\(product): server-made device keys \(setting)")
            }
        }
    }
}
