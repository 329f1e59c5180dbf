import HallmarkCore
import HallmarkStore
import Logging
import MQTTCore
import NIOCore
import Synchronization

import Foundation

/// The AWS IoT Jobs device API on the broker: requests answered off the event loops from the
/// registry, replies queued to the requesting session (on `…/accepted` or `…/rejected`, whether
/// or not it subscribed, as AWS does, when its policy lets it receive them), and `notify` /
/// `notify-next` published to the thing's subscribers when its pending executions change.
final class JobsResponder: Sendable {
    let registry: any BrokerStore
    let logger: Logger
    /// Per tenant and thing, the next execution last announced on `notify-next` (job id and version).
    private let announced = Mutex<[String: String]>([:])

    init(registry: any BrokerStore, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    func handle(_ call: MQTTConnectionStateMachine.JobsCall, session: Session, broker: Broker) {
        let registry = self.registry
        Task {
            let now = Date()
            let answer: Registry.JobsAnswer
            if call.topic.thingName != call.thing {
                // Whatever the policy allows, a device acts on its own executions only.
                let rejection = JobsRejection(.invalidRequest, "Thing \(call.thing) cannot act on thing \(call.topic.thingName)'s job executions.")
                answer = Registry.JobsAnswer(
                    accepted: false,
                    payload: JobsReply.encode(JobsReply.rejection(rejection, clientToken: JobsRequest.clientToken(in: call.payload), now: now)),
                    pendingChanged: false)
                broker.record(
                    AuditEvent(
                        at: now, tenant: call.tenant, action: .jobsRequest, decision: .refuse, code: HallmarkError.Code.notAuthorized.rawValue,
                        thing: call.thing, source: call.source, detail: "\(call.topic.topic.prefix(200)): not the connection's own thing"))
            } else {
                do {
                    answer = try registry.answerJobsRequest(
                        tenant: call.tenant, thing: call.thing, topic: call.topic, payload: call.payload, source: call.source, now: now)
                } catch {
                    logger.error("jobs request failed: \(error)")
                    let rejection = JobsRejection(.internalError, "The request could not be answered; try again.")
                    answer = Registry.JobsAnswer(
                        accepted: false,
                        payload: JobsReply.encode(JobsReply.rejection(rejection, clientToken: JobsRequest.clientToken(in: call.payload), now: now)),
                        pendingChanged: false)
                }
            }
            let topic = call.topic.topic + (answer.accepted ? "/accepted" : "/rejected")
            if session.authorizer?.decide(.receive, topic).isAllowed ?? false {
                let message = BrokerMessage(topic: topic, payload: ByteBuffer(bytes: answer.payload), qos: min(call.qos, .atLeastOnce))
                session.enqueue(message, qos: message.qos, retain: false, subscriptionIDs: [])
            }
            if let (topic, payload) = answer.fleetEvent {
                broker.publish(BrokerMessage(topic: topic, payload: ByteBuffer(bytes: payload), qos: .atMostOnce), tenant: call.tenant)
            }
        }
    }

    /// Publishes `notify` (the thing's pending executions) and, when the next one changed,
    /// `notify-next`. Reads the registry: off the event loops only.
    func notify(tenant: String, thing: String, now: Date, broker: Broker) {
        do {
            let executions = try registry.visibleExecutions(tenant: tenant, thing: thing).filter { !$0.status.isTerminal }
                .sorted { ($0.queuedAt, $0.jobID) < ($1.queuedAt, $1.jobID) }
            let prefix = "$aws/things/\(thing)/jobs/"
            broker.publish(
                BrokerMessage(topic: prefix + "notify", payload: ByteBuffer(bytes: JobsReply.encode(JobsReply.notify(executions, now: now))), qos: .atLeastOnce),
                tenant: tenant)
            let next = JobsRules.next(executions)
            let mark = next.map { "\($0.jobID)\u{0}\($0.versionNumber)\u{0}\($0.status.rawValue)" } ?? ""
            let key = tenant + "\u{0}" + thing
            let changed = announced.withLock { seen in
                defer { seen[key] = mark }
                return seen[key] != mark
            }
            guard changed else { return }
            var payload: [String: Any] = ["timestamp": Int(now.timeIntervalSince1970)]
            if let next {
                let document = try registry.jobDocument(tenant: tenant, id: next.jobID)
                    .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
                payload["execution"] = JobsReply.execution(next, document: document)
            }
            broker.publish(BrokerMessage(topic: prefix + "notify-next", payload: ByteBuffer(bytes: JobsReply.encode(payload)), qos: .atLeastOnce), tenant: tenant)
        } catch {
            logger.error("jobs notification for \(thing) failed: \(error)")
        }
    }
}
