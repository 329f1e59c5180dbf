import MQTTCore
import NIOCore

/// Flow control: a publisher whose messages fill a subscriber's queue stops reading until that
/// subscriber has caught up, so that its PUBLISHes wait in TCP instead of being dropped. What was
/// already read when the pause began waits, decoded, in ``pausedPackets``; acknowledgements of the
/// broker's own deliveries and pings are handled at once, so that a paused client's session goes
/// on draining and its keep-alive holds.
extension MQTTConnectionHandler {
    /// The longest a publisher is held back at one time, whatever the subscriber does.
    static let maximumPause = TimeAmount.milliseconds(250)

    /// Holds reads (outbound `read` events) while paused.
    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// Stops reading until a congested session wakes this connection, or ``maximumPause`` passes.
    func pauseReading() {
        guard !readsPaused, let context else { return }
        readsPaused = true
        pauseCount += 1
        let pause = pauseCount
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.maximumPause) { [weak self] in
            guard let self, self.readsPaused, self.pauseCount == pause else { return }
            self.resumeReading()
        }
    }

    /// Handles the packets held while paused (until a new pause, if one comes), then reads again.
    func resumeReading() {
        guard readsPaused else { return }
        readsPaused = false
        while !readsPaused, state == .connected, let packet = pausedPackets.popFirst() { handle(packet) }
        if state != .connected { pausedPackets.removeAll() }
        flushOutbound()
        if !readsPaused, readHeld, let context {
            readHeld = false
            context.read()
        }
    }
}

extension Packet {
    /// Packets handled even while the connection's reads are paused: they never publish.
    var bypassesFlowControl: Bool {
        switch self {
        case .puback, .pubrec, .pubcomp, .pingreq: true
        default: false
        }
    }
}
