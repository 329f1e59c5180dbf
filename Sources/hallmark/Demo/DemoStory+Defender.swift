import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import Logging
import MQTTCore
import NIOCore
import X509

/// Fleet security monitoring: devices sign what they report, a device that misbehaves is
/// quarantined within a second of its alarm, a tampered report is refused, a fail-over boot
/// reaches the cloud as a signed event, and an audit finds a shared certificate and an over-broad
/// policy.
extension DemoStory {
    func defenderScene(
        failedOver: DeviceState, endpoint: DeviceAgent.Server, mqttPort: Int, registry: Registry, files: AuthorityFiles, trustPEM: String
    ) async throws {
        report.scene("27. Fleet security monitoring: signed reports, an alarm that acts, a fail-over boot reported, an audit")
        var fleet: [DeviceState] = []
        var csv = "udid,public_key\n"
        for index in 0..<3 {
            let device = try DeviceState.manufacture(at: directory.appendingPathComponent("monitored/\(index)"))
            try device.install(trustRoots: trustPEM)
            fleet.append(device)
            csv += "\(device.udid),\(Data(device.publicKey.spkiDER).base64EncodedString())\n"
        }
        _ = try registry.importAllowlist(AllowlistParser().parse(Array(csv.utf8), format: .csv), source: "monitored.csv", skipInvalid: false, now: Date())
        for device in fleet { _ = try await DeviceAgent(state: device, server: endpoint, logger: quiet).boot() }
        let profile = #"""
            {"securityProfileDescription": "sensors stay in their lane",
             "behaviors": [
               {"name": "few-denials", "metric": "aws:num-authorization-failures",
                "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}, "durationSeconds": 300}},
               {"name": "cpu", "metric": "cpu_usage", "criteria": {"comparisonOperator": "less-than-equals", "value": {"number": 80}}}],
             "mitigationActions": [{"quarantineDeviceParams": {}}]}
            """#
        try registry.putSecurityProfile(
            tenant: Registry.defaultTenant, name: "demo-guard", product: Registry.defaultProduct, document: profile, replace: false, now: Date())
        report.say("security profile demo-guard (AWS's behaviour shape): fewer than 3 authorisation failures in 300 s, cpu_usage at most 80; an alarm quarantines")
        try await Task.sleep(for: .milliseconds(1200))  // the monitor reads profiles every second

        let reporter = fleet[0]
        let agent = DefenderAgent(state: reporter, host: "localhost", port: mqttPort)
        let answers = try await agent.reportOnce(custom: ["cpu_usage": 12])
        let recorded = try registry.defenderReports(tenant: Registry.defaultTenant, thing: reporter.udid.rawValue, limit: 1).first
        report.expect(
            answers.first?.accepted == true && recorded?.signed == true,
            "device \(reporter.udid) measures its ports, connections and traffic, signs the report (COSE_Sign1, its own key) and Hallmark verifies it: \(recorded?.datapoints.prefix(90) ?? "")…")

        let key = try fleet[1].signingKey()
        var forged = try COSESign1.sign(
            DeviceMetrics().report(id: Int64(Date().timeIntervalSince1970) + 10, since: nil), with: key, keyID: nil)
        forged[forged.count - 80] ^= 0x01
        let tampered = try await DefenderAgent(state: fleet[1], host: "localhost", port: mqttPort).publish(signedMessage: forged)
        report.expect(
            !tampered.accepted && tampered.hallmarkCode == HallmarkError.Code.reportSignatureInvalid.rawValue,
            "a report changed after signing is refused: \(tampered.hallmarkCode ?? "?")")

        let events = try await DefenderAgent(state: failedOver, host: "localhost", port: mqttPort).reportOnce()
        let logged = try registry.events(udid: failedOver.udid.rawValue).filter { $0.action == .defenderEvent }.map(\.code)
        report.expect(
            events.dropFirst().allSatisfy(\.accepted) && logged.contains(SecurityEvent.Kind.failoverBoot.rawValue) && logged.contains(SecurityEvent.Kind.tamper.rawValue),
            "device \(failedOver.udid), which failed over in scene 24, sends its boot loader's events signed at its next report: \(Set(logged).sorted().joined(separator: ", ")), each in the signed log")

        let rogue = fleet[2]
        guard let certificate = try rogue.certificate() else { return report.fail("device \(rogue.udid) has no certificate") }
        let tls = try HTTPSConnection.ClientTLS(trustRoots: rogue.trustRoots(), identity: ([certificate], rogue.privateKey))
        let client = try await MQTTClient.connect(
            host: "localhost", port: mqttPort, tls: tls.context, serverHostname: "localhost", clientID: rogue.udid.rawValue, version: .v5)
        for index in 0..<3 {
            try? await client.publish(topic: "things/someone-else/commands", payload: ByteBuffer(string: "\(index)"), qos: .atLeastOnce)
        }
        let lastDenial = Date()
        let ended = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await client.closed.get()) != nil }
            group.addTask {
                try? await Task.sleep(for: .seconds(3))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        let took = Date().timeIntervalSince(lastDenial)
        client.close()
        let violation = try registry.violations(tenant: Registry.defaultTenant, activeOnly: true).first { $0.thing == rogue.udid.rawValue }
        let quarantined = try registry.device(rogue.udid)?.status == .quarantined
        report.expect(
            ended && took < 1.5 && violation?.mitigations == "quarantine-device" && quarantined,
            "device \(rogue.udid) publishes where its policy refuses, three times: the alarm (\(violation?.behavior ?? "?"), in-alarm) quarantines it and its session ends \(String(format: "%.2f", took)) s after the last denial")

        let open = #"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}"#
        _ = try await registry.putPolicy(name: "wide-open", document: open, tenant: Registry.defaultTenant, now: Date())
        let findings = try AuditService(registry: registry, files: files, interval: nil, logger: quiet).run(tenant: nil)
        let shared = findings.first { $0.checkName == AuditCheck.deviceCertificateShared.rawValue }
        let broad = findings.first { $0.checkName == AuditCheck.policyOverlyPermissive.rawValue && $0.resourceIdentifier == "wide-open" }
        report.expect(
            shared != nil && broad != nil,
            "the audit finds the certificate the clone of scene 16 shared (\(shared?.severity.rawValue ?? "?"), \(shared?.reasonForNonComplianceCode ?? "?")) and the policy wide-open (\(broad?.reasonForNonComplianceCode ?? "?")), \(findings.count) findings in all")
    }
}
