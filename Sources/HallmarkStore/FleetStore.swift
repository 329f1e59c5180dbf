import HallmarkCore
import Revocation

import Foundation

/// What the fleet API (`/api/v1`) needs of a registry: a tenant's devices, certificates, things,
/// telemetry, products, batches and events, the operator's changes to them, and the credentials
/// that name a tenant or a programming station. Every call that reads a tenant's records takes the tenant.
public protocol FleetStore: Sendable {
    func tenant(forCredential secret: String) throws -> String?
    func batch(forStationCredential secret: String) throws -> Registry.BatchReport?

    func device(_ udid: UDID) throws -> DeviceRecord?
    func devices(status: DeviceStatus?, tenant: String?, limit: Int) throws -> [DeviceRecord]
    func setDeviceStatus(_ udid: UDID, to status: DeviceStatus, reason: String, tenant: String?, now: Date) throws
    func recommission(_ udid: UDID, reason: String, tenant: String?, now: Date) throws
    func transferDevice(_ udid: UDID, from owner: String, to recipient: String, now: Date) async throws

    func certificates(udid: UDID?, tenant: String?, limit: Int) throws -> [CertificateRecord]
    /// Revokes, deactivates or activates a certificate by fingerprint or serial; returns its fingerprint.
    func setCertificateStatus(
        _ selector: String, to status: CertificateStatus, reason: String, revocationReason: RevocationReason, tenant: String?, now: Date
    ) async throws -> String

    func thing(named name: String, tenant: String) throws -> Registry.Thing?
    func latestTelemetry(thing: String, tenant: String) throws -> [TelemetrySample]

    func products(tenant: String) throws -> [Registry.Product]
    func product(tenant: String, id: String) throws -> Registry.Product?
    func createProduct(_ product: Registry.Product, now: Date) throws

    func batches(tenant: String) throws -> [Registry.BatchReport]
    func batchReport(tenant: String, id: String) throws -> Registry.BatchReport?
    func createBatch(tenant: String, product: String, quota: Int, now: Date) throws -> Registry.NewBatch
    func registerProgrammedDevice(batch batchID: String, udid: UDID, key: DeviceKey, source: String?, now: Date) async throws
        -> Registry.ProgrammingOutcome

    func events(udid: String?, code: String?, tenant: String?, limit: Int) throws -> [AuditEvent]
    func append(_ event: AuditEvent) async throws
}

extension Registry: FleetStore {}
