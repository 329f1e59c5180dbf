import HallmarkCore
import HallmarkServices
import HallmarkStore
import Hummingbird
import NIOCore

import Foundation

/// `GET /firmware/v1/releases/<id>/image`: a device's copy of a release, over mutual TLS with its
/// operational certificate, with single-range requests (`Range: bytes=N-`) so that a download cut
/// by a power loss resumes where it stopped. Every refusal is an event with its code.
struct FirmwareRoutes: Sendable {
    let delivery: FirmwareDelivery
    let registry: Registry

    func register(on router: Router<HallmarkRequestContext>) {
        router.get("/firmware/v1/releases/:release/image") { request, context in
            try await image(request, context)
        }
    }

    private func image(_ request: Request, _ context: HallmarkRequestContext) async throws -> Response {
        let id = context.parameters.get("release") ?? ""
        let now = Date()
        do {
            let (copy, identity) = try await delivery.copy(release: id, clientCertificate: try? context.clientCertificate(), now: now)
            var headers = HTTPFields()
            headers[.contentType] = "application/octet-stream"
            headers[.acceptRanges] = "bytes"
            headers[.eTag] = "\"\(copy.release.id.prefix(32))-\(identity.udid ?? identity.thingName)\""
            var range = 0..<copy.size
            var status = HTTPResponse.Status.ok
            if let header = request.headers[.range] {
                switch Self.parseRange(header, size: copy.size) {
                case .whole: break
                case .part(let part):
                    range = part
                    status = .partialContent
                    headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound - 1)/\(copy.size)"
                case .unsatisfiable:
                    headers[.contentRange] = "bytes */\(copy.size)"
                    try await registry.append([
                        AuditEvent(
                            at: now, tenant: identity.tenant, action: .firmwareImage, decision: .refuse, code: "range_not_satisfiable",
                            udid: identity.udid, thing: identity.thingName, source: context.remoteAddress,
                            detail: "release \(copy.release.id.prefix(16)): range \(header.prefix(60)) outside its \(copy.size) bytes")
                    ])
                    return Response(status: .rangeNotSatisfiable, headers: headers)
                }
            }
            headers[.contentLength] = String(range.count)
            try await registry.append([
                AuditEvent(
                    at: now, tenant: identity.tenant, action: .firmwareImage, decision: .allow, code: range.lowerBound == 0 ? "download" : "resume",
                    udid: identity.udid, thing: identity.thingName, source: context.remoteAddress,
                    detail: "release \(copy.release.id.prefix(16)) (\(copy.release.version)): bytes \(range.lowerBound)-\(range.upperBound - 1) of \(copy.size)")
            ])
            let parts = copy.parts(range)
            return Response(status: status, headers: headers, body: ResponseBody(contentsOf: parts))
        } catch let refusal as HallmarkError {
            let identity = try? context.clientCertificate().flatMap { try registry.connectionIdentity(fingerprint: CertificateFingerprint.sha256($0)) }
            try? await registry.append([
                AuditEvent(
                    at: now, tenant: identity?.tenant ?? Registry.defaultTenant, action: .firmwareImage, decision: .refuse, code: refusal.code.rawValue,
                    udid: identity?.udid, thing: identity?.thingName, source: context.remoteAddress,
                    detail: "download of release \(id.prefix(64)) refused: \(refusal.reason)")
            ])
            throw refusal
        }
    }

    enum RangeRequest: Equatable {
        case whole
        case part(Range<Int>)
        case unsatisfiable
    }

    /// One byte range (RFC 9110 §14.1.2): `bytes=A-B`, `bytes=A-` or `bytes=-N`. Several ranges,
    /// or another unit, are answered with the whole copy, as the RFC allows.
    static func parseRange(_ header: String, size: Int) -> RangeRequest {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let bounds = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard bounds.count == 2 else { return .whole }
        if bounds[0].isEmpty {
            guard let suffix = Int(bounds[1]), suffix > 0 else { return .unsatisfiable }
            return .part(max(0, size - suffix)..<size)
        }
        guard let start = Int(bounds[0]), start >= 0 else { return .whole }
        guard start < size else { return .unsatisfiable }
        if bounds[1].isEmpty { return .part(start..<size) }
        guard let end = Int(bounds[1]), end >= start else { return .whole }
        return .part(start..<min(size, end + 1))
    }
}
