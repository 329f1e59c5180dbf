import HallmarkCore
import HallmarkStore
import Logging
import ServiceLifecycle
import Synchronization

/// Writes the broker's events (connections, refusals, protocol errors) to the registry's log off
/// the event loops: a bounded queue, appended in batches of one transaction each, and drained when
/// the server shuts down gracefully. A full queue drops the newest events, counts them, and says so
/// in the log with an `events_dropped` alarm once there is room again.
final class EventWriter: Service, Sendable {
    static let capacity = 10_000
    static let batchSize = 500

    private let registry: any BrokerStore
    private let logger: Logger
    private let queue = Mutex<(events: [AuditEvent], dropped: Int)>(([], 0))
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(registry: any BrokerStore, logger: Logger) {
        self.registry = registry
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an event; never blocks.
    func record(_ event: AuditEvent) {
        let queued = queue.withLock { queue in
            guard queue.events.count < Self.capacity else {
                queue.dropped += 1
                return false
            }
            queue.events.append(event)
            return true
        }
        if queued { wake.yield() }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakeups { await writeQueued() }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        await writeQueued()
    }

    /// Writes everything queued, a batch per transaction.
    private func writeQueued() async {
        while true {
            let (batch, dropped) = queue.withLock { queue in
                let batch = Array(queue.events.prefix(Self.batchSize))
                queue.events.removeFirst(batch.count)
                defer { queue.dropped = 0 }
                return (batch, queue.dropped)
            }
            var events = batch
            if dropped > 0 {
                logger.error("event queue full: \(dropped) broker events dropped")
                events.append(AuditEvent(
                    at: batch.last?.at ?? .now, tenant: Registry.defaultTenant, action: .alarm, decision: .alarm, code: "events_dropped",
                    detail: "\(dropped) broker events were dropped: more than \(Self.capacity) waited to be written"))
            }
            if events.isEmpty { return }
            do { try await registry.append(events) } catch { logger.error("\(events.count) events not written: \(error)") }
            if batch.count < Self.batchSize { return }
        }
    }
}
