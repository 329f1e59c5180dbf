import HallmarkCore
import HallmarkServices
import HallmarkStore
import HTTPTypes
import Hummingbird
import NIOCore

import Foundation

/// The transparency log's read API on the HTTPS listener:
/// - `GET /log/v1/checkpoint`: the latest signed checkpoint (C2SP signed note), public;
/// - `GET /log/v1/key`: the log's note verifier key, public;
/// - `GET /log/v1/proof?index=&size=`: an inclusion proof, public (hashes only);
/// - `GET /log/v1/consistency?first=&second=`: a consistency proof, public;
/// - `GET /log/v1/entries?start=&end=`: the leaves' exact bytes and the events they are, for a
///   tenant's credential: the default tenant's sees every entry, another tenant's only its own
///   (tenants never see each other's events).
struct LogRoutes: Sendable {
    let log: TransparencyLogService

    func register(on router: Router<HallmarkRequestContext>) {
        let group = router.group("/log/v1")
        group.get("checkpoint") { _, _ in
            guard let note = log.checkpoint else {
                return ErrorResponse.make(HallmarkError(.notFound, "No checkpoint is signed yet.", remedy: "Retry in a second."))
            }
            return Self.text(note)
        }
        group.get("key") { _, _ in Self.text(log.verifier.text + "\n") }
        group.get("proof") { request, _ in
            Self.respond {
                let index = try Self.number(request, "index")
                let size = try Self.number(request, "size")
                let path = try log.inclusionProof(index: index, size: size)
                return try AdminRoutes.json(
                    InclusionView(leaf_index: index, tree_size: size, audit_path: path.map { Data($0).base64EncodedString() }), status: .ok)
            }
        }
        group.get("consistency") { request, _ in
            Self.respond {
                let first = try Self.number(request, "first")
                let second = try Self.number(request, "second")
                let proof = try log.consistencyProof(first: first, second: second)
                return try AdminRoutes.json(
                    ConsistencyView(first: first, second: second, consistency: proof.map { Data($0).base64EncodedString() }), status: .ok)
            }
        }
        group.get("entries") { request, context in
            let secret = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            guard let secret, let tenant = try log.tenant(forCredential: secret) else {
                let refusal = HallmarkError(
                    .credentialInvalid, "Log entries are read with a tenant administrator's credential.",
                    remedy: "Send 'Authorization: Bearer <credential>'; the checkpoint and proofs need none.")
                await log.logRefusal(refusal, source: context.remoteAddress, detail: "GET /log/v1/entries")
                return ErrorResponse.make(refusal)
            }
            return Self.respond {
                let start = try Self.number(request, "start")
                let end = try Self.number(request, "end")
                let entries = try log.entries(start: start, end: end, tenant: tenant == Registry.defaultTenant ? nil : tenant)
                return try AdminRoutes.json(EntriesView(entries: entries.map(EntryView.init)), status: .ok)
            }
        }
    }

    static func number(_ request: Request, _ name: String) throws -> Int {
        guard let text = request.uri.queryParameters.get(name), let value = Int(text), value >= 0 else {
            throw HallmarkError(.bodyEncodingInvalid, "The query needs \(name), a whole number.", remedy: "Add ?\(name)=N.")
        }
        return value
    }

    static func respond(_ body: () throws -> Response) -> Response {
        do {
            return try body()
        } catch let error as HallmarkError {
            return ErrorResponse.make(error)
        } catch {
            return ErrorResponse.make(HallmarkError(.bodyEncodingInvalid, "\(error)", remedy: "Ask within the tree."))
        }
    }

    static func text(_ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

struct InclusionView: Encodable, Sendable {
    var leaf_index: Int
    var tree_size: Int
    var audit_path: [String]
}

struct ConsistencyView: Encodable, Sendable {
    var first: Int
    var second: Int
    var consistency: [String]
}

struct EntriesView: Encodable, Sendable {
    var entries: [EntryView]
}

struct EntryView: Encodable, Sendable {
    var index: Int
    /// Base64 of the exact leaf bytes.
    var leaf: String
    /// The event the leaf is (its bytes, parsed); nil if its row is gone.
    var event: LeafEvent?

    init(_ entry: Registry.LogEntry) {
        index = entry.index
        leaf = Data(entry.leaf).base64EncodedString()
        event = try? JSONDecoder().decode(LeafEvent.self, from: Data(entry.leaf))
    }
}

/// An event as its leaf has it.
struct LeafEvent: Codable, Sendable {
    var id: Int64
    var at: Double
    var tenant: String
    var action: String
    var decision: String
    var code: String
    var udid: String?
    var thing: String?
    var serial: String?
    var source: String?
    var detail: String
}
