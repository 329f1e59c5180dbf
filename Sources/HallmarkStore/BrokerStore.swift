import Foundation
import HallmarkCore
import X509

/// What the MQTT broker needs of the registry, and nothing more: certificates' records for
/// connections, the change feed, the CAs to trust, just-in-time registration, clone alarms, and
/// appending events and telemetry. `Registry` (SQLite) is one implementation; a second registry
/// backend implements this, not the registry's whole surface.
public protocol BrokerStore: Sendable {
    /// A certificate's record with its thing, device and policies, by SHA-256 fingerprint.
    func connectionIdentity(fingerprint: String) throws -> ConnectionIdentity?
    /// The id of the newest event (0 for an empty log).
    func latestEventID() throws -> Int64
    /// The events after `id` whose action is one of `actions`, oldest first.
    func events(after id: Int64, actions: [EventAction], limit: Int) throws -> [Registry.LoggedEvent]
    /// Every tenant's own issuing CA, by tenant.
    func tenantIssuingCAs() throws -> [String: Certificate]
    /// The registered OEM CAs, of every tenant.
    func registeredCAs(tenant: String?) throws -> [RegisteredCA]
    /// Records the first connection of a registered CA's certificate (JITR or JITP).
    func autoRegister(certificateDER der: [UInt8], caID: String, source: String?, now: Date) async throws -> Registry.AutoRegistration
    /// Raises `clone_suspected` for an identity seen twice at once.
    func reportSuspectedClone(tenant: String, udid: String?, thing: String, serial: String, detail: String, now: Date) async throws
    /// Appends events to the log, in one transaction.
    func append(_ events: [AuditEvent]) async throws
    /// Appends telemetry samples.
    func appendTelemetry(_ samples: [TelemetrySample]) async throws
    /// Answers a device's AWS IoT Jobs request (one transaction).
    func answerJobsRequest(tenant: String, thing: String, topic: JobsTopic, payload: [UInt8], source: String?, now: Date) throws -> Registry.JobsAnswer
    /// The things whose pending executions changed after `seq`.
    func jobChanges(after seq: Int64, limit: Int) throws -> (last: Int64, things: [(tenant: String, thing: String)])
    /// The newest job change's number.
    func latestJobChange() throws -> Int64
    /// A thing's released executions, any status.
    func visibleExecutions(tenant: String, thing: String) throws -> [JobExecution]
    /// A job's document, as JSON text.
    func jobDocument(tenant: String, id: String) throws -> String?
}

extension Registry: BrokerStore {}
