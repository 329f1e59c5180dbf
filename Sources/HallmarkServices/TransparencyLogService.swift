import HallmarkCore
import HallmarkStore
import Logging
import ServiceLifecycle
import Synchronization
import TransparencyLog

import Foundation

/// Keeps the event log's Merkle tree: new events become leaves within a quarter of a second, and a
/// checkpoint is signed a second after the tree grows, and at least once a minute. Serves the
/// checkpoint, entries and inclusion and consistency proofs.
public final class TransparencyLogService: Service, Sendable {
    /// The origin line of every checkpoint (and the signing key's name).
    public let origin: String
    let store: any LogStore
    let signer: Checkpoint.Signer
    let logger: Logger
    private let state: Mutex<State>

    struct State: Sendable {
        var leaves: [MerkleTree.Hash]
        /// The same leaves as perfect subtrees: the head in O(log n), for a checkpoint every second.
        var range: MerkleTree.CompactRange
        var note: String?
        var signedSize = -1
        var signedAt = Date.distantPast
    }

    /// Proofs and entries are asked of at most this many leaves at once.
    public static let maximumEntries = 1000

    public init(store: any LogStore, signer: Checkpoint.Signer, logger: Logger) throws {
        self.store = store
        self.signer = signer
        self.origin = signer.name
        self.logger = logger
        let leaves = try store.logLeafHashes()
        let last = try store.checkpoints().last
        state = Mutex(State(leaves: leaves, range: MerkleTree.CompactRange(leaves), note: last?.note, signedSize: last?.size ?? -1))
    }

    public var verifier: Checkpoint.Verifier { signer.verifier }

    /// Brings the tree up to date and signs a checkpoint if one is due.
    public func catchUp(now: Date = Date(), force: Bool = false) async throws {
        while true {
            let added = try await store.appendLogLeaves(limit: 10_000)
            if !added.isEmpty {
                state.withLock { state in
                    state.leaves += added
                    for leaf in added { state.range.append(leaf) }
                }
            }
            if added.count < 10_000 { break }
        }
        let (range, due) = state.withLock { state in
            (state.range, force || now.timeIntervalSince(state.signedAt) >= 60
                || (state.leaves.count != state.signedSize && now.timeIntervalSince(state.signedAt) >= 1))
        }
        guard due else { return }
        let size = range.size
        let checkpoint = Checkpoint(origin: origin, size: size, root: range.root)
        let note = try checkpoint.signed(by: signer)
        try await store.saveCheckpoint(checkpoint, note: note, now: now)
        state.withLock { state in
            state.note = note
            state.signedSize = size
            state.signedAt = now
        }
    }

    public func run() async throws {
        var lastFlush = Date()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                // A flood's count becomes an event (and so a leaf) once its minute is over.
                if Date().timeIntervalSince(lastFlush) >= 5 {
                    lastFlush = Date()
                    try await store.flushCountedRefusals(now: lastFlush)
                }
                try await catchUp()
            } catch {
                logger.error("transparency log not brought up to date: \(error)")
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// The latest signed checkpoint.
    public var checkpoint: String? { state.withLock { $0.note } }

    /// The size of the latest signed checkpoint.
    public var signedSize: Int { state.withLock { max($0.signedSize, 0) } }

    /// Why a proof or a range cannot be given.
    static func outOfRange(_ what: String) -> HallmarkError {
        HallmarkError(
            .bodyEncodingInvalid, "\(what) is outside the signed tree.",
            remedy: "Ask within the latest checkpoint's size (GET /log/v1/checkpoint).")
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    public func inclusionProof(index: Int, size: Int) throws -> [MerkleTree.Hash] {
        let leaves = state.withLock { state in size <= state.leaves.count && size >= 1 ? Array(state.leaves.prefix(size)) : nil }
        guard let leaves, index >= 0, index < size else { throw Self.outOfRange("Leaf \(index) of a tree of \(size)") }
        return try MerkleTree.inclusionProof(index: index, leaves)
    }

    /// The consistency proof between the trees of the first `first` and `second` leaves.
    public func consistencyProof(first: Int, second: Int) throws -> [MerkleTree.Hash] {
        let leaves = state.withLock { state in second <= state.leaves.count ? Array(state.leaves.prefix(second)) : nil }
        guard let leaves, first >= 1, first <= second else { throw Self.outOfRange("Sizes \(first) and \(second)") }
        return try MerkleTree.consistencyProof(first: first, leaves)
    }

    /// Entries `start..<end` (at most ``maximumEntries``); with `tenant`, only that tenant's.
    public func entries(start: Int, end: Int, tenant: String?) throws -> [Registry.LogEntry] {
        let size = state.withLock { $0.leaves.count }
        guard start >= 0, start < end, end <= size else { throw Self.outOfRange("Entries \(start) to \(end)") }
        return try store.logEntries(start: start, end: min(end, start + Self.maximumEntries), tenant: tenant)
    }

    /// Logs a refused read of the log (an event like every refusal).
    public func logRefusal(_ error: HallmarkError, source: String?, detail: String) async {
        try? await store.append(
            AuditEvent(
                at: Date(), tenant: Registry.defaultTenant, action: .apiAuth, decision: .refuse, code: error.code.rawValue,
                source: source, detail: detail))
    }

    /// The tenant a bearer credential names, if any.
    public func tenant(forCredential secret: String) throws -> String? { try store.tenant(forCredential: secret) }
}
