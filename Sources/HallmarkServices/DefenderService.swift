import Crypto
import HallmarkCore
import HallmarkMetrics
import HallmarkStore
import Logging
import ServiceLifecycle
import Synchronization
import X509

import Foundation

/// Device Defender for Hallmark's broker: verifies, records and answers what devices report
/// (AWS's JSON and CBOR reports, Hallmark's COSE_Sign1-signed reports and security events),
/// counts cloud-side metrics from what the broker sees, evaluates each product's security
/// profiles, and acts on alarms within a second: the violation and its mitigations in one commit,
/// announced on `$hallmark/alarms/…` and to the webhook.
public final class DefenderService: SecurityMonitor, Service, Sendable {
    let registry: Registry
    let webhook: AlarmWebhook?
    let metrics: FleetMetrics?
    let logger: Logger
    /// How long a device-side violation stays open without reports before it is invalidated (AWS: two days).
    let invalidateAfter: TimeInterval
    /// How often pending observations are evaluated.
    static let tick: Duration = .milliseconds(200)
    /// A statistical threshold needs the datapoints of at least this many things.
    public static let minimumFleet = 5

    private let pending = Mutex<[String: [String: CloudCounts]]>([:])
    /// The keys of connections' certificates, by fingerprint, each read and parsed once.
    private let connectionKeys = Mutex<[String: P256.Signing.PublicKey]>([:])
    private let state = Mutex(MonitorState())
    private let publisher = Mutex<(any AlarmPublisher)?>(nil)

    /// What the broker saw of a thing since the last tick.
    struct CloudCounts {
        var sent = 0
        var largest = 0
        var received = 0
        var authorizationFailures = 0
        var connections = 0
        var disconnects = 0
        var sources: [String] = []
    }

    /// Per-second counts of one cloud-side metric, as long as the longest window asks.
    struct Window {
        var buckets: [(second: Int64, count: Int)] = []

        mutating func add(_ count: Int, at second: Int64) {
            guard count > 0 else { return }
            if let last = buckets.last, last.second == second {
                buckets[buckets.count - 1].count += count
            } else {
                buckets.append((second, count))
            }
        }

        /// The count in the `duration` seconds up to `now`, forgetting what is older than an hour.
        mutating func total(over duration: Int, now: Int64) -> Int {
            if let first = buckets.first, first.second <= now - 3600 { buckets.removeAll { $0.second <= now - 3600 } }
            return buckets.reduce(0) { $1.second > now - Int64(duration) ? $0 + $1.count : $0 }
        }
    }

    struct ProfileEntry {
        var name: String
        var profile: SecurityProfile
    }

    struct MonitorState {
        /// Per tenant and product, the profiles that watch its things.
        var profiles: [String: [String: [ProfileEntry]]] = [:]
        var profileStamp: [String] = []
        /// Per tenant, thing, profile and behaviour.
        var standing: [String: BehaviorState] = [:]
        /// Per tenant, profile and statistical behaviour: each thing's latest datapoint, and the threshold.
        var latest: [String: [String: Double]] = [:]
        var thresholds: [String: Double] = [:]
        /// Things' products, read once.
        var products: [String: String] = [:]
        /// Per tenant and thing: windows of the five counted metrics.
        var windows: [String: [String: [Window]]] = [:]
        /// Things with a cloud-side behaviour violating or in alarm: evaluated every tick.
        var watched: Set<String> = []
    }

    /// A behaviour's alarm changed.
    public struct Change: Sendable {
        var tenant: String
        var thing: String
        var profile: String
        var behavior: Behavior
        var mitigations: [SecurityProfile.Mitigation]
        var transition: BehaviorState.Transition
        var value: String
    }

    public init(registry: Registry, webhook: AlarmWebhook?, metrics: FleetMetrics? = nil, invalidateAfter: TimeInterval = 2 * 86_400, logger: Logger) {
        self.registry = registry
        self.webhook = webhook
        self.metrics = metrics
        self.invalidateAfter = invalidateAfter
        self.logger = logger
    }

    public func attach(_ publisher: any AlarmPublisher) {
        self.publisher.withLock { $0 = publisher }
    }

    static func key(_ parts: String...) -> String { parts.joined(separator: "\u{0}") }

    // MARK: Reports

    public func submit(_ submission: DefenderSubmission) async -> DefenderAnswer {
        let answer = await answer(submission)
        (answer.accepted ? metrics?.defenderReportsAccepted : metrics?.defenderReportsRejected)?.increment()
        return answer
    }

    private func answer(_ submission: DefenderSubmission) async -> DefenderAnswer {
        let now = Date()
        let thing = submission.topic.thingName
        let milliseconds = Int64(now.timeIntervalSince1970 * 1000)
        var reportID: Int64?
        do {
            guard thing == submission.thing else {
                throw HallmarkError(
                    .notAuthorized, "Thing \(submission.thing) cannot report for thing \(thing).", remedy: "Report on the connection's own thing's topics.")
            }
            var signed = false
            var payload = submission.payload
            if submission.topic.format == .cose {
                let message = try COSESign1(decoding: submission.payload)
                guard try verified(message, tenant: submission.tenant, thing: thing, fingerprint: submission.fingerprint) else {
                    throw HallmarkError(
                        .reportSignatureInvalid, "The signature is not that of thing \(thing)'s certificate key, over this message.",
                        remedy: "Sign with the key of the thing's active certificate; a message changed after signing is refused.")
                }
                signed = true
                payload = message.payload
            }
            if submission.topic.kind == .event {
                let event = try SecurityEvent(decoding: payload)
                reportID = event.eventID
                try await registry.recordSecurityEvent(tenant: submission.tenant, thing: thing, event: event, source: submission.source, now: now)
                announce(tenant: submission.tenant, topic: AlarmMessage.topicPrefix + "events/" + thing,
                         payload: AlarmMessage.securityEvent(tenant: submission.tenant, thing: thing, event: event, at: now), suppress: false)
                return DefenderAnswer(accepted: true, payload: DefenderReply.accepted(thing: thing, reportID: event.eventID, nowMilliseconds: milliseconds))
            }
            let report = try DefenderReport.decode(payload, format: submission.topic.format)
            reportID = report.reportID
            let datapoints = report.datapoints
            let json = "{" + datapoints.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ":" + $0.value.jsonText }.joined(separator: ",") + "}"
            let subject = try await registry.recordDefenderReport(
                tenant: submission.tenant, thing: thing, reportID: report.reportID, signed: signed, datapoints: json, source: submission.source, now: now)
            let changes = evaluate(device: subject, datapoints: datapoints)
            await apply(changes, now: now)
            return DefenderAnswer(accepted: true, payload: DefenderReply.accepted(thing: thing, reportID: report.reportID, nowMilliseconds: milliseconds))
        } catch {
            let refusal = (error as? HallmarkError)
                ?? HallmarkError(.internalError, "The report could not be recorded.", remedy: "Send it again later.", underlying: error)
            if refusal.code == .internalError { logger.error("defender report failed: \(String(reflecting: refusal))") }
            // Refusals the registry decided are recorded there; the rest here.
            if ![.reportReplayed, .reportThrottled, .reportSignatureRequired].contains(refusal.code) {
                try? await registry.recordDefenderRefusal(
                    refusal, tenant: submission.tenant, thing: submission.thing,
                    action: submission.topic.kind == .event ? .defenderEvent : .defenderReport, source: submission.source,
                    detail: String(submission.topic.topic.prefix(200)), now: now)
            }
            return DefenderAnswer(
                accepted: false, payload: DefenderReply.rejected(thing: thing, reportID: reportID, error: refusal, nowMilliseconds: milliseconds))
        }
    }

    /// Whether one of the thing's active certificates' keys signed the message: first the key of
    /// the certificate the connection presented (the broker ends a session whose certificate is
    /// no longer active), then the thing's other active certificates.
    private func verified(_ message: COSESign1, tenant: String, thing: String, fingerprint: String) throws -> Bool {
        if let key = try connectionKey(tenant: tenant, thing: thing, fingerprint: fingerprint), message.isValidSignature(for: key) { return true }
        for der in try registry.activeCertificates(tenant: tenant, thing: thing) {
            guard let certificate = try? Certificate(derEncoded: der), let key = P256.Signing.PublicKey(certificate.publicKey) else { continue }
            if message.isValidSignature(for: key) { return true }
        }
        return false
    }

    private func connectionKey(tenant: String, thing: String, fingerprint: String) throws -> P256.Signing.PublicKey? {
        let cacheKey = tenant + "\u{0}" + thing + "\u{0}" + fingerprint
        if let known = connectionKeys.withLock({ $0[cacheKey] }) { return known }
        guard !fingerprint.isEmpty, let der = try registry.activeCertificate(tenant: tenant, thing: thing, fingerprint: fingerprint),
            let certificate = try? Certificate(derEncoded: der), let key = P256.Signing.PublicKey(certificate.publicKey)
        else { return nil }
        connectionKeys.withLock { keys in
            if keys.count > 200_000 { keys.removeAll(keepingCapacity: true) }
            keys[cacheKey] = key
        }
        return key
    }

    /// Evaluates a report's datapoints against the profiles of the thing's product (in memory;
    /// the changes are then recorded by ``apply(_:now:)``).
    public func evaluate(device subject: Registry.DefenderSubject, datapoints: [String: MetricValue]) -> [Change] {
        state.withLock { state in
            var changes: [Change] = []
            for entry in state.profiles[subject.tenant]?[subject.product] ?? [] {
                for behavior in entry.profile.behaviors where behavior.source != .cloud {
                    guard let value = datapoints[behavior.metric] else { continue }
                    if let change = Self.datapoint(
                        value, behavior: behavior, profile: entry, tenant: subject.tenant, thing: subject.thing, state: &state)
                    {
                        changes.append(change)
                    }
                }
            }
            return changes
        }
    }

    /// Counts one datapoint of a behaviour for a thing.
    private static func datapoint(
        _ value: MetricValue, behavior: Behavior, profile: ProfileEntry, tenant: String, thing: String, state: inout MonitorState
    ) -> Change? {
        var threshold: Double?
        if case .statistic = behavior.threshold {
            let statKey = key(tenant, profile.name, behavior.name)
            if let number = value.number { state.latest[statKey, default: [:]][thing] = number }
            threshold = state.thresholds[statKey]
        }
        let normal = behavior.isNormal(value, statisticalThreshold: threshold)
        let standingKey = key(tenant, thing, profile.name, behavior.name)
        guard let transition = state.standing[standingKey, default: BehaviorState()].record(normal: normal, behavior) else { return nil }
        return Change(
            tenant: tenant, thing: thing, profile: profile.name, behavior: behavior, mitigations: profile.profile.mitigations,
            transition: transition, value: value.jsonText)
    }

    // MARK: Cloud-side metrics

    public func observe(tenant: String, thing: String, _ kind: CloudObservation) {
        pending.withLock { pending in
            if pending[tenant] == nil { pending[tenant] = [:] }
            pending[tenant]![thing, default: CloudCounts()].add(kind)
        }
    }

    /// Evaluates what the broker saw since the last tick, and the things whose windows still
    /// hold violating counts.
    public func evaluateCloud(now: Date) async -> [Change] {
        let seen = pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        // Products of things not seen before, read off the lock.
        let known = state.withLock { state in state.products }
        var products: [String: String] = [:]
        for (tenant, things) in seen {
            for thing in things.keys where known[Self.key(tenant, thing)] == nil {
                if let product = try? registry.thingProduct(tenant: tenant, thing: thing) { products[Self.key(tenant, thing)] = product }
            }
        }
        let second = Int64(now.timeIntervalSince1970)
        return state.withLock { state in
            state.products.merge(products) { $1 }
            var changes: [Change] = []
            var evaluate: [(String, String)] = state.watched.map { key in
                let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
                return (parts[0], parts[1])
            }
            for (tenant, things) in seen {
                for (thing, counts) in things {
                    let thingKey = Self.key(tenant, thing)
                    guard let product = state.products[thingKey], let profiles = state.profiles[tenant]?[product],
                        profiles.contains(where: { $0.profile.behaviors.contains { $0.source == .cloud } })
                    else { continue }
                    var windows = state.windows[tenant]?[thing] ?? Window.empty
                    windows[0].add(counts.sent, at: second)
                    windows[1].add(counts.received, at: second)
                    windows[2].add(counts.authorizationFailures, at: second)
                    windows[3].add(counts.connections, at: second)
                    windows[4].add(counts.disconnects, at: second)
                    state.windows[tenant, default: [:]][thing] = windows
                    for entry in profiles {
                        for behavior in entry.profile.behaviors where behavior.source == .cloud {
                            var values: [MetricValue] = []
                            switch behavior.metric {
                            case "aws:message-byte-size": if counts.sent > 0 { values.append(.number(Double(counts.largest))) }
                            case "aws:source-ip-address": values = counts.sources.map { .addresses([$0]) }
                            default: continue
                            }
                            for value in values {
                                if let change = Self.datapoint(value, behavior: behavior, profile: entry, tenant: tenant, thing: thing, state: &state) {
                                    changes.append(change)
                                }
                            }
                        }
                    }
                    evaluate.append((tenant, thing))
                }
            }
            var done = Set<String>()
            for (tenant, thing) in evaluate {
                let thingKey = Self.key(tenant, thing)
                guard done.insert(thingKey).inserted, let product = state.products[thingKey], var windows = state.windows[tenant]?[thing] else { continue }
                var watch = false
                for entry in state.profiles[tenant]?[product] ?? [] {
                    for behavior in entry.profile.behaviors where behavior.source == .cloud {
                        guard let index = Window.index(of: behavior.metric), let duration = behavior.durationSeconds else { continue }
                        let count = windows[index].total(over: duration, now: second)
                        if let change = Self.datapoint(
                            .number(Double(count)), behavior: behavior, profile: entry, tenant: tenant, thing: thing, state: &state)
                        {
                            changes.append(change)
                        }
                        let standing = state.standing[Self.key(tenant, thing, entry.name, behavior.name)] ?? BehaviorState()
                        if standing.inAlarm || standing.violating > 0 { watch = true }
                    }
                }
                state.windows[tenant]?[thing] = windows
                if watch { state.watched.insert(thingKey) } else { state.watched.remove(thingKey) }
            }
            return changes
        }
    }

    // MARK: Alarms

    /// Records each change (a violation opened with its mitigations, or closed) and announces it.
    public func apply(_ changes: [Change], now: Date) async {
        for change in changes {
            do {
                switch change.transition {
                case .inAlarm:
                    let id = (0..<16).map { _ in UInt8.random(in: 0...255) }.hexString
                    let record = Registry.ViolationRecord(
                        id: id, tenant: change.tenant, thing: change.thing, profile: change.profile, behavior: change.behavior.name,
                        metric: change.behavior.metric, metricValue: change.value, state: .inAlarm, startedAt: now, updatedAt: now)
                    guard let opened = try await registry.openViolation(record, mitigations: change.mitigations, now: now) else { continue }
                    if opened.mitigations.contains("move-to-product") { state.withLock { _ = $0.products.removeValue(forKey: Self.key(change.tenant, change.thing)) } }
                    logger.warning(
                        "security profile violated",
                        metadata: ["thing": "\(change.thing)", "profile": "\(change.profile)", "behavior": "\(change.behavior.name)", "mitigations": "\(opened.mitigations)"])
                    announce(change, id: opened.id, mitigations: opened.mitigations.split(separator: ",").map(String.init), now: now)
                case .cleared:
                    guard let closed = try await registry.closeViolation(
                        tenant: change.tenant, thing: change.thing, profile: change.profile, behavior: change.behavior.name, state: .cleared,
                        metricValue: change.value, now: now)
                    else { continue }
                    announce(change, id: closed.id, mitigations: [], now: now)
                }
            } catch {
                logger.error("violation not recorded: \(error)")
            }
        }
    }

    private func announce(_ change: Change, id: String, mitigations: [String], now: Date) {
        let payload = AlarmMessage.violation(
            id: id, tenant: change.tenant, thing: change.thing, profile: change.profile, behavior: change.behavior, value: change.value,
            type: change.transition.rawValue, mitigations: mitigations, at: now)
        announce(tenant: change.tenant, topic: AlarmMessage.violationTopic(profile: change.profile, thing: change.thing), payload: payload,
                 suppress: change.behavior.suppressAlerts)
    }

    /// Announces an audit finding on `$hallmark/alarms/audit/<check>` and to the webhook.
    public func announceFinding(_ finding: AuditFinding) {
        guard let payload = try? JSONSerialization.data(withJSONObject: finding.jsonObject, options: [.sortedKeys]) else { return }
        announce(tenant: finding.tenant, topic: AlarmMessage.topicPrefix + "audit/" + finding.checkName, payload: Array(payload), suppress: false)
    }

    private func announce(tenant: String, topic: String, payload: [UInt8], suppress: Bool) {
        guard !suppress else { return }
        publisher.withLock { $0 }?.publishAlarm(tenant: tenant, topic: topic, payload: payload)
        if let webhook {
            let logger = self.logger
            Task {
                if !(await webhook.deliver(payload, logger: logger)) { logger.error("alarm not delivered to the webhook", metadata: ["topic": "\(topic)"]) }
            }
        }
    }

    // MARK: The service

    public func run() async throws {
        await reloadProfiles()
        await loadOpenViolations()
        var ticks = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: Self.tick)
            ticks += 1
            let now = Date()
            await apply(await evaluateCloud(now: now), now: now)
            if ticks % 5 == 0 { await reloadProfiles() }
            if ticks % 5 == 0 { recomputeThresholds() }
            if ticks % 25 == 0 { await sweep(now: now) }
            if ticks % 18_000 == 0 { try? await registry.pruneDefenderReports(before: now.addingTimeInterval(-14 * 86_400)) }
        }
    }

    /// Reads the security profiles again when they changed.
    public func reloadProfiles() async {
        do {
            let records = try registry.securityProfiles(tenant: nil)
            let stamp = records.map { "\($0.tenant)/\($0.name)/\($0.product)/\($0.updatedAt.timeIntervalSince1970)" }
            guard stamp != state.withLock({ $0.profileStamp }) else { return }
            var profiles: [String: [String: [ProfileEntry]]] = [:]
            for record in records {
                guard let parsed = try? record.parsed() else { continue }
                profiles[record.tenant, default: [:]][record.product, default: []].append(ProfileEntry(name: record.name, profile: parsed))
            }
            state.withLock { state in
                state.profiles = profiles
                state.profileStamp = stamp
                state.products.removeAll()
            }
        } catch {
            logger.error("security profiles not read: \(error)")
        }
    }

    /// Open violations stay in alarm across restarts.
    func loadOpenViolations() async {
        guard let open = try? registry.violations(tenant: nil, activeOnly: true, limit: 1_000_000) else { return }
        state.withLock { state in
            for violation in open {
                state.standing[Self.key(violation.tenant, violation.thing, violation.profile, violation.behavior)] = BehaviorState(inAlarm: true)
                state.watched.insert(Self.key(violation.tenant, violation.thing))
            }
        }
    }

    /// The statistical thresholds, from the latest datapoints of each profile's things.
    public func recomputeThresholds() {
        state.withLock { state in
            var thresholds: [String: Double] = [:]
            for (tenant, products) in state.profiles {
                for entry in products.values.flatMap({ $0 }) {
                    for behavior in entry.profile.behaviors {
                        guard case .statistic(let p) = behavior.threshold else { continue }
                        let statKey = Self.key(tenant, entry.name, behavior.name)
                        let values = Array(state.latest[statKey]?.values ?? [:].values)
                        guard values.count >= Self.minimumFleet else { continue }
                        thresholds[statKey] = FleetStatistic.percentile(p, of: values)
                    }
                }
            }
            state.thresholds = thresholds
        }
    }

    /// Things that fell silent: announced once; their device-side violations invalidated after
    /// ``invalidateAfter``.
    func sweep(now: Date) async {
        do {
            for silent in try await registry.flagMissingReports(now: now) {
                announce(tenant: silent.tenant, topic: AlarmMessage.topicPrefix + "reports-missing/" + silent.thing,
                         payload: AlarmMessage.reportsMissing(tenant: silent.tenant, thing: silent.thing, lastReport: silent.lastReport, at: now),
                         suppress: false)
            }
            let open = try registry.violations(tenant: nil, activeOnly: true, limit: 10_000)
            let deviceSide = state.withLock { state in
                open.filter { violation in
                    state.profiles[violation.tenant]?.values.flatMap { $0 }.first { $0.name == violation.profile }?
                        .profile.behaviors.first { $0.name == violation.behavior }.map { $0.source != .cloud } ?? false
                }
            }
            for (tenant, violations) in Dictionary(grouping: deviceSide, by: \.tenant) {
                let last = try registry.lastReports(tenant: tenant, things: violations.map(\.thing))
                for violation in violations where now.timeIntervalSince(last[violation.thing] ?? violation.startedAt) > invalidateAfter {
                    try await registry.closeViolation(
                        tenant: tenant, thing: violation.thing, profile: violation.profile, behavior: violation.behavior, state: .invalidated,
                        metricValue: nil, now: now)
                    state.withLock { _ = $0.standing.removeValue(forKey: Self.key(tenant, violation.thing, violation.profile, violation.behavior)) }
                }
            }
        } catch {
            logger.error("defender sweep failed: \(error)")
        }
    }
}

extension DefenderService.CloudCounts {
    mutating func add(_ kind: CloudObservation) {
        switch kind {
        case .sent(let count, let bytes):
            sent += count
            largest = max(largest, bytes)
        case .received(let count): received += count
        case .authorizationFailure: authorizationFailures += 1
        case .connectionAttempt(let source):
            connections += 1
            if let source, sources.count < 16, let host = NetworkAddress.host(ofHostPort: source) ?? (NetworkAddress.isIP(source) ? source : nil) {
                sources.append(host)
            }
        case .disconnect: disconnects += 1
        }
    }
}

extension DefenderService.Window {
    static var empty: [Self] { Array(repeating: Self(), count: 5) }

    /// Which of a thing's five windows counts a metric.
    static func index(of metric: String) -> Int? {
        switch metric {
        case "aws:num-messages-sent": 0
        case "aws:num-messages-received": 1
        case "aws:num-authorization-failures": 2
        case "aws:num-connection-attempts": 3
        case "aws:num-disconnects": 4
        default: nil
        }
    }
}
