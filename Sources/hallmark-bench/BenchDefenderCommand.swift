import ArgumentParser
import Crypto
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import MQTTCore
import NIOCore
import X509

/// `hallmark-bench defender`: signed Device Defender reports (COSE_Sign1, ES256) verified and
/// recorded per second through the broker, beside the P-256 verify ceiling of one core measured
/// in the same run; and security profiles' behaviours evaluated for a fleet of 100,000 things.
struct BenchDefenderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "defender", abstract: "Signed Defender reports per second against the P-256 verify ceiling; behaviours evaluated for a large fleet.")

    @Option(help: "Devices, each with its own MQTT connection and certificate.") var devices = 32
    @Option(help: "Signed reports per device in each round.") var reports = 200
    @Option(help: "Reports in flight per connection.") var window = 8
    @Option(help: "Rounds of the report load.") var rounds = 3
    @Option(help: "Things in the evaluation benchmark.") var fleet = 100_000
    @OptionGroup var binary: HallmarkBinaryOption

    func run() async throws {
        guard devices >= 1, reports >= 1, rounds >= 1, window >= 1 else { throw ValidationError("counts must be at least 1") }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("hallmark-bench defender: \(rounds) rounds of \(devices) devices × \(reports) signed reports, \(window) in flight each; \(fleet) things evaluated; \(cores) cores")
        let ceiling = Self.verifyCeiling()
        print(String(format: "P-256 verify ceiling (one core, this process): %.0f verifies/s (%.1f µs each)", ceiling, 1e6 / ceiling))
        try await reportLoad(ceiling: ceiling)
        try await evaluation()
    }

    /// ECDSA P-256 verifications per second on one core, of a report-sized Sig_structure.
    static func verifyCeiling() -> Double {
        let key = P256.Signing.PrivateKey()
        let message = [UInt8](repeating: 0x5a, count: 400)
        let signature = try! key.signature(for: message)
        var count = 0
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(1) {
            for _ in 0..<100 where key.publicKey.isValidSignature(signature, for: message) { count += 1 }
        }
        return Double(count) / seconds(ContinuousClock.now - start)
    }

    static func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }

    func reportLoad(ceiling: Double) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let passphraseText = "bench-\(UUID().uuidString)"
        let authority = try AuthorityFiles(dataDirectory: data).initialise(organization: "Bench", passphrase: try Passphrase(passphraseText), now: Date())
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        let keys = (0..<devices).map { _ in P256.Signing.PrivateKey() }
        var parsed = AllowlistParser.Result()
        parsed.entries = try keys.enumerated().map { index, key in
            AllowlistEntry(udid: try UDID(validating: "DF-\(index)"), key: try DeviceKey(Certificate.PublicKey(key.publicKey)), line: index + 1)
        }
        parsed.rowsRead = keys.count
        _ = try registry.importAllowlist(parsed, source: "bench", skipInvalid: false, now: Date())
        let enrollment = EnrollmentService(registry: registry, authority: authority)
        var certificates: [Certificate] = []
        for (index, key) in keys.enumerated() {
            let csr = try DeviceCSR.make(commonName: "DF-\(index)", key: Certificate.PrivateKey(key)).derBytes()
            certificates.append(try Certificate(derEncoded: try await enrollment.enroll(csrDER: csr, source: nil).record.der))
        }
        // No throttling: the load sends reports back to back (a fleet at AWS's 300 s would need
        // ~300 times as many devices for the same rate).
        try await registry.setDefenderSettings(tenant: "default", product: "default", signedOnly: true, minimumInterval: 0, now: Date())
        registry.checkpoint()
        // Every report signed before the clock starts: the load generator only sends.
        let total = reports * rounds
        let signed: [[[UInt8]]] = try await BenchFleet.parallel(count: devices) { index in
            try (0..<total).map { sequence in
                var metrics = DeviceMetrics()
                metrics.listeningTCPPorts = [22, 443, 8883]
                metrics.establishedConnections = [("10.0.0.\(index % 250 + 1):8883", 40000 + sequence % 1000)]
                metrics.totals.bytesIn = Int64(sequence * 1000)
                metrics.custom = ["cpu_usage": Double(sequence % 90)]
                return try COSESign1.sign(metrics.report(id: Int64(sequence + 1), since: nil), with: keys[index], keyID: nil)
            }
        }
        let server = try BenchServer.start(hallmark: binary.executable(), dataDirectory: data, passphrase: passphraseText)
        defer { server.stop() }
        try await Task.sleep(for: .seconds(1))
        let trust = [authority.root]
        var ratios: [Double] = []
        var failures = 0
        for round in 0..<rounds {
            let cpuBefore = server.cpuSeconds()
            let started = ContinuousClock.now
            let outcomes = try await withThrowingTaskGroup(of: (ok: Int, failed: Int).self) { group in
                for index in 0..<devices {
                    let batch = Array(signed[index][round * reports..<(round + 1) * reports])
                    let certificate = certificates[index]
                    let key = keys[index]
                    let port = server.mqttPort
                    let window = self.window
                    group.addTask {
                        try await Self.lane(batch, thing: "DF-\(index)", certificate: certificate, key: key, trust: trust, port: port, window: window)
                    }
                }
                var all: [(ok: Int, failed: Int)] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
            let elapsed = Self.seconds(ContinuousClock.now - started)
            let ok = outcomes.map(\.ok).reduce(0, +)
            failures += outcomes.map(\.failed).reduce(0, +)
            let rate = Double(ok) / elapsed
            let cpu = (server.cpuSeconds() - cpuBefore) / Double(max(ok, 1)) * 1e6
            ratios.append(rate / ceiling)
            print(String(
                format: "round %d: %.0f signed reports/s verified and recorded (%d accepted, %d not), server CPU %.0f µs each; ratio to the verify ceiling %.2f",
                round + 1, rate, ok, outcomes.map(\.failed).reduce(0, +), cpu, rate / ceiling))
        }
        print("signed reports per verify ceiling: " + ratios.map { String(format: "%.2f", $0) }.joined(separator: " / "))
        if failures > 0 { throw ValidationError("\(failures) reports were not accepted") }
    }

    /// One device's connection: `window` reports in flight, one more sent per answer.
    static func lane(
        _ reports: [[UInt8]], thing: String, certificate: Certificate, key: P256.Signing.PrivateKey, trust: [Certificate], port: Int, window: Int
    ) async throws -> (ok: Int, failed: Int) {
        let tls = try HTTPSConnection.ClientTLS(trustRoots: trust, identity: ([certificate], Certificate.PrivateKey(key)))
        let (answers, continuation) = AsyncStream.makeStream(of: PublishPacket.self)
        let client = try await MQTTClient.connect(
            host: "localhost", port: port, tls: tls.context, serverHostname: "localhost", clientID: thing, version: .v5, keepAlive: 60,
            onMessage: { continuation.yield($0) })
        let topic = "$hallmark/things/\(thing)/defender/metrics/cose"
        _ = try await client.subscribe([Subscription(filter: topic + "/+", qos: .atMostOnce)])
        var iterator = answers.makeAsyncIterator()
        var sent = 0
        var result = (ok: 0, failed: 0)
        while sent < min(window, reports.count) {
            try await client.publish(topic: topic, payload: ByteBuffer(bytes: reports[sent]), qos: .atMostOnce)
            sent += 1
        }
        while result.ok + result.failed < reports.count, let answer = await iterator.next() {
            if answer.topic.hasSuffix("/accepted") { result.ok += 1 } else { result.failed += 1 }
            if sent < reports.count {
                try await client.publish(topic: topic, payload: ByteBuffer(bytes: reports[sent]), qos: .atMostOnce)
                sent += 1
            }
        }
        continuation.finish()
        await client.disconnect()
        return result
    }

    /// Behaviours of three profiles evaluated for `fleet` things: one report each (AWS's period is
    /// 300 s, so the fleet's reports take at least that long to arrive), the fleet's p90 recomputed,
    /// and one tick of cloud-side counts for every thing.
    func evaluation() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        let profile = #"""
            {"behaviors": [
              {"name": "denials", "metric": "aws:num-authorization-failures", "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300}},
              {"name": "sent", "metric": "aws:num-messages-sent", "criteria": {"comparisonOperator": "less-than", "value": {"count": 1000}, "durationSeconds": 300}},
              {"name": "ports", "metric": "aws:listening-tcp-ports", "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22, 443, 8883]}}},
              {"name": "peers", "metric": "aws:destination-ip-addresses", "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]}}},
              {"name": "out", "metric": "aws:all-bytes-out", "criteria": {"comparisonOperator": "less-than", "value": {"count": 10000000}}},
              {"name": "cpu", "metric": "cpu_usage", "criteria": {"comparisonOperator": "less-than-equals", "statisticalThreshold": {"statistic": "p90"}}}]}
            """#
        try registry.putSecurityProfile(tenant: "default", name: "bench", product: "default", document: profile, replace: false, now: Date())
        let service = DefenderService(registry: registry, webhook: nil, logger: .init(label: "bench"))
        await service.reloadProfiles()
        var metrics = DeviceMetrics()
        metrics.listeningTCPPorts = [22, 443]
        metrics.establishedConnections = [("10.1.2.3:8883", 40001)]
        let report = try DefenderReport.decode(metrics.report(id: 1, since: nil), format: .cbor)
        var base = report.datapoints
        let started = ContinuousClock.now
        var changes = 0
        for index in 0..<fleet {
            base["cpu_usage"] = .number(Double(index % 100))
            changes += service.evaluate(device: .init(tenant: "default", thing: "T-\(index)", product: "default", udid: nil), datapoints: base).count
        }
        let deviceSeconds = Self.seconds(ContinuousClock.now - started)
        let thresholdStart = ContinuousClock.now
        service.recomputeThresholds()
        let thresholdSeconds = Self.seconds(ContinuousClock.now - thresholdStart)
        // The same fleet connected: its things' products known, one tick's counts for each.
        try registry.execute(
            sql: """
                WITH RECURSIVE n(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM n WHERE v < \(fleet - 1))
                INSERT INTO things (tenant_id, name, udid, product_id, created_at) SELECT 'default', 'T-' || v, NULL, 'default', 0 FROM n
                """)
        for index in 0..<fleet { service.observe(tenant: "default", thing: "T-\(index)", .sent(count: 1, largest: 100)) }
        _ = await service.evaluateCloud(now: Date())  // reads the products once
        for index in 0..<fleet {
            service.observe(tenant: "default", thing: "T-\(index)", .sent(count: 1, largest: 100))
            service.observe(tenant: "default", thing: "T-\(index)", .received(count: 1))
        }
        let cloudStart = ContinuousClock.now
        changes += await service.evaluateCloud(now: Date()).count
        let cloudSeconds = Self.seconds(ContinuousClock.now - cloudStart)
        print(String(
            format: "evaluation: %d things' reports against 5 device-side behaviours in %.2f s (%.1f µs each; AWS's report period is 300 s, %.0f× headroom); the fleet's p90 in %.3f s; one 200 ms tick of cloud-side counts for %d things in %.3f s; %d alarms changed",
            fleet, deviceSeconds, deviceSeconds / Double(fleet) * 1e6, 300 / deviceSeconds, thresholdSeconds, fleet, cloudSeconds, changes))
    }
}
