import HallmarkCore
import HallmarkStore
import Logging
import Revocation
import ServiceLifecycle
import Synchronization
import X509

import Foundation

/// Publishes what relying parties need to learn of revocations: a signed CRL per issuing CA, and
/// OCSP answers. Both follow the registry's change feed, so a revocation is in force within a
/// second; CRLs are re-signed at half their validity even when nothing changed, and the
/// delegated responder's certificate is replaced at half its life.
public final class RevocationService: Service, Sendable {
    public struct Settings: Sendable, Hashable, Codable {
        /// A CRL's `nextUpdate` is this long after its `thisUpdate`; it is re-signed at half of it.
        public var crlValidity: TimeInterval
        /// An OCSP answer's `nextUpdate` is this long after its `thisUpdate`; an answer without a
        /// nonce is reused for half of it (or until a change).
        public var ocspValidity: TimeInterval
        /// Whether a delegated responder (id-kp-OCSPSigning) signs answers, rather than the CA itself.
        public var delegatedResponder: Bool
        /// How long a delegated responder's certificate is valid; a new one replaces it at half.
        public var responderLifetime: TimeInterval

        public init(
            crlValidity: TimeInterval = 86400, ocspValidity: TimeInterval = 3600, delegatedResponder: Bool = true,
            responderLifetime: TimeInterval = 2 * 86400
        ) {
            self.crlValidity = crlValidity
            self.ocspValidity = ocspValidity
            self.delegatedResponder = delegatedResponder
            self.responderLifetime = responderLifetime
        }
    }

    /// One CA's current CRL.
    public struct PublishedCRL: Sendable {
        public let der: [UInt8]
        public let number: UInt64
        public let thisUpdate: Date
        public let nextUpdate: Date
        public let entries: Int
    }

    /// What is published now.
    struct Published: Sendable {
        var authorities: [IssuingAuthority]
        var crls: [String: PublishedCRL]
        var responder: OCSPResponder
        /// When the responder certificates are to be replaced.
        var responderRenewal: Date
    }

    /// Answers without a nonce, reusable until they expire or the registry changes.
    struct AnswerCache: Sendable {
        var generation = 0
        var answers: [[UInt8]: (der: [UInt8], until: Date)] = [:]
        static let capacity = 100_000
    }

    /// The actions whose events change what is published.
    static let actions: [EventAction] = [.certificateStatus, .deviceStatus, .tenantCA, .tenantCreate]

    let store: any RevocationStore
    let authorities: IssuingAuthorities
    let settings: Settings
    let logger: Logger
    private let published = Mutex<Published?>(nil)
    private let cache = Mutex(AnswerCache())
    private let lastNumber = Mutex<UInt64>(0)
    private let refusals: RefusalCounter

    public init(store: any RevocationStore, authorities: IssuingAuthorities, settings: Settings = .init(), logger: Logger) {
        self.store = store
        self.authorities = authorities
        self.settings = settings
        self.logger = logger
        self.refusals = RefusalCounter(store: store)
    }

    // MARK: Publishing

    /// Signs every CA's CRL and makes the responders; done once before the listener answers.
    public func prepare(now: Date = Date()) async throws {
        try await republish(now: now, reload: true)
    }

    /// Re-reads the CAs if asked, re-signs every CRL, and (when due) replaces the responders.
    func republish(now: Date, reload: Bool, only names: Set<String>? = nil) async throws {
        let current = published.withLock { $0 }
        let authorities = reload || current == nil ? try await self.authorities.all() : current!.authorities
        var crls = current?.crls ?? [:]
        for authority in authorities where names == nil || names!.contains(authority.name) || crls[authority.name] == nil {
            let crl = try sign(authority, now: now)
            crls[authority.name] = crl
            logger.info("CRL signed", metadata: ["crl": "\(authority.name)", "number": "\(crl.number)", "entries": "\(crl.entries)"])
        }
        var responder = current?.responder
        var renewal = current?.responderRenewal ?? now
        if reload || responder == nil || now >= renewal {
            responder = try makeResponder(authorities, now: now)
            renewal = now + (settings.delegatedResponder ? settings.responderLifetime / 2 : 365 * 86400)
        }
        let next = Published(authorities: authorities, crls: crls, responder: responder!, responderRenewal: renewal)
        published.withLock { $0 = next }
        invalidateAnswers()
    }

    /// A CRL signed now: its number rises with the time (milliseconds), and always by at least one.
    func sign(_ authority: IssuingAuthority, now: Date) throws -> PublishedCRL {
        let entries = try store.revokedCertificates(issuer: authority.keyIdentifier, now: now)
        let number = lastNumber.withLock { last in
            last = max(last + 1, UInt64(max(0, now.timeIntervalSince1970 * 1000)))
            return last
        }
        let crl = CertificateRevocationList(
            issuer: authority.certificate, number: number, thisUpdate: now, nextUpdate: now + settings.crlValidity,
            distributionPoint: authority.crlURL ?? "http://localhost/crl/\(authority.name).crl", entries: entries)
        let der = try crl.signed(by: RevocationSigner(key: authority.signingKey))
        return PublishedCRL(der: der, number: number, thisUpdate: now, nextUpdate: now + settings.crlValidity, entries: entries.count)
    }

    func makeResponder(_ authorities: [IssuingAuthority], now: Date) throws -> OCSPResponder {
        let issuers = try authorities.map { authority in
            let signer: OCSPResponse.Signer
            if settings.delegatedResponder {
                let delegate = try ResponderCertificate.issue(
                    issuer: authority.certificate, issuerKey: authority.signingKey, now: now, lifetime: settings.responderLifetime)
                signer = try .init(key: delegate.key, certificate: delegate.certificate, delegated: true)
            } else {
                signer = try .init(key: authority.signingKey, certificate: authority.certificate, delegated: false)
            }
            return try OCSPResponder.Issuer(id: authority.keyIdentifier, certificate: authority.certificate, signer: signer)
        }
        return OCSPResponder(issuers: issuers, validity: settings.ocspValidity)
    }

    private func invalidateAnswers() {
        cache.withLock { cache in
            cache.generation += 1
            cache.answers.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Answering

    /// The CRL published under a name (`hallmark`, `tenants/<id>`), if there is one.
    public func crl(named name: String) -> PublishedCRL? {
        published.withLock { $0?.crls[name] }
    }

    /// The delegated responder's certificate for each CA (none when the CA signs answers itself).
    public var responderCertificates: [Certificate] {
        published.withLock { $0?.responder.issuers.compactMap(\.signer.delegate) ?? [] }
    }

    /// The pre-signed answer to exactly this request, if one is still good: no I/O, so the
    /// listener may call it on its event loop.
    public func cachedAnswer(_ request: [UInt8], now: Date = Date()) -> [UInt8]? {
        cache.withLock { cache -> [UInt8]? in
            guard let entry = cache.answers[request], entry.until > now else { return nil }
            return entry.der
        }
    }

    /// Answers a DER OCSP request: from the cache when it has no nonce and nothing changed, else
    /// from the registry, signed now. Never throws: a bad request is `malformedRequest`.
    public func answer(_ request: [UInt8], source: String?, now: Date = Date()) async -> [UInt8] {
        guard let responder = published.withLock({ $0?.responder }) else { return OCSPResponse.unsuccessful(.tryLater) }
        if let hit = cachedAnswer(request, now: now) { return hit }
        let generation = cache.withLock { $0.generation }
        let store = self.store
        let answer = responder.answer(request, now: now) { issuer, serial in
            try store.revocationStatus(issuer: issuer.id, serial: serial.hexString)
        }
        switch answer.outcome {
        case .answered:
            break
        case .malformed(let why):
            await refusals.count(code: "ocsp_malformed_request", detail: why, source: source, now: now)
        case .unauthorized:
            await refusals.count(code: "ocsp_unauthorized", detail: "a request about a CA Hallmark does not run", source: source, now: now)
        case .failed(let why):
            logger.error("OCSP answer not signed: \(why)")
        }
        if let until = answer.reusableUntil {
            cache.withLock { cache in
                guard cache.generation == generation else { return }
                if cache.answers.count >= AnswerCache.capacity { cache.answers.removeAll(keepingCapacity: true) }
                cache.answers[request] = (answer.der, until)
            }
        }
        return answer.der
    }

    // MARK: Following the registry

    public func run() async throws {
        var last = (try? store.latestEventID()) ?? 0
        var lastRefusalFlush = Date()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(250))
            let now = Date()
            do {
                let events = try store.events(after: last, actions: Self.actions, limit: 1000)
                if let newest = events.last { last = newest.id }
                let reload = events.contains { $0.event.action == .tenantCA || $0.event.action == .tenantCreate }
                let due = published.withLock { state in
                    state.map { state in
                        state.crls.filter { now >= $0.value.thisUpdate + settings.crlValidity / 2 }.map(\.key)
                    } ?? []
                }
                let renew = published.withLock { state in state.map { now >= $0.responderRenewal } ?? true }
                if !events.isEmpty || !due.isEmpty || renew {
                    // A change re-signs the CRL of each CA the tenants concerned may hold certificates of.
                    var names = Set(due)
                    if !events.isEmpty {
                        names.insert("hallmark")
                        for event in events { names.insert(IssuingAuthority.name(tenant: event.event.tenant)) }
                    }
                    try await republish(now: now, reload: reload, only: names)
                }
            } catch {
                logger.error("revocation publishing failed: \(error)")
            }
            if now.timeIntervalSince(lastRefusalFlush) >= RefusalCounter.window {
                lastRefusalFlush = now
                await refusals.flush(now: now)
            }
        }
    }
}

/// Logs refusals of one kind as events without letting a flood grow the log: the first of a code
/// in each minute is an event; the rest are counted into one event when the minute ends.
actor RefusalCounter {
    static let window: TimeInterval = 60
    let store: any RevocationStore
    private var counted: [String: (count: Int, detail: String)] = [:]
    private var logged: Set<String> = []

    init(store: any RevocationStore) { self.store = store }

    func count(code: String, detail: String, source: String?, now: Date) async {
        if logged.insert(code).inserted {
            try? await store.append(
                AuditEvent(at: now, tenant: Registry.defaultTenant, action: .revocation, decision: .refuse, code: code, source: source, detail: detail))
        } else {
            counted[code, default: (0, detail)].count += 1
        }
    }

    func flush(now: Date) async {
        let pending = counted
        counted = [:]
        logged = []
        for (code, entry) in pending.sorted(by: { $0.key < $1.key }) {
            try? await store.append(
                AuditEvent(
                    at: now, tenant: Registry.defaultTenant, action: .revocation, decision: .refuse, code: code,
                    detail: "\(entry.count) more in the last minute, counted, not logged one by one (the last: \(entry.detail))"))
        }
    }
}
