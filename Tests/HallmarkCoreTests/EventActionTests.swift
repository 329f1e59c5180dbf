import HallmarkCore
import Testing

/// The event actions and what each declares for live sessions: the broker's change feed is derived
/// from this table alone.
@Suite struct EventActionTests {
    @Test func theLiveActionsAreThoseThatChangeSessionsOrTrust() {
        #expect(Set(EventAction.live.map(\.rawValue)) == [
            "certificate.status", "thing.status", "device.status", "policy.attachment", "policy.put", "ca.status",
            "tenant.create", "tenant.ca",
        ])
    }

    @Test func eachLiveActionNamesItsScope() {
        #expect(EventAction.certificateStatus.liveEffect == .init(sessions: .subject, reloadsTrust: false))
        #expect(EventAction.policyPut.liveEffect.sessions == .tenant)
        #expect(EventAction.caStatus.liveEffect == .init(sessions: .tenantsRegisteredCAs, reloadsTrust: true))
        #expect(EventAction.tenantCA.liveEffect == .init(sessions: nil, reloadsTrust: true))
        #expect(EventAction.enroll.liveEffect == .none)
    }

    @Test func storedNamesReadBack() {
        for action in EventAction.all { #expect(EventAction(rawValue: action.rawValue) == action) }
        #expect(EventAction(rawValue: "policy.delete") == nil)
    }
}
