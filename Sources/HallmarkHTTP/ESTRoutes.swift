import HallmarkCore
import HallmarkMetrics
import HallmarkServices
import HallmarkStore
import HTTPTypes
import Hummingbird
import NIOCore
import X509

/// EST (RFC 7030) under `/.well-known/est`: `cacerts`, `simpleenroll`, `simplereenroll`, `csrattrs`.
///
/// Requests carry base64 DER (`application/pkcs10`); answers are base64 DER with
/// `Content-Transfer-Encoding: base64`, certificates as certs-only PKCS#7.
struct ESTRoutes: Sendable {
    let enrollment: EnrollmentService
    let metrics: FleetMetrics?
    let caCertificatesBody: String
    let csrAttributesBody: String

    init(enrollment: EnrollmentService, metrics: FleetMetrics? = nil) throws {
        self.enrollment = enrollment
        self.metrics = metrics
        self.caCertificatesBody = ESTBody.encode(try CertsOnlyPKCS7.encode(enrollment.authorities.shared.chain))
        self.csrAttributesBody = ESTBody.encode(try CSRAttributesResponse.der())
    }

    /// The routes, at `/.well-known/est` for the default tenant and at
    /// `/.well-known/est/<tenant>` (an RFC 7030 §3.2.2 label) for each tenant.
    func register(on router: Router<HallmarkRequestContext>) {
        let est = router.group("/.well-known/est")
        for prefix in ["", ":tenant/"] {
            est.get("\(prefix)cacerts") { _, context in
                try await cacerts(tenant: Self.tenant(of: context), source: context.remoteAddress)
            }
            est.get("\(prefix)csrattrs") { _, _ in
                ESTAnswer.base64(csrAttributesBody, contentType: "application/csrattrs")
            }
            // In simpleenroll, a client certificate is the device's factory attestation certificate;
            // in simplereenroll, the certificate being renewed.
            est.post("\(prefix)simpleenroll") { request, context in
                await handle(request, context, action: .enroll, operation: "simpleenroll", service: enrollment.enroll)
            }
            est.post("\(prefix)simplereenroll") { request, context in
                await handle(request, context, action: .reenroll, operation: "simplereenroll", service: enrollment.reenroll)
            }
        }
    }

    /// The tenant's chain: its own issuing CA (or the shared one), then the root.
    private func cacerts(tenant: String, source: String?) async throws -> Response {
        guard tenant != Registry.defaultTenant else {
            return ESTAnswer.base64(caCertificatesBody, contentType: "application/pkcs7-mime")
        }
        do {
            try await requireTenant(tenant, operation: "cacerts", action: .cacerts, source: source)
        } catch let error as HallmarkError {
            return ErrorResponse.make(error)
        }
        let body = ESTBody.encode(try CertsOnlyPKCS7.encode(await enrollment.chain(tenant: tenant)))
        return ESTAnswer.base64(body, contentType: "application/pkcs7-mime")
    }

    /// Refuses (with an event) an EST path whose label names no tenant.
    private func requireTenant(_ tenant: String, operation: String, action: EventAction, source: String?) async throws {
        guard try !enrollment.knowsTenant(tenant) else { return }
        throw try await enrollment.refuse(
            HallmarkError(.notFound, "There is no tenant \(tenant.prefix(40)) at this EST endpoint.",
                          remedy: "Use /.well-known/est/<tenant>/\(operation) with your OEM's tenant id."),
            action: action, udid: nil, source: source)
    }

    /// The tenant an EST path names (its label), or the default tenant.
    private static func tenant(of context: HallmarkRequestContext) -> String {
        context.parameters.get("tenant") ?? Registry.defaultTenant
    }

    /// One EST enrollment request: the tenant, the CSR, the TLS client certificate if any, then
    /// `service` (``EnrollmentService/enroll(csrDER:tenant:clientCertificate:source:)`` or its
    /// renewal twin); the answer is the certificate as certs-only PKCS#7, or the refusal.
    private func handle(
        _ request: Request, _ context: HallmarkRequestContext, action: EventAction, operation: String,
        service: (_ csrDER: [UInt8], _ tenant: String, _ clientCertificate: Certificate?, _ source: String?) async throws
            -> EnrollmentService.Issued
    ) async -> Response {
        var request = request
        let tenant = Self.tenant(of: context)
        do {
            try await requireTenant(tenant, operation: operation, action: action, source: context.remoteAddress)
            let der = try await readCSR(&request, context, action: action, tenant: tenant)
            let clientCertificate = try? context.clientCertificate()
            let issued = try await service(der, tenant, clientCertificate, context.remoteAddress)
            metrics?.enrollments.increment()
            return try ESTAnswer.certificate(der: issued.record.der)
        } catch let error as HallmarkError {
            metrics?.refused(.enrollment, code: error.code.rawValue)
            context.logger.info(
                "est refusal", metadata: ["action": .string(action.rawValue), "code": .string(error.code.rawValue)])
            return ErrorResponse.make(error)
        } catch {
            context.logger.error("est failure", metadata: ["action": .string(action.rawValue), "error": .string("\(error)")])
            let failure = HallmarkError.serverFailure(error)
            if failure.code == .storageUnavailable { metrics?.refused(.enrollment, code: failure.code.rawValue) }
            return ErrorResponse.make(failure)
        }
    }

    private func readCSR(
        _ request: inout Request, _ context: HallmarkRequestContext, action: EventAction, tenant: String
    ) async throws -> [UInt8] {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard mediaType == "application/pkcs10" else {
            throw try await enrollment.refuse(
                HallmarkError(
                    .unsupportedMediaType,
                    "Content-Type is '\(contentType.prefix(60))'; EST expects application/pkcs10.",
                    remedy: "Send the CSR with the header 'Content-Type: application/pkcs10'."),
                action: action, tenant: tenant, udid: nil, source: context.remoteAddress)
        }
        let tooLarge = HallmarkError(
            .bodyTooLarge, "The request body exceeds \(ESTBody.maximumRequestSize) bytes.",
            remedy: "Send one CSR, base64 of its DER; a CSR is a few hundred bytes.")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > ESTBody.maximumRequestSize {
            throw try await enrollment.refuse(tooLarge, action: action, tenant: tenant, udid: nil, source: context.remoteAddress)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: ESTBody.maximumRequestSize)
        } catch {
            throw try await enrollment.refuse(tooLarge, action: action, tenant: tenant, udid: nil, source: context.remoteAddress)
        }
        do {
            return try ESTBody.decode(Array(buffer.readableBytesView))
        } catch {
            throw try await enrollment.refuse(error, action: action, tenant: tenant, udid: nil, source: context.remoteAddress)
        }
    }
}
