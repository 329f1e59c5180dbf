import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import MQTTCore
import NIOCore
import X509

/// `hallmark-bench provision`: fleet provisioning by claim over MQTT (CreateCertificateFromCsr, then
/// RegisterThing, per device) against EST enrollment over HTTPS, both on keep-alive connections to
/// the same `hallmark serve` child, in alternating rounds of new devices.
struct BenchProvisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision", abstract: "Provisionings by claim per second over MQTT against EST enrollments per second, same server, same run.")

    @Option(help: "Devices per load in each round (one CSR each).") var devices = 2000
    @Option(help: "Rounds: an EST load, then a provisioning load, each with new devices.") var rounds = 3
    @Option(help: "Concurrent connections (HTTPS for EST, claim MQTT sessions for provisioning).") var concurrency = 32
    @OptionGroup var binary: HallmarkBinaryOption

    func run() async throws {
        guard rounds >= 1, devices >= 1 else { throw ValidationError("--rounds and --devices must be at least 1.") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        print("hallmark-bench provision: \(rounds) rounds of \(devices) EST enrollments and \(devices) provisionings by claim, \(concurrency) connections, \(ProcessInfo.processInfo.activeProcessorCount) cores")

        let authority = try AuthorityFiles(dataDirectory: data).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let est = try await BenchFleet.make(count: devices * rounds, prefix: "E")
        let claimed = try await BenchFleet.make(count: devices * rounds, prefix: "C")
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        _ = try registry.importAllowlist(.init(entries: (est + claimed).map(\.entry)), source: "bench", skipInvalid: false, now: Date())
        let template = #"""
            {"Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
             "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}}},
               "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}}}}
            """#
        try registry.putProvisioningTemplate(
            .init(tenant: Registry.defaultTenant, name: "bench", product: nil, document: template, udidParameter: "SerialNumber", hookURL: nil, createdAt: Date()),
            now: Date())
        let claim = try ClaimIssuance.issue(
            registry: registry, authority: authority, tenant: Registry.defaultTenant, product: Registry.defaultProduct, template: "bench",
            maxUses: nil, validDays: 30, now: Date())
        registry.checkpoint()
        let csrs = try claimed.map { try CertificateSigningRequest(derEncoded: $0.csrDER).serializeAsPEM().pemString }

        let server = try BenchServer.start(hallmark: binary.executable(), dataDirectory: data, passphrase: passphraseText)
        defer { server.stop() }
        try await Task.sleep(for: .seconds(1))
        var ratios: [Double] = []
        var failures = 0
        for round in 0..<rounds {
            let slice = round * devices..<(round + 1) * devices
            let cpuBefore = server.cpuSeconds()
            let enrolled = try await BenchLoad.run(fleet: Array(est[slice]), port: server.port, trust: [authority.root], concurrency: concurrency)
            let cpuBetween = server.cpuSeconds()
            let provisioned = try await Self.provision(
                csrs: Array(csrs[slice]), udids: claimed[slice].map(\.entry.udid.rawValue), port: server.mqttPort, trust: [authority.root],
                claim: claim, concurrency: concurrency)
            let cpuAfter = server.cpuSeconds()
            let ratio = provisioned.throughput / enrolled.throughput
            ratios.append(ratio)
            failures += enrolled.failed + provisioned.failed
            print(String(
                format: "round %d: EST %.0f/s (%d ok, %d failed, p50 %.1f ms, server CPU %.0f µs each); by claim over MQTT %.0f/s (%d ok, %d failed, p50 %.1f ms, server CPU %.0f µs each); ratio %.2f",
                round + 1, enrolled.throughput, enrolled.succeeded, enrolled.failed, enrolled.p50 * 1000,
                (cpuBetween - cpuBefore) / Double(max(enrolled.succeeded, 1)) * 1e6, provisioned.throughput,
                provisioned.succeeded, provisioned.failed, provisioned.p50 * 1000, (cpuAfter - cpuBetween) / Double(max(provisioned.succeeded, 1)) * 1e6,
                ratio))
        }
        print(String(format: "provisionings by claim per EST enrollment: %@", ratios.map { String(format: "%.2f", $0) }.joined(separator: " / ")))
        // A failure is a broken benchmark, not a slow one.
        if failures > 0 { throw ValidationError("\(failures) enrollments or provisionings failed") }
    }

    struct Result {
        var succeeded: Int
        var failed: Int
        var seconds: Double
        var p50: Double
        var throughput: Double { Double(succeeded) / seconds }
    }

    /// Each lane is one claim session (a provisioning station's), taking its devices one after
    /// another: CreateCertificateFromCsr, then RegisterThing with the token.
    static func provision(
        csrs: [String], udids: [String], port: Int, trust: [Certificate], claim: ClaimIssuance.Issued, concurrency: Int
    ) async throws -> Result {
        let tls = try HTTPSConnection.ClientTLS(trustRoots: trust, identity: (claim.chain, Certificate.PrivateKey(claim.key)))
        let started = ContinuousClock.now
        let lanes = try await withThrowingTaskGroup(of: (ok: Int, failed: Int, latencies: [Double]).self) { group in
            for lane in 0..<min(concurrency, csrs.count) {
                group.addTask {
                    let (answers, continuation) = AsyncStream.makeStream(of: PublishPacket.self)
                    let client = try await MQTTClient.connect(
                        host: "localhost", port: port, tls: tls.context, serverHostname: "localhost", clientID: "station-\(lane)", version: .v5,
                        keepAlive: 60, onMessage: { continuation.yield($0) })
                    let create = "$aws/certificates/create-from-csr/json"
                    let register = "$aws/provisioning-templates/bench/provision/json"
                    _ = try await client.subscribe([create + "/+", register + "/+"].map { Subscription(filter: $0, qos: .atLeastOnce) })
                    var iterator = answers.makeAsyncIterator()
                    var result = (ok: 0, failed: 0, latencies: [Double]())
                    for index in stride(from: lane, to: csrs.count, by: concurrency) {
                        let begun = ContinuousClock.now
                        try await client.publish(
                            topic: create, payload: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["certificateSigningRequest": csrs[index]])),
                            qos: .atLeastOnce)
                        guard let created = await iterator.next(), created.topic.hasSuffix("/accepted"),
                            let object = try? JSONSerialization.jsonObject(with: Data(created.payload.readableBytesView)) as? [String: Any],
                            let token = object["certificateOwnershipToken"] as? String
                        else {
                            result.failed += 1
                            continue
                        }
                        try await client.publish(
                            topic: register,
                            payload: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: [
                                "certificateOwnershipToken": token, "parameters": ["SerialNumber": udids[index]],
                            ])),
                            qos: .atLeastOnce)
                        guard let registered = await iterator.next(), registered.topic.hasSuffix("/accepted") else {
                            result.failed += 1
                            continue
                        }
                        result.ok += 1
                        let elapsed = ContinuousClock.now - begun
                        result.latencies.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                    }
                    continuation.finish()
                    await client.disconnect()
                    return result
                }
            }
            var all: [(ok: Int, failed: Int, latencies: [Double])] = []
            for try await lane in group { all.append(lane) }
            return all
        }
        let elapsed = ContinuousClock.now - started
        let latencies = lanes.flatMap(\.latencies).sorted()
        return Result(
            succeeded: lanes.map(\.ok).reduce(0, +), failed: lanes.map(\.failed).reduce(0, +),
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            p50: latencies.isEmpty ? 0 : latencies[latencies.count / 2])
    }
}
