import Crypto
import Firmware
import HallmarkCore
import MQTTCore
import NIOCore
import X509

import Foundation

/// The device's Device Defender agent: it measures the device's network (``DeviceMetrics``),
/// signs each report as a COSE_Sign1 with the key of its certificate and publishes it on
/// `$hallmark/things/<thing>/defender/metrics/cose`, and sends the security events its boot
/// loader raised (tamper, fail-over boot, failed self-test, refused rollback) the same way on
/// `$hallmark/things/<thing>/events/cose`. Report and event ids only ever increase (kept in the
/// state directory), so a replayed message is refused.
public struct DefenderAgent: Sendable {
    public var state: DeviceState
    public var host: String
    public var port: Int

    /// Hallmark's answer to one report or event.
    public struct Answer: Sendable {
        public var accepted: Bool
        /// AWS's `ErrorCode` and Hallmark's code, for a rejection.
        public var errorCode: String?
        public var hallmarkCode: String?
        public var message: String?
    }

    public init(state: DeviceState, host: String, port: Int) {
        self.state = state
        self.host = host
        self.port = port
    }

    var reportIDFile: URL { state.directory.appendingPathComponent("defender-report-id") }
    var eventIDFile: URL { state.directory.appendingPathComponent("defender-event-id") }
    var totalsFile: URL { state.directory.appendingPathComponent("defender-totals.json") }
    static func pendingEventsFile(_ directory: URL) -> URL { directory.appendingPathComponent("security-events.jsonl") }

    /// The next id: above the last one used, and at least the time in seconds (as AWS's devices use).
    func nextID(_ file: URL) throws -> Int64 {
        let last = (try? String(contentsOf: file, encoding: .utf8)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        let next = max(last + 1, Int64(Date().timeIntervalSince1970))
        try DeviceFirmware.replace(file, with: Data(String(next).utf8))
        return next
    }

    /// Connects, sends one signed report of what it measures now (and `custom` metrics), then any
    /// pending security events; returns the answers, the report's first.
    public func reportOnce(custom: [String: Double] = [:]) async throws -> [Answer] {
        var session = try await Session.open(self)
        defer { session.close() }
        var metrics = DeviceMetrics.collect()
        metrics.custom = custom
        let previous = (try? Data(contentsOf: totalsFile)).flatMap { try? JSONDecoder().decode(Totals.self, from: $0) }?.totals
        let payload = metrics.report(id: try nextID(reportIDFile), since: previous)
        try? DeviceFirmware.replace(totalsFile, with: try JSONEncoder().encode(Totals(totals: metrics.totals)))
        var answers = [try await session.send(payload, on: "$hallmark/things/\(session.thing)/defender/metrics/cose")]
        answers += try await sendPendingEvents(&session)
        await session.client.disconnect()
        return answers
    }

    /// Connects and publishes a COSE_Sign1 message exactly as given (a test's or an auditor's: a
    /// replayed or altered message), on the report or event topic.
    public func publish(signedMessage: [UInt8], event: Bool = false) async throws -> Answer {
        var session = try await Session.open(self)
        defer { session.close() }
        let topic = "$hallmark/things/\(session.thing)/" + (event ? "events/cose" : "defender/metrics/cose")
        let answer = try await session.send(signed: signedMessage, on: topic)
        await session.client.disconnect()
        return answer
    }

    /// Connects and sends one security event now (besides any pending ones).
    public func raise(_ kind: SecurityEvent.Kind, detail: String?) async throws -> Answer {
        Self.queue([(kind, detail)], in: state.directory)
        var session = try await Session.open(self)
        defer { session.close() }
        let answers = try await sendPendingEvents(&session)
        await session.client.disconnect()
        return answers.last ?? Answer(accepted: false, errorCode: "Nothing", hallmarkCode: nil, message: "no event was pending")
    }

    private func sendPendingEvents(_ session: inout Session) async throws -> [Answer] {
        let file = Self.pendingEventsFile(state.directory)
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        var answers: [Answer] = []
        var left: [Substring] = []
        for line in text.split(separator: "\n") {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                let kind = (object["type"] as? String).flatMap(SecurityEvent.Kind.init(rawValue:)), let time = object["time"] as? Int64
            else { continue }
            let event = SecurityEvent(eventID: try nextID(eventIDFile), kind: kind, time: time, detail: object["detail"] as? String)
            do {
                answers.append(try await session.send(event.encoded, on: "$hallmark/things/\(session.thing)/events/cose"))
            } catch {
                left.append(line)
            }
        }
        try DeviceFirmware.replace(file, with: Data(left.joined(separator: "\n").utf8))
        return answers
    }

    /// Keeps security events to send at the next report (the boot loader runs before the network).
    public static func queue(_ events: [(SecurityEvent.Kind, String?)], in directory: URL) {
        guard !events.isEmpty else { return }
        let file = pendingEventsFile(directory)
        var text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        for (kind, detail) in events {
            var object: [String: Any] = ["type": kind.rawValue, "time": Int64(Date().timeIntervalSince1970)]
            if let detail { object["detail"] = detail }
            if let line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
                text += String(decoding: line, as: UTF8.self) + "\n"
            }
        }
        try? DeviceFirmware.replace(file, with: Data(text.utf8))
    }

    /// The security events among a boot loader's: what the cloud must hear of. A boot from the
    /// other slot because the one before failed verification is a fail-over boot too.
    public static func securityEvents(_ events: [BootLoader.Event]) -> [(SecurityEvent.Kind, String?)] {
        var out: [(SecurityEvent.Kind, String?)] = []
        var failedSlots: Set<Int> = []
        for event in events {
            switch event {
            case .tamperDetected(let slot):
                failedSlots.insert(slot)
                out.append((.tamper, "slot \(BootState.names[slot]) failed verification"))
            case .failedOver(let from, let to):
                out.append((.failoverBoot, "failed over from slot \(BootState.names[from]) to \(BootState.names[to])"))
                failedSlots.removeAll()
            case .booted(let slot, let image, _) where failedSlots.contains(where: { $0 != slot }):
                let from = failedSlots.first { $0 != slot }!
                out.append((.failoverBoot, "booted slot \(BootState.names[slot]) (\(image.version)) after slot \(BootState.names[from]) failed verification"))
                failedSlots.removeAll()
            case .bootFailed(let slot, let count):
                out.append((.selfTestFailure, "slot \(BootState.names[slot]) failed its self-test (boot \(count))"))
            case .refused(let slot, _, let code) where code == "firmware_rollback" || code == "firmware_downgrade":
                out.append((.rollbackRefused, "slot \(BootState.names[slot]): \(code)"))
            default:
                break
            }
        }
        return out
    }

    struct Totals: Codable {
        var bytesIn, bytesOut, packetsIn, packetsOut: Int64
        init(totals: DeviceMetrics.NetworkTotals) {
            bytesIn = totals.bytesIn
            bytesOut = totals.bytesOut
            packetsIn = totals.packetsIn
            packetsOut = totals.packetsOut
        }
        var totals: DeviceMetrics.NetworkTotals {
            var out = DeviceMetrics.NetworkTotals()
            out.bytesIn = bytesIn
            out.bytesOut = bytesOut
            out.packetsIn = packetsIn
            out.packetsOut = packetsOut
            return out
        }
    }

    /// A connection with the device's certificate, subscribed to its Defender answers.
    struct Session {
        let client: MQTTClient
        let thing: String
        let key: P256.Signing.PrivateKey
        let keyID: [UInt8]
        /// Where the last message signed is kept (`defender-last.cose`), for an auditor to check.
        let lastSigned: URL
        let continuation: AsyncStream<PublishPacket>.Continuation
        var answers: AsyncStream<PublishPacket>.AsyncIterator

        static func open(_ agent: DefenderAgent) async throws -> Session {
            guard let certificate = try agent.state.certificate() else {
                throw HallmarkError(.clientCertificateRequired, "Device \(agent.state.udid) has no certificate yet.", remedy: "Boot it first (enrol).")
            }
            guard let thing = agent.state.thingName() ?? certificate.subject.commonName else {
                throw HallmarkError(.subjectMismatch, "The device certificate names no thing.", remedy: "Enrol the device again.")
            }
            let tls = try HTTPSConnection.ClientTLS(trustRoots: agent.state.trustRoots(), identity: ([certificate], agent.state.privateKey))
            let (stream, continuation) = AsyncStream.makeStream(of: PublishPacket.self)
            let client = try await MQTTClient.connect(
                host: agent.host, port: agent.port, tls: tls.context, serverHostname: agent.host, clientID: thing, version: .v5, keepAlive: 30,
                onMessage: { continuation.yield($0) })
            _ = try await client.subscribe(
                ["$hallmark/things/\(thing)/defender/metrics/cose/+", "$hallmark/things/\(thing)/events/cose/+"].map {
                    Subscription(filter: $0, qos: .atLeastOnce)
                })
            let key = try agent.state.signingKey()
            let keyID = Array(SHA256.hash(data: try certificate.serializeAsPEM().derBytes))
            return Session(
                client: client, thing: thing, key: key, keyID: keyID, lastSigned: agent.state.directory.appendingPathComponent("defender-last.cose"),
                continuation: continuation, answers: stream.makeAsyncIterator())
        }

        func close() {
            continuation.finish()
            client.close()
        }

        /// Signs and publishes one message and waits (10 s at most) for its answer.
        mutating func send(_ payload: [UInt8], on topic: String) async throws -> Answer {
            let signed = try COSESign1.sign(payload, with: key, keyID: keyID)
            try? DeviceFirmware.replace(lastSigned, with: Data(signed))
            return try await send(signed: signed, on: topic)
        }

        mutating func send(signed: [UInt8], on topic: String) async throws -> Answer {
            try await client.publish(topic: topic, payload: ByteBuffer(bytes: signed), qos: .atLeastOnce)
            let continuation = self.continuation
            let timeout = Task {
                try await Task.sleep(for: .seconds(10))
                continuation.yield(PublishPacket(topic: FleetProvisioningClient.timeoutMarker, payload: ByteBuffer()))
            }
            defer { timeout.cancel() }
            while let message = await answers.next(), message.topic != FleetProvisioningClient.timeoutMarker {
                guard message.topic.hasPrefix(topic + "/") else { continue }
                let object = (try? JSONSerialization.jsonObject(with: Data(message.payload.readableBytesView))) as? [String: Any] ?? [:]
                let details = object["statusDetails"] as? [String: Any]
                return Answer(
                    accepted: message.topic.hasSuffix("/accepted"), errorCode: details?["ErrorCode"] as? String,
                    hallmarkCode: object["hallmarkCode"] as? String, message: details?["ErrorMessage"] as? String)
            }
            throw HallmarkError(.internalError, "No answer on \(topic)/accepted or /rejected within 10 s.", remedy: "Check that Hallmark's broker is running.")
        }
    }
}
