import HallmarkCore
import HallmarkServices
import HallmarkStore
import Revocation
import HTTPTypes
import Hummingbird
import NIOCore

import Foundation

/// The tenant administration API under `/api/v1`, and the factory programming station's endpoint.
///
/// Every call carries `Authorization: Bearer <credential>`: a tenant administrator's credential
/// scopes it to that tenant's objects, and another tenant's object is answered exactly as one that
/// does not exist (404), so a tenant learns nothing of the others. A station credential is good
/// for one thing only: registering devices against its batch.
struct AdminRoutes: Sendable {
    let registry: any FleetStore & ManifestStore
    let clock: @Sendable () -> Date

    static let maximumBody = 1 << 20

    func register(on router: Router<HallmarkRequestContext>) {
        let api = router.group("/api/v1")
        api.get("tenant") { request, context in
            try await answer(request, context) { tenant in ["tenant": tenant] }
        }
        api.get("devices") { request, context in
            try await answer(request, context) { tenant in
                let status = try request.uri.queryParameters.get("status").map(Self.deviceStatus)
                return try registry.devices(status: status, tenant: tenant, limit: Self.limit(request)).map(DeviceView.init)
            }
        }
        api.get("devices/:udid") { request, context in
            try await answer(request, context) { tenant in
                DeviceView(try device(tenant, try Self.udid(context)))
            }
        }
        api.post("devices/:udid/status") { request, context in
            try await answer(request, context) { tenant in
                struct Change: Decodable { var status: String; var reason: String? }
                let change: Change = try await Self.decode(request, context)
                let udid = try Self.udid(context)
                _ = try device(tenant, udid)
                try registry.setDeviceStatus(
                    udid, to: try Self.deviceStatus(change.status), reason: change.reason ?? "set through the API", tenant: tenant,
                    now: clock())
                return DeviceView(try device(tenant, udid))
            }
        }
        api.post("devices/:udid/decommission") { request, context in
            try await answer(request, context) { tenant in
                let change: Reason = try await Self.decodeOptional(request, context) ?? Reason()
                let udid = try Self.udid(context)
                try registry.setDeviceStatus(
                    udid, to: .decommissioned, reason: change.reason ?? "decommissioned through the API", tenant: tenant, now: clock())
                return DeviceView(try device(tenant, udid))
            }
        }
        api.post("devices/:udid/recommission") { request, context in
            try await answer(request, context) { tenant in
                let change: Reason = try await Self.decodeOptional(request, context) ?? Reason()
                let udid = try Self.udid(context)
                try registry.recommission(udid, reason: change.reason ?? "recommissioned through the API", tenant: tenant, now: clock())
                return DeviceView(try device(tenant, udid))
            }
        }
        api.post("devices/:udid/transfer") { request, context in
            try await answer(request, context) { tenant in
                struct Transfer: Decodable { var to: String }
                let transfer: Transfer = try await Self.decode(request, context)
                try await registry.transferDevice(try Self.udid(context), from: tenant, to: transfer.to, now: clock())
                return ["transferred": true]
            }
        }
        api.get("things/:name") { request, context in
            try await answer(request, context) { tenant in ThingView(try thing(tenant, context)) }
        }
        api.get("things/:name/telemetry") { request, context in
            try await answer(request, context) { tenant in
                try registry.latestTelemetry(thing: try thing(tenant, context).name, tenant: tenant).map(TelemetryView.init)
            }
        }
        api.get("certificates") { request, context in
            try await answer(request, context) { tenant in
                let udid = try request.uri.queryParameters.get("udid").map { try UDID(validating: $0) }
                return try registry.certificates(udid: udid, tenant: tenant, limit: Self.limit(request)).map(CertificateView.init)
            }
        }
        api.post("certificates/:selector/revoke") { request, context in
            try await answer(request, context) { tenant in
                let reason = try request.uri.queryParameters.get("reason").map { try Self.revocationReason(String($0)) }
                let fingerprint = try await registry.setCertificateStatus(
                    context.parameters.get("selector") ?? "", to: .revoked, reason: "revoked through the API",
                    revocationReason: reason ?? .unspecified, tenant: tenant, now: clock())
                return ["revoked": fingerprint]
            }
        }
        api.get("events") { request, context in
            try await answer(request, context) { tenant in
                try registry.events(
                    udid: request.uri.queryParameters.get("udid").map { String($0) },
                    code: request.uri.queryParameters.get("code").map { String($0) }, tenant: tenant, limit: Self.limit(request)
                ).map(EventView.init)
            }
        }
        api.get("products") { request, context in
            try await answer(request, context) { tenant in try registry.products(tenant: tenant).map(ProductView.init) }
        }
        api.get("products/:id") { request, context in
            try await answer(request, context) { tenant in
                guard let product = try registry.product(tenant: tenant, id: context.parameters.get("id") ?? "") else {
                    throw HallmarkError(.notFound, "No such product.", remedy: "List the tenant's products with GET /api/v1/products.")
                }
                return ProductView(product)
            }
        }
        api.post("products") { request, context in
            try await answer(request, context, status: .created) { tenant in
                struct NewProduct: Decodable {
                    var id: String
                    var name: String?
                    var certificateValidityDays: Int?
                    var defaultPolicy: String?
                    var cloneResponse: String?
                    var supersededGraceHours: Int?
                    var expiredRenewalDays: Int?
                }
                let body: NewProduct = try await Self.decode(request, context)
                let product = try Registry.Product(
                    tenant: tenant, id: body.id, name: body.name ?? body.id,
                    certificateValidityDays: body.certificateValidityDays, defaultPolicy: body.defaultPolicy, cloneResponse: body.cloneResponse,
                    supersededGraceHours: body.supersededGraceHours, expiredRenewalDays: body.expiredRenewalDays)
                try registry.createProduct(product, now: clock())
                return ProductView(product)
            }
        }
        api.get("batches") { request, context in
            try await answer(request, context) { tenant in try registry.batches(tenant: tenant) }
        }
        api.post("batches") { request, context in
            try await answer(request, context, status: .created) { tenant in
                struct NewBatch: Decodable { var product: String?; var quota: Int }
                let body: NewBatch = try await Self.decode(request, context)
                let batch = try registry.createBatch(
                    tenant: tenant, product: body.product ?? Registry.defaultProduct, quota: body.quota, now: clock())
                return BatchCreated(batch: batch.report, stationCredential: batch.stationCredential)
            }
        }
        api.get("batches/:id") { request, context in
            try await answer(request, context) { tenant in
                let id = context.parameters.get("id") ?? ""
                guard let batch = try registry.batchReport(tenant: tenant, id: id) else {
                    throw HallmarkError(.notFound, "There is no batch \(id.prefix(40)).", remedy: "List batches with GET /api/v1/batches.")
                }
                return batch
            }
        }
        api.post("manifests") { request, context in
            try await answer(request, context) { tenant in
                let query = request.uri.queryParameters
                guard let vendorName = query.get("vendor") else {
                    throw HallmarkError(.vendorInvalid, "No vendor was named.", remedy: "Add ?vendor=ID naming the registered vendor that signed it.")
                }
                let vendor = String(vendorName)
                let manifest = try await Self.body(request, context, limit: ManifestVerifier.maximumSize)
                let report = try await ManifestImport(registry: registry).run(
                    manifest, vendor: vendor, tenant: tenant, claim: query.get("lot").map { .lot(String($0)) } ?? .all,
                    product: query.get("product").map { String($0) } ?? Registry.defaultProduct,
                    skipInvalid: query.get("skipInvalid") == "true", source: context.remoteAddress, now: clock())
                if !report.committed, let first = report.problems.first {
                    // Nothing was claimed: the report, with the status of its first problem.
                    throw ReportedRefusal(status: ErrorResponse.status(for: first.error.code), body: ManifestReportView(report))
                }
                return ManifestReportView(report)
            }
        }
        api.post("station/devices") { request, context in
            await respond {
                let batch = try await station(request, context)
                struct Programmed: Decodable { var udid: String; var publicKey: String }
                let body: Programmed = try await Self.decode(request, context)
                let udid = try UDID(validating: body.udid)
                let key = try DeviceKey(text: body.publicKey)
                switch try await registry.registerProgrammedDevice(
                    batch: batch.id, udid: udid, key: key, source: context.remoteAddress, now: clock())
                {
                case .registered(let remaining):
                    return try Self.json(["batch": batch.id, "udid": udid.rawValue, "remaining": String(remaining)], status: .created)
                case .alreadyRegistered:
                    return try Self.json(["batch": batch.id, "udid": udid.rawValue, "remaining": "unchanged"], status: .ok)
                case .refused(let error):
                    throw error
                }
            }
        }
    }

    /// A refusal whose answer is a report rather than a single error.
    struct ReportedRefusal: Error {
        var status: HTTPResponse.Status
        var body: ManifestReportView
    }

    // MARK: Authentication

    private func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization], value.lowercased().hasPrefix("bearer ") else { return nil }
        return String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    private func tenant(_ request: Request, _ context: HallmarkRequestContext) async throws -> String {
        if let secret = bearer(request), let tenant = try registry.tenant(forCredential: secret) { return tenant }
        throw try await refuseCredential(request, context, what: "a tenant administrator's credential")
    }

    private func station(_ request: Request, _ context: HallmarkRequestContext) async throws -> Registry.BatchReport {
        if let secret = bearer(request), let batch = try registry.batch(forStationCredential: secret) { return batch }
        throw try await refuseCredential(request, context, what: "a programming station's credential (from `hallmark batch create`)")
    }

    private func refuseCredential(_ request: Request, _ context: HallmarkRequestContext, what: String) async throws -> HallmarkError {
        let error = HallmarkError(
            .credentialInvalid, "The request does not carry \(what).",
            remedy: "Send 'Authorization: Bearer <credential>' as given by `hallmark tenant create` or `hallmark tenant credential`.")
        try await registry.append(
            AuditEvent(
                at: clock(), tenant: Registry.defaultTenant, action: .apiAuth, decision: .refuse, code: error.code.rawValue,
                source: context.remoteAddress, detail: "\(request.method) \(request.uri.path.prefix(120))"))
        return error
    }

    // MARK: Plumbing

    private func device(_ tenant: String, _ udid: UDID) throws -> DeviceRecord {
        guard let device = try registry.device(udid), device.tenant == tenant else {
            throw HallmarkError(.notFound, "Device \(udid) is not one of yours.", remedy: "Check the UDID.")
        }
        return device
    }

    private func thing(_ tenant: String, _ context: HallmarkRequestContext) throws -> Registry.Thing {
        let name = context.parameters.get("name") ?? ""
        guard let thing = try registry.thing(named: name, tenant: tenant) else {
            throw HallmarkError(.notFound, "There is no thing \(name.prefix(128)).", remedy: "Check the thing name.")
        }
        return thing
    }

    private func answer<Value: Encodable & Sendable>(
        _ request: Request, _ context: HallmarkRequestContext, status: HTTPResponse.Status = .ok,
        _ body: @Sendable (String) async throws -> Value
    ) async throws -> Response {
        await respond {
            let tenant = try await tenant(request, context)
            return try Self.json(try await body(tenant), status: status)
        }
    }

    private func respond(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let refusal as ReportedRefusal {
            return (try? Self.json(refusal.body, status: refusal.status)) ?? ErrorResponse.make(
                HallmarkError(.internalError, "The server failed to encode its answer.", remedy: "Retry; if it persists, report it."))
        } catch let error as HallmarkError {
            return ErrorResponse.make(error)
        } catch {
            return ErrorResponse.make(HallmarkError.serverFailure(error))
        }
    }

    static func json<Value: Encodable>(_ value: Value, status: HTTPResponse.Status) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Array(try encoder.encode(value)) + [0x0A])))
    }

    static func body(_ request: Request, _ context: HallmarkRequestContext, limit: Int) async throws -> [UInt8] {
        var request = request
        do {
            return Array(try await request.collectBody(upTo: limit).readableBytesView)
        } catch {
            throw HallmarkError(.bodyTooLarge, "The request body exceeds \(limit) bytes.", remedy: "Send a smaller body.")
        }
    }

    static func decode<Value: Decodable>(_ request: Request, _ context: HallmarkRequestContext) async throws -> Value {
        let bytes = try await body(request, context, limit: maximumBody)
        do {
            return try JSONDecoder().decode(Value.self, from: Data(bytes))
        } catch {
            throw HallmarkError(
                .bodyEncodingInvalid, "The body is not the JSON object this endpoint takes.", remedy: "See the README's API table for the fields.")
        }
    }

    /// An optional JSON body: nil when the request has none.
    static func decodeOptional<Value: Decodable>(_ request: Request, _ context: HallmarkRequestContext) async throws -> Value? {
        let bytes = try await body(request, context, limit: maximumBody)
        guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) else { return nil }
        do {
            return try JSONDecoder().decode(Value.self, from: Data(bytes))
        } catch {
            throw HallmarkError(
                .bodyEncodingInvalid, "The body is not the JSON object this endpoint takes.", remedy: "See the README's API table for the fields.")
        }
    }

    /// A body with an optional free-text reason, for the event log.
    struct Reason: Decodable { var reason: String? }

    static func revocationReason(_ text: String) throws -> RevocationReason {
        guard let reason = RevocationReason(name: text) else {
            throw HallmarkError(
                .bodyEncodingInvalid, "'\(text.prefix(30))' is not an RFC 5280 revocation reason.",
                remedy: "Use one of \(RevocationReason.allCases.map(\.name).joined(separator: ", ")).")
        }
        return reason
    }

    static func udid(_ context: HallmarkRequestContext) throws -> UDID {
        try UDID(validating: context.parameters.get("udid") ?? "")
    }

    static func deviceStatus(_ text: Substring) throws -> DeviceStatus { try deviceStatus(String(text)) }

    static func deviceStatus(_ text: String) throws -> DeviceStatus {
        guard let status = DeviceStatus(rawValue: text) else {
            throw HallmarkError(
                .bodyEncodingInvalid, "'\(text.prefix(20))' is not a device status.",
                remedy: "Use one of \(DeviceStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return status
    }

    static func limit(_ request: Request) -> Int {
        min(max(request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100, 1), 1000)
    }
}
