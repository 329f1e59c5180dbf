import ArgumentParser

/// The `hallmark` command line.
@main
struct Hallmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallmark",
        abstract: "A self-hosted trust service for IoT fleets: CA, device registry, zero-touch EST enrollment.",
        subcommands: [
            ServeCommand.self, CACommand.self, TenantCommand.self, VendorCommand.self, ManifestCommand.self, BatchCommand.self, ProductCommand.self, ProvisioningTemplateCommand.self, ClaimCommand.self,
            AllowlistCommand.self, RegistryCommand.self, DeviceCommand.self,
            CertCommand.self, ThingCommand.self, FirmwareCommand.self, JobCommand.self, SecurityProfileCommand.self, AlarmsCommand.self, AuditCommand.self, PolicyCommand.self, TelemetryCommand.self, LogCommand.self, DemoCommand.self,
        ])
}
