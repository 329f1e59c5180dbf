import ArgumentParser
import Crypto
import Firmware
import Foundation
import HallmarkCore
import HallmarkDevice
import HallmarkServices
import HallmarkStore
import Logging
import MQTTCore
import NIOCore
import SwiftASN1
import X509

/// `hallmark-bench firmware`: per-device key wraps against the P-256 key-agreement ceiling; a
/// rollout over many things keeping its configured rate; and devices downloading a release at
/// once over mutual TLS from `hallmark serve`, against nginx serving the same bytes over TLS.
struct BenchFirmwareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firmware", abstract: "Key wraps per second, a rollout's pace, and firmware downloads beside nginx.")

    @OptionGroup var hallmark: HallmarkBinaryOption
    @Option(help: "Key wraps timed (and as many key agreements).") var wraps = 5000
    @Option(help: "Things the paced rollout targets (0 skips it).") var things = 100_000
    @Option(help: "The rollout's maximumPerMinute.") var perMinute = 1000
    @Option(help: "Simulated minutes of the rollout.") var minutes = 10
    @Option(help: "Devices downloading at once (0 skips the download benchmark).") var devices = 1000
    @Option(help: "The release's size in bytes.") var size = 1 << 20
    @Option(help: "Rounds of each download load (interleaved).") var rounds = 2
    @Option(help: "Devices sending job execution updates, one in flight each (0 skips the benchmark).") var updateDevices = 8
    @Option(help: "Seconds of each update load.") var updateSeconds = 5

    func run() async throws {
        try wrapBenchmark()
        if things > 0 { try await rolloutBenchmark() }
        if devices > 0 { try await downloadBenchmark() }
        if updateDevices > 0 { try await updatesBenchmark() }
    }

    // MARK: Job updates through the broker

    /// Each device sends UpdateJobExecution (IN_PROGRESS with statusDetails) and waits for its
    /// reply, again and again; beside it, in the same run, the same devices each publish a QoS 1
    /// message to their own topic and wait for it to come back: the broker's round trip without
    /// the registry's transaction.
    func updatesBenchmark() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-jobs-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        let files = AuthorityFiles(dataDirectory: directory)
        let authority = try files.initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        let made = try await BenchFleet.parallel(count: updateDevices) { index -> (AllowlistEntry, Certificate.PrivateKey, [UInt8]) in
            let key = Certificate.PrivateKey(P256Key.make())
            let udid = try UDID(validating: "JOB-\(index)")
            return (AllowlistEntry(udid: udid, key: try DeviceKey(key.publicKey), line: index), key, try DeviceCSR.make(commonName: udid.rawValue, key: key).derBytes())
        }
        _ = try registry.importAllowlist(.init(entries: made.map(\.0)), source: "bench", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: authority)
        var fleet: [Device] = []
        for (entry, key, csr) in made {
            fleet.append(Device(udid: entry.udid.rawValue, key: key, certificate: try await service.enroll(csrDER: csr, source: nil).certificate))
        }
        try registry.createJob(
            tenant: Registry.defaultTenant, id: "updates", document: Array(#"{"operation":"bench"}"#.utf8), releaseID: nil,
            targets: fleet.map(\.udid), configuration: JobConfiguration(), now: Date())
        let server = try BenchServer.start(hallmark: try hallmark.executable(), dataDirectory: directory, passphrase: passphraseText)
        defer { server.stop() }
        while try registry.job(tenant: Registry.defaultTenant, id: "updates").counts["SCHEDULED"] != nil { try await Task.sleep(for: .milliseconds(200)) }
        let root = try files.loadRoot()
        print("hallmark-bench firmware: \(updateDevices) devices, one request in flight each, \(updateSeconds) s per load")
        let cpuBefore = server.cpuSeconds()
        let updates = try await roundTrips(fleet, port: server.mqttPort, root: root) { thing, token in
            ("$aws/things/\(thing)/jobs/updates/update",
             #"{"status":"IN_PROGRESS","statusDetails":{"receive":"\#(token.prefix(8))"},"clientToken":"\#(token)"}"#,
             "$aws/things/\(thing)/jobs/updates/update/accepted")
        }
        let updateCPU = server.cpuSeconds() - cpuBefore
        let cpuEcho = server.cpuSeconds()
        let echoes = try await roundTrips(fleet, port: server.mqttPort, root: root) { thing, token in
            ("things/\(thing)/echo", #"{"clientToken":"\#(token)"}"#, "things/\(thing)/echo")
        }
        let echoCPU = server.cpuSeconds() - cpuEcho
        print("  job execution updates/s: \(Int(updates)) (server CPU \(String(format: "%.0f", updateCPU / (updates * Double(updateSeconds)) * 1e6)) µs each)")
        print("  QoS 1 echo round trips/s, same devices: \(Int(echoes)) (server CPU \(String(format: "%.0f", echoCPU / (echoes * Double(updateSeconds)) * 1e6)) µs each); ratio \(String(format: "%.2f", updates / echoes))")
    }

    /// Round trips per second: each device publishes (QoS 1) and waits for the message `request`
    /// names to come back, for `updateSeconds`.
    func roundTrips(
        _ fleet: [Device], port: Int, root: Certificate, request: @escaping @Sendable (String, String) -> (String, String, String)
    ) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(updateSeconds)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for device in fleet {
                group.addTask {
                    let (stream, continuation) = AsyncStream<PublishPacket>.makeStream()
                    let tls = try HTTPSConnection.ClientTLS(trustRoots: [root], identity: ([device.certificate], device.key))
                    let client = try await MQTTClient.connect(
                        host: "localhost", port: port, tls: tls.context, serverHostname: "localhost", clientID: device.udid, onMessage: { continuation.yield($0) })
                    defer { client.close() }
                    let (_, _, replyTopic) = request(device.udid, "x")
                    _ = try await client.subscribe([Subscription(filter: replyTopic, qos: .atLeastOnce)])
                    var iterator = stream.makeAsyncIterator()
                    var count = 0
                    while ContinuousClock.now < deadline {
                        let token = UUID().uuidString
                        let (topic, body, _) = request(device.udid, token)
                        try await client.publish(topic: topic, payload: ByteBuffer(string: body), qos: .atLeastOnce)
                        while let message = await iterator.next() {
                            if String(buffer: message.payload).contains(token) { break }
                        }
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / Double(updateSeconds)
    }

    // MARK: Key wraps

    func wrapBenchmark() throws {
        let device = P256.KeyAgreement.PrivateKey().publicKey
        let contentKey = (0..<16).map { _ in UInt8.random(in: 0...255) }
        var clock = ContinuousClock.now
        for _ in 0..<wraps { _ = try EC256KeyWrap.wrap(contentKey, for: device) }
        let wrapSeconds = (ContinuousClock.now - clock).seconds
        clock = ContinuousClock.now
        for _ in 0..<wraps { _ = try P256.KeyAgreement.PrivateKey().sharedSecretFromKeyAgreement(with: device) }
        let ceilingSeconds = (ContinuousClock.now - clock).seconds
        let rate = Double(wraps) / wrapSeconds, ceiling = Double(wraps) / ceilingSeconds
        print("hallmark-bench firmware: per-device key wraps (ENC_EC256), one core")
        print("  wraps/s: \(Int(rate)); P-256 key agreement ceiling (ephemeral key + ECDH): \(Int(ceiling))/s; ratio \(String(format: "%.2f", rate / ceiling))")
    }

    // MARK: A paced rollout

    func rolloutBenchmark() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-rollout-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphrase = try Passphrase("bench-\(UUID().uuidString)")
        let authority = try AuthorityFiles(dataDirectory: directory).initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        print("hallmark-bench firmware: a rollout over \(things) things at maximumPerMinute \(perMinute) (enrolling them first)")
        let fleet = try await BenchFleet.make(count: things, prefix: "RO")
        _ = try registry.importAllowlist(.init(entries: fleet.map(\.entry)), source: "bench", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: authority)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for part in 0..<4 {
                group.addTask {
                    for device in stride(from: part, to: fleet.count, by: 4).map({ fleet[$0] }) {
                        _ = try await service.enroll(csrDER: device.csrDER, source: nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        let configuration = try JobConfiguration(parsing: Array(#"{"jobExecutionsRolloutConfig": {"maximumPerMinute": \#(perMinute)}}"#.utf8))
        var now = Date()
        let created = ContinuousClock.now
        try registry.createJob(
            tenant: Registry.defaultTenant, id: "bench", document: Array(#"{"operation":"bench"}"#.utf8), releaseID: nil,
            targets: fleet.map(\.entry.udid.rawValue), configuration: configuration, now: now)
        let createSeconds = (ContinuousClock.now - created).seconds
        let rollout = RolloutService(registry: registry, logger: Logger(label: "bench"))
        var perMinuteReleased: [Int] = []
        var stepTimes: [Double] = []
        var released = 0
        for _ in 0..<minutes {
            let start = released
            for _ in 0..<60 {
                let step = ContinuousClock.now
                try rollout.step(now: now)
                stepTimes.append((ContinuousClock.now - step).seconds)
                now = now.addingTimeInterval(1)
                released = try registry.job(tenant: Registry.defaultTenant, id: "bench").counts["QUEUED"] ?? 0
            }
            perMinuteReleased.append(released - start)
        }
        stepTimes.sort()
        let median = stepTimes[stepTimes.count / 2] * 1000, worst = stepTimes.last! * 1000
        print("  job created over \(things) things in \(String(format: "%.2f", createSeconds)) s")
        print("  released per simulated minute: \(perMinuteReleased.map(String.init).joined(separator: ", ")) (configured \(perMinute))")
        print("  rollout step (once a second): median \(String(format: "%.1f", median)) ms, worst \(String(format: "%.1f", worst)) ms")
    }

    // MARK: Downloads beside nginx

    struct Device: Sendable {
        var udid: String
        var key: Certificate.PrivateKey
        var certificate: Certificate
    }

    func downloadBenchmark() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-firmware-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphraseText = "bench-\(UUID().uuidString)"
        let passphrase = try Passphrase(passphraseText)
        let files = AuthorityFiles(dataDirectory: directory)
        let authority = try files.initialise(organization: "Bench", passphrase: passphrase, now: Date())
        let registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        print("hallmark-bench firmware: \(devices) devices download a \(size)-byte release at once over mutual TLS")
        let made = try await BenchFleet.parallel(count: devices) { index -> (AllowlistEntry, Certificate.PrivateKey, [UInt8]) in
            let key = Certificate.PrivateKey(P256Key.make())
            let udid = try UDID(validating: "FW-\(index)")
            let firmware = try DeviceKey(Certificate.PrivateKey(P256Key.make()).publicKey)
            let entry = AllowlistEntry(udid: udid, key: try DeviceKey(key.publicKey), line: index, firmwareKey: firmware)
            return (entry, key, try DeviceCSR.make(commonName: udid.rawValue, key: key).derBytes())
        }
        _ = try registry.importAllowlist(.init(entries: made.map(\.0)), source: "bench", skipInvalid: false, now: Date())
        let service = EnrollmentService(registry: registry, authority: authority)
        var fleet: [Device] = []
        for (entry, key, csr) in made {
            fleet.append(Device(udid: entry.udid.rawValue, key: key, certificate: try await service.enroll(csrDER: csr, source: nil).certificate))
        }
        let catalog = FirmwareCatalog(registry: registry, tenant: Registry.defaultTenant)
        _ = try catalog.createKeys(product: Registry.defaultProduct, passphrase: passphrase)
        let release = try catalog.master(
            product: Registry.defaultProduct, binary: (0..<size).map { _ in UInt8.random(in: 0...255) }, version: ImageVersion(major: 1),
            securityCounter: 1, passphrase: passphrase)
        _ = try JobCatalog(registry: registry, tenant: Registry.defaultTenant).create(
            release: release.id, document: nil, things: fleet.map(\.udid), product: nil, configuration: JobConfiguration(), jobID: "bench", urlBase: nil)
        let (_, copy) = try await catalog.deviceImage(release: release.id, udid: fleet[0].udid, passphrase: passphrase)

        let server = try BenchServer.start(hallmark: try hallmark.executable(), dataDirectory: directory, passphrase: passphraseText)
        defer { server.stop() }
        // The rollout releases the executions within its first second.
        while try registry.job(tenant: Registry.defaultTenant, id: "bench").counts["SCHEDULED"] != nil { try await Task.sleep(for: .milliseconds(200)) }
        // Beside the data directory, not in it: nginx's workers (nobody) cannot enter a 0700 directory.
        let nginxDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-bench-nginx-\(UUID().uuidString.prefix(8))")
        let nginx = try NginxServer.start(directory: nginxDirectory, file: copy)
        defer {
            nginx.stop()
            try? FileManager.default.removeItem(at: nginxDirectory)
        }
        let root = try files.loadRoot()
        let path = JobCatalog.downloadPath(release: release.id)
        // A warm-up for both: Hallmark opens the release's content key on its first download.
        _ = try await downloadAll(Array(fleet.prefix(10)), port: server.port, path: path, trust: [root], expect: copy.count)
        _ = try await downloadAll(Array(fleet.prefix(10)), port: nginx.port, path: "/image", trust: [nginx.certificate], expect: copy.count)
        var hallmarkRates: [Double] = [], nginxRates: [Double] = []
        for _ in 0..<rounds {
            let cpu = server.cpuSeconds()
            hallmarkRates.append(try await downloadAll(fleet, port: server.port, path: path, trust: [root], expect: copy.count))
            print("  hallmark serve: \(String(format: "%.1f", hallmarkRates.last!)) MB/s (server CPU \(String(format: "%.1f", server.cpuSeconds() - cpu)) s)")
            nginxRates.append(try await downloadAll(fleet, port: nginx.port, path: "/image", trust: [nginx.certificate], expect: copy.count))
            print("  nginx:          \(String(format: "%.1f", nginxRates.last!)) MB/s")
        }
        let best = hallmarkRates.max()!, peer = nginxRates.max()!
        print("  aggregate MB/s, best of \(rounds): Hallmark \(String(format: "%.1f", best)), nginx \(String(format: "%.1f", peer)); ratio \(String(format: "%.2f", best / peer)) (target 0.8)")
    }

    /// Every device downloads at once; returns the aggregate MB/s.
    func downloadAll(_ fleet: [Device], port: Int, path: String, trust: [Certificate], expect: Int) async throws -> Double {
        let contexts = try fleet.map { try HTTPSConnection.ClientTLS(trustRoots: trust, identity: ([$0.certificate], $0.key)) }
        let start = ContinuousClock.now
        let bytes = try await withThrowingTaskGroup(of: Int.self) { group in
            for tls in contexts {
                group.addTask {
                    var received = 0
                    let (status, _) = try await HTTPSConnection.with(host: "127.0.0.1", port: port, tls: tls) { connection in
                        try await connection.stream(path) { received += $0.readableBytes }
                    }
                    guard status == 200, received == expect else { throw ValidationError("a download got HTTP \(status), \(received) bytes") }
                    return received
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(bytes) / 1_048_576 / (ContinuousClock.now - start).seconds
    }
}

/// Debian's nginx serving one file over TLS 1.2/1.3 (P-256 certificate, client certificates
/// requested as Hallmark requests them), two workers, from a directory of its own.
final class NginxServer: @unchecked Sendable {
    let process: Process
    let port: Int
    let certificate: Certificate

    private init(process: Process, port: Int, certificate: Certificate) {
        self.process = process
        self.port = port
        self.certificate = certificate
    }

    static func start(directory: URL, file: [UInt8]) throws -> NginxServer {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") else {
            throw ValidationError("nginx is not installed (apt-get install nginx-light); it is this benchmark's peer. Pass --devices 0 to skip.")
        }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("www"), withIntermediateDirectories: true)
        try Data(file).write(to: directory.appendingPathComponent("www/image"))
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("127.0.0.1") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(86_400), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
            }, issuerPrivateKey: .init(key))
        try Data(try certificate.serializeAsPEM().pemString.utf8).write(to: directory.appendingPathComponent("cert.pem"))
        try Data(key.pemRepresentation.utf8).write(to: directory.appendingPathComponent("key.pem"))
        let port = Int.random(in: 20_000..<40_000)
        let config = """
            worker_processes 2; daemon off; pid \(directory.path)/nginx.pid; error_log \(directory.path)/error.log;
            worker_rlimit_nofile 16384;
            events { worker_connections 8192; }
            http {
              access_log off; sendfile on; keepalive_timeout 5;
              client_body_temp_path \(directory.path)/tmp; proxy_temp_path \(directory.path)/tmp; fastcgi_temp_path \(directory.path)/tmp;
              uwsgi_temp_path \(directory.path)/tmp; scgi_temp_path \(directory.path)/tmp;
              server {
                listen 127.0.0.1:\(port) ssl;
                ssl_certificate \(directory.path)/cert.pem; ssl_certificate_key \(directory.path)/key.pem;
                ssl_protocols TLSv1.2 TLSv1.3; ssl_verify_client optional_no_ca;
                location / { root \(directory.path)/www; }
              }
            }
            """
        try Data(config.utf8).write(to: directory.appendingPathComponent("nginx.conf"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-c", directory.appendingPathComponent("nginx.conf").path, "-p", directory.path]
        try process.run()
        // nginx is ready when its port accepts.
        for _ in 0..<50 {
            if (try? Data(contentsOf: directory.appendingPathComponent("nginx.pid"))) != nil { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return NginxServer(process: process, port: port, certificate: certificate)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
