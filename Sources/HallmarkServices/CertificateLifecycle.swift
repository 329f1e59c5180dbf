import HallmarkCore
import HallmarkStore
import Logging
import ServiceLifecycle

import Foundation

/// Retires old certificates: it follows successful MQTT connections in the event log, and the
/// first connection on a renewal's new certificate revokes (superseded) the one it replaced.
/// Once a minute it retires what its product's grace has let run out, and announces the
/// certificates close to expiry (`certificate_expiring`), and revokes the certificates fleet
/// provisioning gave out that nobody registered within the hour.
public struct CertificateLifecycle: Service, Sendable {
    let store: any RevocationStore
    let logger: Logger
    /// How often the grace and expiry scans run.
    let scanInterval: TimeInterval

    public init(store: any RevocationStore, logger: Logger, scanInterval: TimeInterval = 60) {
        self.store = store
        self.logger = logger
        self.scanInterval = scanInterval
    }

    public func run() async throws {
        var last = (try? store.latestEventID()) ?? 0
        var lastScan = Date.distantPast
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = Date()
            do {
                let connections = try store.events(after: last, actions: [.mqttConnect], limit: 5000)
                if let newest = connections.last { last = newest.id }
                let serials = connections.compactMap { $0.event.decision == .allow ? $0.event.serial : nil }
                let retired = try await store.retireSuperseded(replacedBy: serials, now: now)
                if retired > 0 { logger.info("superseded certificates retired", metadata: ["count": "\(retired)", "why": "replacement in use"]) }
                // An indexed read of the open tokens past their hour: cheap enough for every second.
                let unregistered = try await store.sweepProvisioningTokens(now: now)
                if unregistered > 0 { logger.info("unregistered certificates revoked", metadata: ["count": "\(unregistered)"]) }
                if now.timeIntervalSince(lastScan) >= scanInterval {
                    lastScan = now
                    let expired = try await store.retireSupersededPastGrace(now: now)
                    let warned = try await store.warnExpiring(now: now)
                    if expired + warned > 0 {
                        logger.info("certificate lifecycle", metadata: ["retired": "\(expired)", "expiring": "\(warned)"])
                    }
                }
            } catch {
                logger.error("certificate lifecycle failed: \(error)")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
