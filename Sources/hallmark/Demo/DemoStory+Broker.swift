import Crypto
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkStore
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import X509

/// The broker's scenes: telemetry, policy, live revocation, an OEM's own CA.
extension DemoStory {
    func brokerScenes(_ devices: [DeviceState], mqttPort: Int, registry: Registry, trust: Certificate) async throws {
        let dashboard = devices[3]
        let sensors = Array(devices[4...6])
        let victim = devices[7]

        report.scene("8. Telemetry: devices connect to the MQTT broker with their certificates and publish readings")
        try await registry.putPolicy(name: "dashboard", document: Self.dashboardPolicy, now: Date())
        try await registry.setPolicyAttachment(policy: "dashboard", thing: dashboard.udid.rawValue, attached: true, now: Date())
        try await Task.sleep(for: .milliseconds(400))  // the broker picks up policy changes from the event log
        let received = NIOLockedValueBox<[String]>([])
        let (watcher, _) = try await TelemetryPublisher(state: dashboard, host: "localhost", port: mqttPort).connect { publish in
            received.withLockedValue { $0.append(publish.topic) }
        }
        _ = try await watcher.subscribe([
            Subscription(filter: "things/+/temperature", qos: .atLeastOnce),
            Subscription(filter: "$aws/events/certificates/registered/+", qos: .atLeastOnce),
        ])
        try await withThrowingTaskGroup(of: Int.self) { group in
            for sensor in sensors {
                group.addTask {
                    try await TelemetryPublisher(state: sensor, host: "localhost", port: mqttPort, interval: .milliseconds(200), logger: quiet)
                        .run(count: 3)
                }
            }
            let sent = try await group.reduce(0, +)
            report.expect(sent == 9, "3 sensors published \(sent) readings to things/<thing>/temperature (QoS 1, mutual TLS)")
        }
        try await Task.sleep(for: .milliseconds(300))
        let readings = received.withLockedValue { $0.filter { $0.hasSuffix("/temperature") }.count }
        report.expect(readings == 9, "the dashboard (a thing with a read-only policy) received all \(readings)")
        try await Task.sleep(for: .milliseconds(1200))  // telemetry is written once a second
        if let last = try registry.latestTelemetry(thing: sensors[0].udid.rawValue).first {
            report.expect(true, "the registry keeps the last value per thing: \(String(decoding: last.payload, as: UTF8.self))")
        } else {
            report.fail("no telemetry stored for \(sensors[0].udid)")
        }

        report.scene("9. A thing publishes into another thing's topics")
        let (intruder, _) = try await TelemetryPublisher(state: sensors[0], host: "localhost", port: mqttPort).connect()
        let target = "things/\(sensors[1].udid)/temperature"
        do {
            try await intruder.publish(topic: target, payload: ByteBuffer(string: #"{"temperature":99}"#), qos: .atLeastOnce)
            report.fail("publishing into \(target) was NOT refused")
        } catch let refusal as MQTTClient.Refused {
            try await Task.sleep(for: .milliseconds(300))
            let logged = try registry.events(udid: nil, code: HallmarkError.Code.notAuthorized.rawValue, limit: 5)
                .contains { $0.detail.contains(target) }
            report.expect(refusal.reason == .notAuthorized && logged, "refused by policy: PUBACK 0x87, not_authorized event logged")
        }
        await intruder.disconnect()

        report.scene("10. A device is revoked while connected")
        let (session, _) = try await TelemetryPublisher(state: victim, host: "localhost", port: mqttPort).connect()
        guard let serial = try victim.certificate()?.serialHex else { return report.fail("no certificate to revoke") }
        let revokedAt = Date()
        try await registry.setCertificateStatus(serial, to: .revoked, reason: "demo: device stolen", now: Date())
        try await session.closed.get()
        let cut = Date().timeIntervalSince(revokedAt)
        report.expect(cut < 1, "`hallmark cert revoke` ended its live session after \(String(format: "%.2f", cut)) s (DISCONNECT 0x98), no restart")
        do {
            _ = try await TelemetryPublisher(state: victim, host: "localhost", port: mqttPort).connect()
            report.fail("the revoked device reconnected")
        } catch let refusal as MQTTClient.Refused {
            report.expect(refusal.reason == .notAuthorized, "its reconnect is refused: \(refusal.message ?? "not authorised")")
        }

        try await ownCAScene(mqttPort: mqttPort, registry: registry, trust: trust, received: received)
        await watcher.disconnect()
    }

    private func ownCAScene(mqttPort: Int, registry: Registry, trust: Certificate, received: NIOLockedValueBox<[String]>) async throws {
        report.scene("11. An OEM brings its own CA: just-in-time provisioning and registration")
        let code = try registry.registrationCode(now: Date())
        let globex = try OEMAuthority(name: "Globex Device CA")
        let template = ProvisioningTemplate(product: Registry.defaultProduct, thingName: "globex-${iot:Certificate.Subject.CommonName}")
        let registered = try await registry.registerCA(
            globex.certificate, verification: try globex.issue(commonName: code, clientAuth: false).certificate, template: template, now: Date())
        report.say("Globex proved it holds its CA key (verification certificate CN = registration code); CA id \(registered.id.prefix(16))…")
        try await Task.sleep(for: .milliseconds(400))  // the broker reloads its CAs from the event log
        let sensor = try globex.issue(commonName: "sensor-1", clientAuth: true)
        let tls = try HTTPSConnection.ClientTLS(trustRoots: [trust], identity: ([sensor.certificate], sensor.key))
        do {
            let client = try await MQTTClient.connect(host: "localhost", port: mqttPort, tls: tls.context, clientID: "globex-sensor-1")
            try await client.publish(topic: "things/globex-sensor-1/temperature", payload: ByteBuffer(string: #"{"temperature":20.5}"#), qos: .atLeastOnce)
            report.expect(true, "JITP: a Globex device unknown to Hallmark connected on its first try and published as thing globex-sensor-1")
            await client.disconnect()
        } catch {
            report.fail("the JITP device was refused: \(error)")
        }

        let initech = try OEMAuthority(name: "Initech Device CA")
        let jitr = try await registry.registerCA(
            initech.certificate, verification: try initech.issue(commonName: code, clientAuth: false).certificate, template: nil, now: Date())
        try await Task.sleep(for: .milliseconds(400))
        let pending = try initech.issue(commonName: "meter-9", clientAuth: true)
        let pendingTLS = try HTTPSConnection.ClientTLS(trustRoots: [trust], identity: ([pending.certificate], pending.key))
        do {
            _ = try await MQTTClient.connect(host: "localhost", port: mqttPort, tls: pendingTLS.context, clientID: "meter-9")
            report.fail("a JITR device connected before activation")
        } catch let refusal as MQTTClient.Refused {
            try await Task.sleep(for: .milliseconds(300))
            let announced = received.withLockedValue { $0.contains("$aws/events/certificates/registered/\(jitr.id)") }
            report.expect(
                refusal.reason == .notAuthorized && announced,
                "JITR: an Initech device's first connection registered its certificate PENDING_ACTIVATION, was announced on "
                    + "$aws/events/certificates/registered/<CA id> and closed, as AWS IoT does")
        }
        try await registry.setCertificateStatus(CertificateFingerprint.sha256(pending.certificate), to: .active, reason: "demo: approved", now: Date())
        try await Task.sleep(for: .milliseconds(400))
        do {
            let client = try await MQTTClient.connect(host: "localhost", port: mqttPort, tls: pendingTLS.context, clientID: "meter-9")
            report.expect(true, "after `hallmark cert activate` the Initech device connects")
            await client.disconnect()
        } catch {
            report.fail("the activated JITR device was refused: \(error)")
        }
    }

    static let dashboardPolicy = """
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/${iot:Connection.Thing.ThingName}"},
          {"Effect": "Allow", "Action": "iot:Subscribe",
           "Resource": ["topicfilter/things/+/temperature", "topicfilter/$aws/events/certificates/registered/+"]},
          {"Effect": "Allow", "Action": "iot:Receive", "Resource": ["topic/things/*/temperature", "topic/$aws/events/certificates/registered/*"]}]}
        """
}

/// An OEM's own certificate authority, made in the demo as the OEM would with its own tools.
struct OEMAuthority {
    let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let certificate: Certificate

    init(name: String) throws {
        let subject = try DistinguishedName { OrganizationName(name.components(separatedBy: " ").first ?? name); CommonName(name) }
        certificate = try CertificateProfiles.root(key: key, name: subject, now: Date(), years: 5)
    }

    /// Issues a certificate; `clientAuth` makes it a device certificate.
    func issue(commonName: String, clientAuth: Bool) throws -> (certificate: Certificate, key: Certificate.PrivateKey) {
        let leafKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            if clientAuth { try ExtendedKeyUsage([.clientAuth]) }
        }
        let leaf = try Certificate(
            version: .v3, serialNumber: CertificateProfiles.randomSerial(), publicKey: leafKey.publicKey,
            notValidBefore: Date() - 60, notValidAfter: Date() + 86_400 * 365, issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: key)
        return (leaf, leafKey)
    }
}
