import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import X509

/// The fleet provisioning scene: a device that left the factory with nothing but the claim
/// certificate every unit carries asks for its own certificate over AWS IoT's MQTT API, registers
/// with an AWS template, and publishes; a counterfeit device with a copy of the claim gets nothing.
extension DemoStory {
    func provisioningScene(mqttPort: Int, registry: Registry, authority: IssuingAuthority, trustPEM: String) async throws {
        report.scene("26. A device with only a claim certificate provisions itself over AWS IoT's fleet provisioning API")
        let template = #"""
            {"Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
             "Resources": {
               "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["", ["sensor_", {"Ref": "SerialNumber"}]]}}},
               "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}}},
             "DeviceConfiguration": {"TelemetryTopic": {"Fn::Join": ["", ["things/sensor_", {"Ref": "SerialNumber"}, "/temperature"]]}}}
            """#
        try registry.putProvisioningTemplate(
            Registry.ProvisioningTemplateRecord(
                tenant: Registry.defaultTenant, name: "demo-fleet", product: Registry.defaultProduct, document: template, udidParameter: "SerialNumber",
                hookURL: nil, createdAt: Date()),
            now: Date())
        let issued = try ClaimIssuance.issue(
            registry: registry, authority: authority, tenant: Registry.defaultTenant, product: Registry.defaultProduct, template: "demo-fleet",
            maxUses: 100, validDays: 30, now: Date())
        report.say("template demo-fleet (AWS's document format) and claim \(issued.claim.id): one certificate for a whole production line, good only for provisioning")

        let work = directory.appendingPathComponent("claimed", isDirectory: true)
        let device = try DeviceState.manufacture(at: work.appendingPathComponent("genuine"))
        try device.install(trustRoots: trustPEM)
        let counterfeit = try DeviceState.manufacture(at: work.appendingPathComponent("counterfeit"))
        try counterfeit.install(trustRoots: trustPEM)
        let row = "udid,public_key\n\(device.udid),\(Data(device.publicKey.spkiDER).base64EncodedString())\n"
        _ = try registry.importAllowlist(AllowlistParser().parse(Array(row.utf8), format: .csv), source: "line-7.csv", skipInvalid: false, now: Date())
        let client = FleetProvisioningClient(
            host: "localhost", port: mqttPort, claimChain: issued.chain, claimKey: Certificate.PrivateKey(issued.key), template: "demo-fleet",
            clientID: "line-7-\(device.udid)")
        let outcome = try await client.provision(device, parameters: ["SerialNumber": device.udid.rawValue])
        report.expect(
            outcome.thingName == "sensor_\(device.udid)" && (try? DeviceKey(outcome.certificate.publicKey)) == device.publicKey,
            "CreateCertificateFromCsr with its root-of-trust key, then RegisterThing: thing \(outcome.thingName), certificate \(outcome.certificateID.prefix(16))…, configuration \(outcome.deviceConfiguration)")
        let sent = try await TelemetryPublisher(state: device, host: "localhost", port: mqttPort, interval: .milliseconds(10), logger: quiet).run(count: 2)
        report.expect(sent == 2, "it reconnects with its own certificate as \(outcome.thingName) and publishes (\(sent) readings acknowledged)")
        do {
            _ = try await client.provision(counterfeit, parameters: ["SerialNumber": device.udid.rawValue])
            report.fail("a counterfeit device with a copy of the claim was provisioned")
        } catch let rejected as FleetProvisioningClient.Rejected {
            report.expect(
                rejected.errorCode == "unknown_device",
                "a counterfeit device holding a copy of the claim is refused: its key is no allowlisted device's (\(rejected.errorCode)); nothing signed")
        }
    }
}
