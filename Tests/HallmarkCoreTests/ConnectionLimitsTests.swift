import HallmarkCore
import Testing

@Suite struct ConnectionLimitsTests {
    @Test func anAddressHoldsAtMostTheLimitAndEachPlaceIsGivenBackOnce() {
        let pending = PendingConnections(limit: 2)
        let first = pending.admit("192.0.2.1")
        let second = pending.admit("192.0.2.1")
        #expect(first != nil && second != nil)
        #expect(pending.admit("192.0.2.1") == nil)  // a third from the same address
        #expect(pending.admit("192.0.2.2") != nil)  // another address is not affected
        first?.release()
        first?.release()  // the connection proved itself, then closed: given back once
        #expect(pending.count("192.0.2.1") == 1)
        #expect(pending.admit("192.0.2.1") != nil)
        #expect(pending.admit("192.0.2.1") == nil)
    }

    @Test func noLimitAdmitsEveryone() {
        let pending = PendingConnections(limit: 0)
        for _ in 0..<1000 { #expect(pending.admit("192.0.2.1") != nil) }
        #expect(pending.count("192.0.2.1") == 0)
    }

    @Test func theDefaultsAreTheDocumentedOnes() {
        let limits = ConnectionLimits()
        #expect(limits.handshakeTimeout == 10 && limits.idleTimeout == 60 && limits.requestTimeout == 30)
        #expect(limits.maximumPendingPerAddress == 32 && limits.maximumHeaderSize == 16 * 1024)
    }
}
