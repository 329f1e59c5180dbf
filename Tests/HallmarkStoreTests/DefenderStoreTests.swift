import Crypto
import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import HallmarkTesting
import Testing
import X509

/// Device Defender's service over a real SQLite registry, without the broker: signatures checked
/// against the thing's own certificate, replays and throttling refused, and an alarm's mitigation
/// in the violation's own commit, once however many datapoints race.
@Suite struct DefenderStoreTests {
    let registry: Registry
    let service: DefenderService
    let keys: [P256.Signing.PrivateKey]
    let things: [String]

    init() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-defender-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        let pki = try TestPKI()
        var keys: [P256.Signing.PrivateKey] = []
        var entries: [AllowlistEntry] = []
        for index in 1...2 {
            let key = P256.Signing.PrivateKey()
            keys.append(key)
            entries.append(AllowlistEntry(udid: try UDID(validating: "DD-\(index)"), key: try DeviceKey(Certificate.PublicKey(key.publicKey)), line: index))
        }
        var result = AllowlistParser.Result()
        result.entries = entries
        result.rowsRead = entries.count
        _ = try registry.importAllowlist(result, source: "test", skipInvalid: false, now: Date())
        let enrollment = EnrollmentService(registry: registry, authority: pki.authority)
        var things: [String] = []
        for (index, key) in keys.enumerated() {
            let csr = try TestPKI.der(TestPKI.csr(commonName: "DD-\(index + 1)", key: Certificate.PrivateKey(key)))
            things.append(try await enrollment.enroll(csrDER: csr, source: nil).record.thingName)
        }
        self.keys = keys
        self.things = things
        service = DefenderService(registry: registry, webhook: nil, logger: .init(label: "test"))
    }

    func report(id: Int64, custom: [String: Double] = [:]) -> [UInt8] {
        var pairs = [CBORPair(.text("header"), .map([CBORPair(.text("report_id"), .unsigned(UInt64(id))), CBORPair(.text("version"), .text("1.0"))]))]
        pairs.append(
            CBORPair(.text("custom_metrics"), .map(custom.map { CBORPair(.text($0.key), .array([.map([CBORPair(.text("number"), .double($0.value))])])) })))
        return CBOR.map(pairs).encoded
    }

    func submit(_ payload: [UInt8], thing index: Int, format: DefenderTopic.Format, kind: String = "defender/metrics") async throws -> [String: Any] {
        let prefix = format == .cose ? "$hallmark" : "$aws"
        let topic = try #require(DefenderTopic(parsing: "\(prefix)/things/\(things[index])/\(kind)/\(format.rawValue)"))
        let answer = await service.submit(
            DefenderSubmission(topic: topic, payload: payload, tenant: "default", thing: things[index], fingerprint: "", source: "test"))
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.payload)) as? [String: Any])
    }

    func code(_ answer: [String: Any]) -> String? { answer["hallmarkCode"] as? String }

    @Test func onlyTheThingsOwnKeySignsItsReports() async throws {
        let own = try COSESign1.sign(report(id: 10, custom: ["x": 1]), with: keys[0], keyID: nil)
        #expect(try await submit(own, thing: 0, format: .cose)["status"] as? String == "ACCEPTED")
        let foreign = try COSESign1.sign(report(id: 11, custom: ["x": 1]), with: keys[1], keyID: nil)
        #expect(code(try await submit(foreign, thing: 0, format: .cose)) == "report_signature_invalid")
        // The same bytes again: a replay, whatever the signature.
        #expect(code(try await submit(own, thing: 0, format: .cose)) == "report_replayed")
        // A new id within the product's 300 s: throttled.
        #expect(code(try await submit(report(id: 12, custom: ["x": 1]), thing: 0, format: .cbor)) == "report_throttled")
        let reports = try registry.defenderReports(tenant: "default", thing: things[0], limit: 10)
        #expect(reports.map(\.reportID) == [10])
        #expect(reports.first?.signed == true)
        #expect(try registry.events(code: "report_signature_invalid").count == 1)
    }

    @Test func signedOnlyProductsRefuseUnsignedReports() async throws {
        try await registry.setDefenderSettings(tenant: "default", product: "default", signedOnly: true, minimumInterval: nil, now: Date())
        #expect(code(try await submit(report(id: 5, custom: ["x": 1]), thing: 1, format: .cbor)) == "report_signature_required")
        let signed = try COSESign1.sign(report(id: 6, custom: ["x": 1]), with: keys[1], keyID: nil)
        #expect(try await submit(signed, thing: 1, format: .cose)["status"] as? String == "ACCEPTED")
    }

    @Test func anAlarmQuarantinesTheDeviceInItsOwnCommitOnce() async throws {
        let profile = #"""
            {"behaviors": [{"name": "cpu", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 50}}}],
             "mitigationActions": [{"quarantineDeviceParams": {}}]}
            """#
        try registry.putSecurityProfile(tenant: "default", name: "guard", product: "default", document: profile, replace: false, now: Date())
        await service.reloadProfiles()
        let signed = try COSESign1.sign(report(id: 20, custom: ["cpu": 90]), with: keys[0], keyID: nil)
        #expect(try await submit(signed, thing: 0, format: .cose)["status"] as? String == "ACCEPTED")
        let open = try registry.violations(tenant: "default", activeOnly: true)
        #expect(open.count == 1)
        #expect(open.first?.mitigations == "quarantine-device")
        #expect(try registry.device(try UDID(validating: "DD-1"))?.status == .quarantined)
        #expect(try registry.device(try UDID(validating: "DD-2"))?.status == .enrolled)
        // Racing opens of the same violation record one.
        let record = try #require(open.first)
        let again = await withTaskGroup(of: Registry.ViolationRecord?.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var copy = record
                    copy.id = UUID().uuidString
                    return try? await registry.openViolation(copy, mitigations: [.quarantineDevice], now: Date())
                }
            }
            return await group.reduce(into: [Registry.ViolationRecord?]()) { $0.append($1) }
        }
        #expect(again.compactMap { $0 }.isEmpty)
        #expect(try registry.violations(tenant: nil, activeOnly: false).count == 1)
        let closed = try await registry.closeViolation(
            tenant: "default", thing: things[0], profile: "guard", behavior: "cpu", state: .cleared, metricValue: "10", now: Date())
        #expect(closed?.state == .cleared)
        #expect(try registry.violations(tenant: "default", activeOnly: true).isEmpty)
    }

    @Test func aProfileForAMissingProductOrWithAnUnknownTargetIsRefused() throws {
        let profile = #"{"behaviors": [{"name": "cpu", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 50}}}]}"#
        #expect(throws: HallmarkError(.notFound, "", remedy: "")) {
            try registry.putSecurityProfile(tenant: "default", name: "p", product: "nope", document: profile, replace: false, now: Date())
        }
        let moving = #"{"behaviors": [{"name": "cpu", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 50}}}], "mitigationActions": [{"moveToProductParams": {"product": "jail"}}]}"#
        #expect(throws: HallmarkError(.securityProfileInvalid, "", remedy: "")) {
            try registry.putSecurityProfile(tenant: "default", name: "p", product: "default", document: moving, replace: false, now: Date())
        }
        try registry.putSecurityProfile(tenant: "default", name: "p", product: "default", document: profile, replace: false, now: Date())
        #expect(throws: HallmarkError(.securityProfileExists, "", remedy: "")) {
            try registry.putSecurityProfile(tenant: "default", name: "p", product: "default", document: profile, replace: false, now: Date())
        }
    }
}
