import ArgumentParser
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import MQTTCore
import X509

/// `hallmark-bench mqtt`: the broker of a `hallmark serve` child process against Mosquitto, started
/// in the same run with the same CA, certificates and an equivalent ACL, under the same loads.
struct BenchMQTTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt", abstract: "MQTT broker: mTLS connections/s and publish throughput vs. Mosquitto; idle-session memory.")

    @Option(help: "Seconds per measurement.") var seconds = 5.0
    @Option(help: "Concurrent clients connecting and disconnecting.") var connectWorkers = 16
    @Option(help: "Publishers (one subscriber receives from all).") var publishers = 8
    @Option(help: "Idle sessions to hold open for the memory figure, over mutual TLS and as many again over plain TCP (both brokers; this process needs two file descriptors per session).")
    var idleSessions = 9_000
    @Option(help: "The loads to run, comma-separated: connections, qos0, qos1, idle.") var loads = "connections,qos0,qos1,idle"
    @OptionGroup var binary: HallmarkBinaryOption
    @Flag(inversion: .prefixedNo, help: "Pin each broker to CPU 0 and this load generator to the other CPUs, so that neither broker takes the load's CPU.")
    var pin = true

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-mqtt-\(UUID().uuidString.prefix(8))")
        defer { if ProcessInfo.processInfo.environment["HALLMARK_BENCH_KEEP"] == nil { try? FileManager.default.removeItem(at: directory) } }
        let data = directory.appendingPathComponent("data")
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        say("hallmark-bench mqtt: \(seconds) s per load, \(connectWorkers) connecting clients, \(publishers) publishers + 1 subscriber, 64-byte payloads, \(ProcessInfo.processInfo.activeProcessorCount) cores")

        // The same CA and device certificates for both brokers.
        let authority = try AuthorityFiles(dataDirectory: data).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let registry = try Registry(path: data.appendingPathComponent("registry.sqlite").path)
        let count = max(connectWorkers, publishers) + 2
        let identities = try await makeIdentities(count: count, authority: authority, registry: registry)
        let reader = identities[count - 2]
        let idle = identities[count - 1]
        try await grant(registry: registry, reader: reader.thing, idle: idle.thing)

        let server = try BenchServer.start(
            hallmark: binary.executable(), dataDirectory: data, passphrase: passphraseText, plainPort: try MosquittoServer.freePort())
        defer { server.stop() }
        let serverKey = Certificate.PrivateKey(P256Key.make())
        let serverCertificate = try authority.issueServerCertificate(key: serverKey.publicKey, hostNames: ["localhost", "127.0.0.1"], now: Date())
        let mosquitto = try MosquittoServer(
            // Its own directory, readable by the user Mosquitto drops privileges to.
            directory: FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-mosquitto-\(UUID().uuidString.prefix(8))"),
            caChainPEM: try authority.chain.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n",
            certificatePEM: try serverCertificate.serializeAsPEM().pemString + "\n",
            keyPEM: try serverKey.serializeAsPEM().pemString + "\n", reader: reader.thing)
        defer { mosquitto.stop() }
        try await Task.sleep(for: .milliseconds(500))

        let connecting = Array(identities.prefix(connectWorkers))
        let publishing = Array(identities.prefix(publishers))
        func line(_ name: String, _ hallmark: Double, _ reference: Double, _ unit: String, target: Double) {
            let ratio = hallmark / max(reference, 1e-9)
            say(String(format: "%@: Hallmark %.0f %@, Mosquitto %.0f %@, ratio %.2f (target >= %.1f%@)",
                         name, hallmark, unit, reference, unit, ratio, target, ratio >= target ? "" : ", NOT MET"))
        }

        let selected = Set(loads.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        say("server pid \(server.process.processIdentifier), Mosquitto pid \(mosquitto.process.processIdentifier)")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if pin && cores >= 2 {
            let pinned = ProcessCPU.pin(pid: server.process.processIdentifier, cpus: "0")
                && ProcessCPU.pin(pid: mosquitto.process.processIdentifier, cpus: "0")
                && ProcessCPU.pin(pid: getpid(), cpus: "1-\(cores - 1)")
            say(pinned ? "pinned: each broker on CPU 0 (one core each, Hallmark's event loops included), the load on CPUs 1-\(cores - 1)"
                       : "could not pin the processes (taskset); brokers and load share all CPUs")
        }
        if selected.contains("connections") {
            let hConn = try await BenchMQTTLoad.connections(port: server.mqttPort, identities: connecting, workers: connectWorkers, seconds: seconds)
            let mConn = try await BenchMQTTLoad.connections(port: mosquitto.port, identities: connecting, workers: connectWorkers, seconds: seconds)
            line("(a) mTLS connections", hConn.rate, mConn.rate, "conn/s", target: 1.5)
            if hConn.failures + mConn.failures > 0 { say("    failed connections: Hallmark \(hConn.failures), Mosquitto \(mConn.failures)") }
        }

        for qos in [QoS.atMostOnce, .atLeastOnce] where selected.contains("qos\(qos.rawValue)") {
            let h = try await BenchMQTTLoad.throughput(
                port: server.mqttPort, publishers: publishing, subscriber: reader, qos: qos, seconds: seconds, brokerCPU: server.cpuSeconds)
            let m = try await BenchMQTTLoad.throughput(
                port: mosquitto.port, publishers: publishing, subscriber: reader, qos: qos, seconds: seconds, brokerCPU: mosquitto.cpuSeconds)
            line("(b) QoS \(qos.rawValue) delivered to the subscriber", h.delivered, m.delivered, "msg/s", target: 1.5)
            say(String(format: "    published: Hallmark %d, Mosquitto %d; never delivered: Hallmark %d (%.1f %%), Mosquitto %d (%.1f %%)",
                         h.published, m.published, h.lost, percent(h.lost, of: h.published), m.lost, percent(m.lost, of: m.published)))
            say(String(format: "    broker CPU per delivered message: Hallmark %.1f µs, Mosquitto %.1f µs",
                         h.cpuPerMessage * 1e6, m.cpuPerMessage * 1e6))
        }

        if idleSessions > 0 && selected.contains("idle") {
            // Sessions over plain TCP, then as many over mutual TLS beside them (nothing freed between):
            // the difference is what TLS keeps per session.
            let h = try await idleMemory(server.residentMegabytes, tlsPort: server.mqttPort, plainPort: server.plainPort, identity: idle)
            let m = try await idleMemory(mosquitto.residentMegabytes, tlsPort: mosquitto.port, plainPort: mosquitto.plainPort, identity: idle)
            say(String(format: "(c) %d idle mTLS sessions: Hallmark %.1f KB per session (%.0f MB projected for 50,000; target < 2048 MB), Mosquitto %.1f KB per session",
                         idleSessions, h.tls, h.baseMB + h.tls * 50_000 / 1024, m.tls))
            say(String(format: "    the same over plain TCP, opened first: Hallmark %.1f KB, Mosquitto %.1f KB per session; so TLS keeps Hallmark %.1f KB, Mosquitto %.1f KB per session",
                         h.plain, m.plain, h.tls - h.plain, m.tls - m.plain))
        }
    }

    /// A broker's resident memory per idle session (KB), over plain TCP and over mutual TLS.
    private func idleMemory(_ resident: () -> Double, tlsPort: Int, plainPort: Int, identity: BenchIdentity) async throws
        -> (tls: Double, plain: Double, baseMB: Double)
    {
        let before = resident()
        let plain = try await BenchMQTTLoad.idleSessions(port: plainPort, tls: nil, count: idleSessions)
        try await Task.sleep(for: .seconds(1))
        let withPlain = resident()
        let secured = try await BenchMQTTLoad.idleSessions(port: tlsPort, tls: identity.tls, count: idleSessions)
        try await Task.sleep(for: .seconds(1))
        let after = resident()
        for client in plain + secured { client.close() }
        let count = Double(idleSessions)
        return ((after - withPlain) * 1024 / count, (withPlain - before) * 1024 / count, before)
    }

    private func makeIdentities(count: Int, authority: IssuingAuthority, registry: Registry) async throws -> [BenchIdentity] {
        let keys = (0..<count).map { _ in Certificate.PrivateKey(P256Key.make()) }
        let entries = try keys.enumerated().map { index, key in
            AllowlistEntry(udid: try UDID(validating: "MQ-\(index)"), key: try DeviceKey(key.publicKey), line: index + 2)
        }
        _ = try registry.importAllowlist(.init(entries: entries), source: "bench", skipInvalid: false, now: Date())
        let enrollment = EnrollmentService(registry: registry, authority: authority)
        var identities: [BenchIdentity] = []
        for (index, key) in keys.enumerated() {
            let issued = try await enrollment.enroll(csrDER: try DeviceCSR.make(commonName: "MQ-\(index)", key: key).derBytes(), source: "bench")
            let tls = try HTTPSConnection.ClientTLS(trustRoots: [authority.root], identity: ([issued.certificate], key))
            identities.append(BenchIdentity(thing: issued.record.thingName, tls: tls.context))
        }
        return identities
    }

    /// The reader may receive every thing's telemetry; the idle identity may connect as `idle-*`.
    /// The idle load opens its sessions with one certificate, which is what a cloned device looks
    /// like: the bench's product answers that with the alarm only, so the sessions stay open.
    private func grant(registry: Registry, reader: String, idle: String) async throws {
        try registry.setCloneResponse(.alarm, tenant: Registry.defaultTenant, product: Registry.defaultProduct, now: Date())
        try await registry.putPolicy(name: "bench-reader", document: """
            {"Statement": [{"Effect": "Allow", "Action": ["iot:Subscribe"], "Resource": "topicfilter/things/*"},
                           {"Effect": "Allow", "Action": ["iot:Receive"], "Resource": "topic/things/*"}]}
            """, now: Date())
        try await registry.setPolicyAttachment(policy: "bench-reader", thing: reader, attached: true, now: Date())
        try await registry.putPolicy(name: "bench-idle", document: """
            {"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "client/idle-*"}]}
            """, now: Date())
        try await registry.setPolicyAttachment(policy: "bench-idle", thing: idle, attached: true, now: Date())
    }
}

/// Prints a line at once (stdout to a file or pipe is otherwise buffered until exit).
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

private func percent(_ part: Int, of whole: Int) -> Double { whole == 0 ? 0 : Double(part) * 100 / Double(whole) }
