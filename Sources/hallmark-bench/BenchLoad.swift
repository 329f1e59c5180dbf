import HallmarkDevice
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import X509

/// Drives enrollments over keep-alive HTTPS connections and records latency.
///
/// The load shares the machine's cores with the server it measures, so it is kept lean: each
/// connection is a NIO pipeline (TLS, HTTP/1.1 client codec, ``EnrollmentDriver``) that sends a
/// device's request as soon as the previous answer has arrived, on the connection's event loop,
/// without a trip through Swift's thread pool per request. The device agent's `HTTPSConnection`
/// does the same exchange through an async interface; driving the load, it took 92–105 µs of CPU
/// per enrollment, against 42–67 µs here.
enum BenchLoad {
    struct Result {
        var succeeded: Int
        var failed: Int
        var seconds: Double
        var p50: Double
        var p99: Double
        var max: Double
        var throughput: Double { Double(succeeded) / seconds }
    }

    static func run(fleet: [BenchDevice], port: Int, trust: [Certificate], concurrency: Int) async throws -> Result {
        let tls = try HTTPSConnection.ClientTLS(trustRoots: trust)
        let group = MultiThreadedEventLoopGroup.singleton
        let started = NIODeadline.now()
        let lanes = try await withThrowingTaskGroup(of: EnrollmentDriver.Outcome.self) { tasks in
            for lane in 0..<min(concurrency, fleet.count) {
                let bodies = fleet[lane...].striding(by: concurrency).map(\.body)
                tasks.addTask {
                    let loop = group.next()
                    let finished = loop.makePromise(of: EnrollmentDriver.Outcome.self)
                    let channel = try await ClientBootstrap(group: loop)
                        .channelOption(.socketOption(.tcp_nodelay), value: 1)
                        .connectTimeout(.seconds(10))
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    try NIOSSLClientHandler(context: tls.context, serverHostname: nil))
                                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                                try channel.pipeline.syncOperations.addHandler(
                                    EnrollmentDriver(bodies: bodies, finished: finished))
                            }
                        }
                        .connect(host: "127.0.0.1", port: port).get()
                    // A connection lost early fails the promise; one closed after the last answer is done.
                    channel.closeFuture.whenComplete { _ in finished.fail(ChannelError.ioOnClosedChannel) }
                    let outcome = try await finished.futureResult.get()
                    try? await channel.close()
                    return outcome
                }
            }
            var all: [EnrollmentDriver.Outcome] = []
            for try await lane in tasks { all.append(lane) }
            return all
        }
        let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        let sorted = lanes.flatMap(\.latencies).sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        return Result(
            succeeded: sorted.count, failed: lanes.map(\.failures).reduce(0, +), seconds: seconds,
            p50: percentile(0.5), p99: percentile(0.99), max: sorted.last ?? 0)
    }
}

/// One connection's load: sends each body as an EST `simpleenroll`, one after another, and
/// records each answer's latency (200 with a body) or counts it failed.
private final class EnrollmentDriver: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    struct Outcome: Sendable {
        var latencies: [Double] = []
        var failures = 0
    }

    private let bodies: [[UInt8]]
    private let finished: EventLoopPromise<Outcome>
    private var next = 0
    private var sent = NIODeadline.now()
    private var status: HTTPResponseStatus = .ok
    private var bodyBytes = 0
    private var outcome = Outcome()

    init(bodies: [[UInt8]], finished: EventLoopPromise<Outcome>) {
        self.bodies = bodies
        self.finished = finished
        outcome.latencies.reserveCapacity(bodies.count)
    }

    func channelActive(context: ChannelHandlerContext) {
        sendNext(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            if status == .ok, bodyBytes > 0 {
                outcome.latencies.append(Double((NIODeadline.now() - sent).nanoseconds) / 1e9)
            } else {
                outcome.failures += 1
            }
            sendNext(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finished.fail(error)
        context.close(promise: nil)
    }

    private func sendNext(context: ChannelHandlerContext) {
        guard next < bodies.count else {
            finished.succeed(outcome)
            return
        }
        let body = bodies[next]
        next += 1
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/.well-known/est/simpleenroll")
        head.headers.add(name: "Host", value: "127.0.0.1")
        head.headers.add(name: "Content-Type", value: "application/pkcs10")
        head.headers.add(name: "Content-Length", value: String(body.count))
        sent = NIODeadline.now()
        // One flush for the three parts: one TLS record, one segment.
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
