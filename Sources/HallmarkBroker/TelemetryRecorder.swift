import Synchronization
import HallmarkStore
import Logging
import NIOCore
import ServiceLifecycle

import Foundation

/// Keeps what things publish, per thing and topic, without putting the store on the publish
/// path: samples are buffered and written once a second in one transaction, at most
/// ``Registry/telemetryHistory`` per thing and topic per write, payloads cut at ``maximumPayload``.
final class TelemetryRecorder: Service, Sendable {
    static let maximumPayload = 4096
    private let buffer = Mutex<(samples: [TelemetrySample], perKey: [String: Int])>(([], [:]))
    private let registry: any BrokerStore
    private let logger: Logger

    init(registry: any BrokerStore, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    func record(tenant: String, thing: String, topic: String, payload: ByteBuffer) {
        let key = tenant + "\u{0}" + thing + "\u{0}" + topic
        buffer.withLock { state in
            let count = state.perKey[key, default: 0]
            guard count < Registry.telemetryHistory else { return }
            state.perKey[key] = count + 1
            let bytes = payload.getBytes(at: payload.readerIndex, length: min(payload.readableBytes, Self.maximumPayload)) ?? []
            state.samples.append(TelemetrySample(tenant: tenant, thing: thing, topic: topic, at: Date(), payload: bytes))
        }
    }

    /// Writes what has been buffered once a second, and a last time when the server shuts down.
    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            do { try await flush() } catch { logger.error("telemetry not written: \(error)") }
        }
        try await flush()
    }

    /// Writes what has been buffered.
    func flush() async throws {
        let samples = buffer.withLock { state in
            defer { state = ([], [:]) }
            return state.samples
        }
        try await registry.appendTelemetry(samples)
    }
}
