import ServiceLifecycle

extension HallmarkServer {
    /// Runs the server in this process for the duration of `body`, which gets the bound ports;
    /// then shuts it down gracefully. For the demo and tests (port 0 picks a free port).
    public func withRunning<Result: Sendable>(_ body: (Ports) async throws -> Result) async throws -> Result {
        let (ports, continuation) = AsyncStream<Ports>.makeStream()
        let group = try await makeServiceGroup(signals: []) { ports in continuation.yield(ports) }
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                await group.triggerGracefulShutdown()
                throw CancellationError()
            }
            do {
                let result = try await body(port)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }
}
