import HallmarkCore
import MQTTCore
import NIOCore
import Synchronization

import Foundation

/// AWS IoT's fleet provisioning MQTT API on the broker: a request is answered off the event
/// loops by the ``FleetProvisioner`` and the reply queued to the requesting session (on
/// `…/accepted` or `…/rejected`, as AWS does, when its policy lets it receive it).
final class ProvisioningResponder: Sendable {
    let provisioner: (any FleetProvisioner)?

    init(provisioner: (any FleetProvisioner)?) {
        self.provisioner = provisioner
    }

    func handle(_ request: FleetProvisioningRequest, qos: QoS, session: Session) {
        let provisioner = self.provisioner
        Task {
            let answer = await provisioner?.answer(request)
                ?? FleetProvisioningAnswer(accepted: false, payload: ProvisioningReply.rejection(
                    HallmarkError(.internalError, "Fleet provisioning is not served here.", remedy: "Enrol over EST."), format: request.topic.format))
            let topic = request.topic.reply(accepted: answer.accepted)
            guard session.authorizer?.decide(.receive, topic).isAllowed ?? false else { return }
            let message = BrokerMessage(topic: topic, payload: ByteBuffer(bytes: answer.payload), qos: min(qos, .atLeastOnce))
            session.enqueue(message, qos: message.qos, retain: false, subscriptionIDs: [])
        }
    }
}

/// Device Defender on the broker: a report or security event is answered off the event loops by
/// the ``SecurityMonitor`` and the answer queued to the reporting session (on `…/accepted` or
/// `…/rejected`, when its policy lets it receive it).
final class DefenderResponder: Sendable {
    let monitor: (any SecurityMonitor)?
    /// Per thing, the last submission's task, its number and how many are waiting: a thing's
    /// reports are answered in the order it sent them (a later id committed first would make the
    /// earlier one a replay), and a thing that floods its topic waits behind itself, with at most
    /// ``maximumWaiting`` reports held: the rest are refused at once, unread.
    private let tails = Mutex<(next: UInt64, tasks: [String: (number: UInt64, task: Task<Void, Never>, waiting: Int)])>((0, [:]))
    static let maximumWaiting = 32
    /// Reports refused unread because too many of their thing's were waiting.
    let floodRefusals = Atomic<Int>(0)

    init(monitor: (any SecurityMonitor)?) {
        self.monitor = monitor
    }

    /// How many things have reports waiting.
    var pendingThings: Int { tails.withLock { $0.tasks.count } }

    func handle(_ submission: DefenderSubmission, qos: QoS, session: Session) {
        let key = submission.tenant + "\u{0}" + submission.thing
        let admitted = tails.withLock { state -> Bool in
            let waiting = state.tasks[key]?.waiting ?? 0
            guard waiting < Self.maximumWaiting else { return false }
            let previous = state.tasks[key]?.task
            let number = state.next
            state.next &+= 1
            state.tasks[key] = (number, Task {
                await previous?.value
                await self.answer(submission, qos: qos, session: session)
                self.tails.withLock { state in
                    if state.tasks[key]?.number == number {
                        state.tasks[key] = nil
                    } else if let tail = state.tasks[key] {
                        state.tasks[key]?.waiting = max(0, tail.waiting - 1)
                    }
                }
            }, waiting + 1)
            return true
        }
        guard !admitted else { return }
        floodRefusals.add(1, ordering: .relaxed)
        let refusal = HallmarkError(
            .reportThrottled, "\(Self.maximumWaiting) of the thing's reports are already waiting to be answered.",
            remedy: "Wait for the answers before sending more.")
        reply(
            DefenderAnswer(
                accepted: false,
                payload: DefenderReply.rejected(
                    thing: submission.topic.thingName, reportID: nil, error: refusal, nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))),
            to: submission, qos: qos, session: session)
    }

    private func answer(_ submission: DefenderSubmission, qos: QoS, session: Session) async {
        let answer = await monitor?.submit(submission)
            ?? DefenderAnswer(accepted: false, payload: DefenderReply.rejected(
                thing: submission.topic.thingName, reportID: nil,
                error: HallmarkError(.internalError, "Device Defender is not served here.", remedy: "Ask the operator to run hallmark serve."),
                nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000)))
        reply(answer, to: submission, qos: qos, session: session)
    }

    private func reply(_ answer: DefenderAnswer, to submission: DefenderSubmission, qos: QoS, session: Session) {
        let topic = submission.topic.reply(accepted: answer.accepted)
        guard session.authorizer?.decide(.receive, topic).isAllowed ?? false else { return }
        let message = BrokerMessage(topic: topic, payload: ByteBuffer(bytes: answer.payload), qos: min(qos, .atLeastOnce))
        session.enqueue(message, qos: message.qos, retain: false, subscriptionIDs: [])
    }
}
