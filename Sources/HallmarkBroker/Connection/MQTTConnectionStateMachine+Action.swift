import HallmarkCore
import HallmarkStore
import MQTTCore
import NIOCore

extension MQTTConnectionStateMachine {
    /// What the connection's channel handler does after an event: the machine decides, the handler
    /// does the I/O (writes, closes, timers, registry reads off the loop, the broker's routing).
    enum Action {
        case none
        /// Encodes a packet into the read's write (flushed when the read, or the event, is done).
        case send(Packet)
        /// Writes what is pending (with a last packet, if any, and an event to record) and closes.
        case close(Close)
        /// Answers CONNACK with a refusal, records why, and closes; a JITR registration is announced.
        case refuseConnect(Refusal)
        /// Reads the registry's record of a certificate off the event loop, then ``identityResolved``.
        case resolveIdentity(fingerprint: String)
        /// Records a certificate of a registered CA (JITR/JITP) off the loop, then ``registrationFinished``.
        case autoRegister(TrustStore.VerifiedPeer)
        /// Opens or resumes the client's session in the broker, then ``sessionOpened``.
        case openSession(SessionRequest)
        /// Routes a message through the broker, then ``routed(_:ack:)``.
        case route(BrokerMessage, RouteAck, telemetry: (tenant: String, thing: String)?)
        /// A request to the AWS IoT Jobs API: acknowledged now, answered by the jobs service.
        case jobs(JobsCall, ack: Packet?)
        /// A request to the fleet provisioning API: acknowledged now, answered by the provisioner.
        case provisioning(FleetProvisioningRequest, qos: QoS, ack: Packet?)
        /// A Device Defender report or security event: acknowledged now, answered by the monitor.
        case defender(DefenderSubmission, qos: QoS, ack: Packet?)
        /// A publish the policy refuses (MQTT 5): its acknowledgement, and an event unless rate-limited.
        case refusePublish(ack: Packet?, event: AuditEvent?)
        /// Answers SUBACK and adds the accepted subscriptions (their retained messages follow).
        case subscribe(suback: Packet, accepted: [Subscription], identifier: UInt32?, event: AuditEvent?)
        /// Removes subscriptions, then ``unsubscribed(packetID:existed:)``.
        case unsubscribe(filters: [String], packetID: UInt16)
        /// The in-flight window has room: deliver queued messages once this read is done.
        case drainAfterRead
        /// Stop reading; ``timerFired(.pauseEnded)`` with this number resumes at the latest.
        case pauseReading(Int, then: Packet?)
        /// Stop reading for a while: the client publishes faster than ``BrokerConfiguration/maximumPublishRate``;
        /// ``timerFired(.pauseEnded)`` with this number resumes after `for`.
        case throttle(Int, for: TimeAmount)
        /// Handle the packets held in ``nextPending()`` (reading resumed, or the session just opened).
        case processPending
        /// The new policies of a live connection, for its session's deliveries.
        case replaceAuthorizer(Authorizer)
        /// The connection ended: what becomes of its session and will.
        case ended(Ending)
    }

    /// How the connection closes.
    struct Close {
        /// DISCONNECT (MQTT 5) or a last CONNACK; nil to close without a word.
        var packet: Packet?
        /// The version to encode it in (a CONNACK refusing an unknown version is a 3.1.1 one).
        var version: MQTTVersion
        var event: AuditEvent?
        /// Close this side first and the connection a second later, so that a client still
        /// writing (acknowledging what it was sent) reads the reason rather than a broken pipe.
        var linger = false
    }

    struct Refusal {
        var connack: Packet
        var event: AuditEvent
        /// AWS IoT's `$aws/events/certificates/registered/<caCertificateId>` message (JITR).
        var announcement: (message: BrokerMessage, tenant: String)?
    }

    struct SessionRequest {
        var tenant: String
        var clientID: String
        var cleanStart: Bool
        var authorizer: Authorizer
        /// How many QoS 1 and 2 messages may be in flight toward the client.
        var window: Int
        var identity: ConnectionIdentity?
    }

    /// A jobs API request and who made it.
    struct JobsCall: Sendable {
        var topic: JobsTopic
        var payload: [UInt8]
        var tenant: String
        /// The connection's own thing: a request about another thing's executions is refused.
        var thing: String
        var qos: QoS
        var source: String?
    }

    /// The acknowledgement a routed PUBLISH gets, once it is known whether anyone subscribed.
    struct RouteAck {
        var qos: QoS
        var packetID: UInt16?
    }

    struct Ending {
        var session: Session
        /// The certificate the clone watch counted this connection for, if any.
        var fingerprint: String?
        /// The will to publish, after `willDelay` seconds if the session is still away then.
        var will: (message: BrokerMessage, tenant: String)?
        var willDelay: UInt32
        var expiry: SessionExpiry
    }

    enum SessionExpiry: Equatable {
        /// The session ends with the connection.
        case now
        /// The session ends after that many seconds unless a connection resumes it.
        case after(UInt32)
        case never
    }

    /// The timers a connection sets.
    enum Timer: Equatable {
        /// Ten seconds after the TCP connection, for CONNECT.
        case connectDeadline
        /// One and a half keep-alives without a packet.
        case keepAlive
        /// The end of the longest pause of a publisher held back (``maximumPause``).
        case pauseEnded(Int)
    }
}

/// The acknowledgements a client sends for the broker's QoS 1 and 2 deliveries.
enum OutboundAck: Sendable {
    case puback, pubrec, pubcomp
    /// A PUBREC with a failure reason (MQTT 5): the QoS 2 message ends there, no PUBREL follows.
    case pubrecRefused
}
