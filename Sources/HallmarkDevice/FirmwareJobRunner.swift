import Firmware
import HallmarkCore
import Logging
import MQTTCore
import NIOCore

import Foundation

/// The device agent's side of AWS IoT Jobs for firmware, as a device built on the AWS SDK would
/// do it: `start-next` on every connection, the release downloaded (resumably) and verified
/// completely, installed pending a trial boot, rebooted, self-tested by reconnecting over mutual
/// TLS, confirmed, and the outcome reported after the reboot that decided it. The outcome is kept
/// in `job-outcome.json` until Hallmark accepts it, so it is sent again after a reconnect.
public struct FirmwareJobRunner: Sendable {
    public let state: DeviceState
    public let server: DeviceAgent.Server
    public let broker: (host: String, port: Int)
    let logger: Logger

    /// A payload carrying this marker fails its self-test: how a bad release is simulated.
    public static let selfTestFailureMarker = Array("HALLMARK-SELF-TEST-FAILS".utf8)

    public init(state: DeviceState, server: DeviceAgent.Server, broker: (host: String, port: Int), logger: Logger = Logger(label: "hallmark.device")) {
        self.state = state
        self.server = server
        self.broker = broker
        self.logger = logger
    }

    var outcomeFile: URL { state.directory.appendingPathComponent("job-outcome.json") }
    var firmware: DeviceFirmware { DeviceFirmware(state: state) }

    /// An outcome waiting for Hallmark's acceptance.
    struct Outcome: Codable {
        var jobID: String
        var status: String
        var details: [String: String]
    }

    /// What one pass did, per job.
    public struct Report: Sendable {
        public var handled: [(job: String, status: String, details: [String: String])] = []
    }

    /// Connects, re-sends a kept outcome, then takes jobs with `start-next` until none is left.
    /// - Parameter stopDownloadAfter: cut the first download after this many bytes (a power loss).
    public func runOnce(stopDownloadAfter: Int? = nil) async throws -> Report {
        var report = Report()
        var session = try await Connection.open(state: state, broker: broker)
        defer { session.client.close() }
        if let kept = try? JSONDecoder().decode(Outcome.self, from: Data(contentsOf: outcomeFile)) {
            try await send(kept, on: &session)
            report.handled.append((kept.jobID, kept.status, kept.details))
        }
        var cut = stopDownloadAfter
        while true {
            let reply = try await session.request("start-next", ["stepTimeoutInMinutes": 60])
            guard let execution = reply["execution"] as? [String: Any], let jobID = execution["jobId"] as? String else { break }
            let document = execution["jobDocument"] as? [String: Any] ?? [:]
            let outcome: Outcome
            do {
                guard let result = try await handle(jobID: jobID, document: document, session: &session, stopDownloadAfter: cut) else {
                    return report  // the download was cut: the power is gone
                }
                outcome = result
            } catch let refusal as HallmarkError {
                outcome = Outcome(jobID: jobID, status: refusal.code == .firmwareRollback || refusal.code == .firmwareDowngrade ? "REJECTED" : "FAILED",
                                  details: runningDetails().merging(["reason": refusal.code.rawValue]) { $1 })
            }
            cut = nil
            try JSONEncoder().encode(outcome).write(to: outcomeFile)
            try await send(outcome, on: &session)
            report.handled.append((outcome.jobID, outcome.status, outcome.details))
        }
        return report
    }

    /// With no bootable slot, fetches the last good image from Hallmark (its slot records the
    /// release id: the image's digest), writes it and boots it: the seed's restore from an
    /// off-board location.
    /// - Returns: the restored image, or nil when a slot can still boot.
    public func recover() async throws -> SlotImage? {
        let boot = try firmware.bootState()
        guard boot.running == nil else { return nil }
        guard let last = boot.lastGood, last.securityCounter >= boot.securityCounter else {
            throw HallmarkError(.notFound, "The device knows no good release to restore.", remedy: "Install an image with `hallmark device install`.")
        }
        let download = FirmwareDownload(state: state, server: server)
        let path = "/firmware/v1/releases/\(last.digest)/image"
        // The size is the server's: ask for it with a one-byte range first.
        let size = try await Self.size(of: path, state: state, server: server)
        guard let bytes = try await download.fetch(release: last.digest, path: path, size: size) else { return nil }
        download.discard()
        _ = try firmware.restore(bytes)
        _ = try firmware.reboot()
        return last
    }

    static func size(of path: String, state: DeviceState, server: DeviceAgent.Server) async throws -> Int {
        let tls = try HTTPSConnection.ClientTLS(
            trustRoots: state.trustRoots(),
            identity: ([try state.certificate().orThrow(HallmarkError(.clientCertificateRequired, "The device is not enrolled.", remedy: "Boot it first."))], state.privateKey))
        let (status, headers) = try await HTTPSConnection.with(host: server.host, port: server.port, tls: tls) { connection in
            try await connection.stream(path, headers: [("Range", "bytes=0-0")]) { _ in }
        }
        guard status == 206, let total = headers["Content-Range"].first?.split(separator: "/").last.flatMap({ Int($0) }) else {
            throw HallmarkError(.notAuthorized, "Hallmark refused the restore download (HTTP \(status)).", remedy: "See the server's event log.")
        }
        return total
    }

    private func send(_ outcome: Outcome, on session: inout Connection) async throws {
        let reply = try await session.request("\(outcome.jobID)/update", ["status": outcome.status, "statusDetails": outcome.details])
        // Accepted, or refused because it was already recorded (a repeat after a lost reply).
        if reply["code"] == nil || (reply["code"] as? String) == "InvalidStateTransition" {
            try? FileManager.default.removeItem(at: outcomeFile)
        }
    }

    /// The running image, as statusDetails.
    func runningDetails() -> [String: String] {
        guard let image = (try? firmware.bootState())?.runningImage else { return [:] }
        return ["version": image.version.description, "securityCounter": String(image.securityCounter)]
    }

    private func handle(jobID: String, document: [String: Any], session: inout Connection, stopDownloadAfter: Int?) async throws -> Outcome? {
        guard let block = document["hallmark"] as? [String: Any], let release = block["release"] as? String, let size = block["size"] as? Int,
            let file = ((document["afr_ota"] as? [String: Any])?["files"] as? [[String: Any]])?.first,
            let url = file["update_data_url"] as? String
        else {
            return Outcome(jobID: jobID, status: "REJECTED", details: ["reason": "not a firmware job this agent knows"])
        }
        // Checked before a byte is downloaded: a release below the device's counter is refused.
        let boot = try firmware.bootState()
        if let counter = block["securityCounter"] as? Int, counter < Int(boot.securityCounter) {
            throw HallmarkError(.firmwareRollback, "The release's security counter is below the device's.", remedy: "Release a newer image.")
        }
        let path = URL(string: url)?.path.isEmpty == false && url.hasPrefix("http") ? URL(string: url)!.path : url
        _ = try await session.request("\(jobID)/update", ["status": "IN_PROGRESS", "statusDetails": ["receive": "0/\(size)"]])
        let download = FirmwareDownload(state: state, server: server)
        guard let bytes = try await download.fetch(release: release, path: path, size: size, stopAfter: stopDownloadAfter) else { return nil }
        _ = try await session.request("\(jobID)/update", ["status": "IN_PROGRESS", "statusDetails": ["receive": "\(size)/\(size)", "self_test": "ready"]])
        do {
            _ = try firmware.install(bytes)
        } catch {
            download.discard()
            throw error
        }
        download.discard()
        // The reboot that decides: the connection goes down with it.
        session.client.close()
        let (booted, events) = try firmware.reboot()
        logger.info("rebooted", metadata: ["events": "\(events.map(\.report))"])
        guard let running = booted.running, booted.slots[running].state == .trial else {
            session = try await Connection.open(state: state, broker: broker)
            let refused = events.compactMap { event -> String? in if case .refused(_, _, let code) = event { code } else { nil } }.first
            return Outcome(jobID: jobID, status: "FAILED", details: runningDetails().merging(["reason": refused ?? "not booted"]) { $1 })
        }
        // The self-test: the image's own check, then a reconnection over mutual TLS.
        let healthy = !(try firmware.runningPayload().contains(Self.selfTestFailureMarker))
        if healthy, let reconnected = try? await Connection.open(state: state, broker: broker) {
            session = reconnected
            _ = try firmware.confirm()
            return Outcome(
                jobID: jobID, status: "SUCCEEDED",
                details: runningDetails().merging(["reason": "accepted v\(booted.runningImage?.version.description ?? "")", "self_test": "accepted"]) { $1 })
        }
        // Failed: the next reset reverts to the image that ran before.
        _ = try firmware.reboot()
        session = try await Connection.open(state: state, broker: broker)
        return Outcome(jobID: jobID, status: "FAILED", details: runningDetails().merging(["reason": "self_test_failed", "self_test": "rejected"]) { $1 })
    }

    /// An MQTT connection with the jobs topics subscribed and replies matched by client token.
    struct Connection {
        let client: MQTTClient
        let thing: String
        let replies: AsyncStream<PublishPacket>
        /// Feeds `replies`; a request's timer yields a marker into it when the reply is overdue.
        let continuation: AsyncStream<PublishPacket>.Continuation
        var iterator: AsyncStream<PublishPacket>.AsyncIterator

        static func open(state: DeviceState, broker: (host: String, port: Int)) async throws -> Connection {
            let (stream, continuation) = AsyncStream<PublishPacket>.makeStream()
            let publisher = TelemetryPublisher(state: state, host: broker.host, port: broker.port, interval: .seconds(60))
            let (client, thing) = try await publisher.connect(onMessage: { continuation.yield($0) })
            let prefix = "$aws/things/\(thing)/jobs/"
            _ = try await client.subscribe([
                Subscription(filter: prefix + "start-next/+", qos: .atLeastOnce), Subscription(filter: prefix + "+/update/+", qos: .atLeastOnce),
            ])
            client.closed.whenComplete { _ in continuation.finish() }
            return Connection(client: client, thing: thing, replies: stream, continuation: continuation, iterator: stream.makeAsyncIterator())
        }

        /// Publishes a request and waits (up to 10 s) for its reply.
        mutating func request(_ operation: String, _ body: [String: Any]) async throws -> [String: Any] {
            let token = UUID().uuidString
            var payload = body
            payload["clientToken"] = token
            let topic = "$aws/things/\(thing)/jobs/\(operation)"
            try await client.publish(
                topic: topic, payload: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: payload)), qos: .atLeastOnce)
            // The wait ends at the reply, at the timer's marker, or when the connection closes.
            let marker = "$timeout/" + token
            let continuation = self.continuation
            let timer = Task {
                try await Task.sleep(for: .seconds(10))
                continuation.yield(PublishPacket(topic: marker, payload: ByteBuffer(), qos: .atMostOnce))
            }
            defer { timer.cancel() }
            while let message = await iterator.next(), message.topic != marker {
                guard message.topic.hasPrefix(topic + "/"),
                    let reply = (try? JSONSerialization.jsonObject(with: Data(message.payload.readableBytesView))) as? [String: Any],
                    reply["clientToken"] as? String == token
                else { continue }
                return reply
            }
            throw HallmarkError(.protocolViolation, "No reply to \(operation) within 10 seconds (or the connection closed).", remedy: "Check the broker and the thing's policy.")
        }
    }
}
