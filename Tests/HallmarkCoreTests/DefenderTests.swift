import Crypto
import Foundation
import HallmarkCore
import Testing

@Suite struct DefenderTests {
    static let invalid = HallmarkError(.reportInvalid, "", remedy: "")

    /// What AWS's own collector (AWSIoTDeviceDefenderAgentSDK 2.0.0) writes, long names.
    static let collectorLong = #"""
        {"custom_metrics":{"cpu_usage":[{"number":2.4}]},"header":{"report_id":1796153706,"version":"1.0"},
         "metrics":{"listening_tcp_ports":{"ports":[{"interface":"lo","port":18881},{"interface":"eth0","port":22}],"total":2},
                    "network_stats":{"bytes_in":120,"bytes_out":80,"packets_in":3,"packets_out":2},
                    "tcp_connections":{"established_connections":{"connections":[{"local_interface":"lo","local_port":18881,"remote_addr":"127.0.0.1:55077"}],"total":1}}}}
        """#
    static let collectorShort = #"""
        {"hed":{"rid":1796153707,"v":"1.0"},"met":{"ns":{"bi":1,"bo":2,"pi":3,"po":4},"tc":{"ec":{"cs":[{"rad":"10.0.0.9:34662","li":"lo","lp":37691}],"t":1}},
         "tp":{"pts":[{"pt":443}],"t":1},"up":{"pts":[{"pt":53,"if":"eth0"}],"t":1}}}
        """#

    @Test func theCollectorsReportsAreRead() throws {
        let long = try DefenderReport.decode(Array(Self.collectorLong.utf8), format: .json)
        #expect(long.reportID == 1796153706)
        #expect(long.listeningTCPPorts?.ports == [18881, 22] && long.listeningTCPPorts?.total == 2)
        #expect(long.establishedConnections?.remoteAddresses == ["127.0.0.1:55077"])
        #expect(long.customMetrics["cpu_usage"] == .number(2.4))
        let points = long.datapoints
        #expect(points["aws:all-bytes-in"] == .number(120))
        #expect(points["aws:num-established-tcp-connections"] == .number(1))
        #expect(points["aws:destination-ip-addresses"] == .addresses(["127.0.0.1"]))
        #expect(points["aws:listening-tcp-ports"] == .ports([18881, 22]))
        let short = try DefenderReport.decode(Array(Self.collectorShort.utf8), format: .json)
        #expect(short.networkStats?.bytesIn == 1 && short.networkStats?.packetsOut == 4)
        #expect(short.listeningUDPPorts?.ports == [53])
        // The same report in CBOR.
        let object = try JSONSerialization.jsonObject(with: Data(Self.collectorShort.utf8))
        #expect(try DefenderReport.decode(CBOR(jsonObject: object)!.encoded, format: .cbor) == short)
    }

    @Test func malformedReportsAreRefusedWithACode() {
        let cases = [
            #"{"metrics":{}}"#,  // no header
            #"{"header":{"report_id":1,"version":"2.0"},"metrics":{}}"#,
            #"{"header":{"report_id":-4,"version":"1.0"},"metrics":{}}"#,
            #"{"header":{"report_id":1,"version":"1.0"}}"#,  // neither metrics nor custom_metrics
            #"{"header":{"report_id":1,"version":"1.0"},"metrics":{"listening_tcp_ports":{"ports":[{"port":70000}]}}}"#,
            #"{"header":{"report_id":1,"version":"1.0"},"metrics":{"tcp_connections":{"established_connections":{"connections":[{"remote_addr":"nowhere"}]}}}}"#,
            #"{"header":{"report_id":1,"version":"1.0"},"metrics":{"network_stats":{"bytes_in":-1}}}"#,
            #"{"header":{"report_id":1,"version":"1.0"},"metrics":{"cpu":{}}}"#,  // unknown key
            #"{"header":{"report_id":1,"rid":2,"version":"1.0"},"metrics":{}}"#,  // long and short at once
            #"{"header":{"report_id":1,"version":"1.0"},"custom_metrics":{"x":[{"number":1},{"number":2}]}}"#,
            #"{"header":{"report_id":1,"version":"1.0"},"custom_metrics":{"ips":[{"ip_list":["300.1.1.1"]}]}}"#,
            #"not json"#,
        ]
        for text in cases {
            #expect(throws: Self.invalid, "\(text)") { try DefenderReport.decode(Array(text.utf8), format: .json) }
        }
        #expect(throws: HallmarkError(.bodyTooLarge, "", remedy: "")) {
            try DefenderReport.decode([UInt8](repeating: 0x20, count: DefenderReport.maximumSize + 1), format: .json)
        }
    }

    @Test func topicsAreAWSsAndHallmarks() {
        #expect(DefenderTopic(parsing: "$aws/things/t1/defender/metrics/json")?.format == .json)
        #expect(DefenderTopic(parsing: "$aws/things/t1/defender/metrics/cbor")?.format == .cbor)
        #expect(DefenderTopic(parsing: "$hallmark/things/t1/defender/metrics/cose")?.kind == .metrics)
        #expect(DefenderTopic(parsing: "$hallmark/things/t1/events/cose")?.kind == .event)
        #expect(DefenderTopic(parsing: "$aws/things/t1/defender/metrics/cose") == nil)
        #expect(DefenderTopic(parsing: "$aws/things/t1/defender/metrics/json/accepted") == nil)
        #expect(DefenderTopic(parsing: "$aws/things/" + String(repeating: "x", count: 129) + "/defender/metrics/json") == nil)
        #expect(DefenderTopic.isDefenderTopic("$aws/things/t1/defender/metrics/json/rejected"))
        #expect(!DefenderTopic.isDefenderTopic("$aws/things/t1/jobs/get"))
    }

    @Test func aSignedReportVerifiesAndATamperedOneDoesNot() throws {
        let key = P256.Signing.PrivateKey()
        let payload = CBOR.map([CBORPair(.text("x"), .unsigned(1))]).encoded
        let signed = try COSESign1.sign(payload, with: key, keyID: [1, 2])
        #expect(signed.first == 0xd2)  // tag 18
        let message = try COSESign1(decoding: signed)
        #expect(message.payload == payload)
        #expect(message.keyID == [1, 2])
        #expect(message.isValidSignature(for: key.publicKey))
        #expect(!message.isValidSignature(for: P256.Signing.PrivateKey().publicKey))
        var tampered = signed
        tampered[tampered.count - 70] ^= 1  // a payload byte
        #expect((try? COSESign1(decoding: tampered)).map { !$0.isValidSignature(for: key.publicKey) } ?? true)
        // Not ES256, detached payloads, DER signatures: refused.
        let es384 = CBOR.map([CBORPair(.unsigned(1), .negative(34))]).encoded
        let other = CBOR.tagged(18, .array([.bytes(es384), .map([]), .bytes(payload), .bytes([UInt8](repeating: 0, count: 64))])).encoded
        #expect(throws: Self.invalid) { try COSESign1(decoding: other) }
        let detached = CBOR.tagged(18, .array([.bytes(message.protectedHeader), .map([]), .null, .bytes(message.signature)])).encoded
        #expect(throws: Self.invalid) { try COSESign1(decoding: detached) }
        let der = CBOR.array([.bytes(message.protectedHeader), .map([]), .bytes(payload), .bytes(Array(try key.signature(for: payload).derRepresentation))]).encoded
        #expect(throws: Self.invalid) { try COSESign1(decoding: der) }
    }

    @Test func securityEventsRoundTrip() throws {
        let event = SecurityEvent(eventID: 7, kind: .failoverBoot, time: 1_800_000_000, detail: "A to B")
        #expect(try SecurityEvent(decoding: event.encoded) == event)
        #expect(throws: Self.invalid) { try SecurityEvent(decoding: CBOR.map([CBORPair(.text("type"), .text("tamper"))]).encoded) }
        let unknown = CBOR.map([
            CBORPair(.text("event_id"), .unsigned(1)), CBORPair(.text("type"), .text("coffee")), CBORPair(.text("time"), .unsigned(5)),
        ]).encoded
        #expect(throws: Self.invalid) { try SecurityEvent(decoding: unknown) }
    }

    static let profile = #"""
        {"behaviors": [
          {"name": "denials", "metric": "aws:num-authorization-failures",
           "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}, "durationSeconds": 300, "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 2}},
          {"name": "ports", "metric": "aws:listening-tcp-ports", "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443, 8883]}}},
          {"name": "peers", "metric": "aws:destination-ip-addresses", "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]}}},
          {"name": "cpu", "metric": "cpu_usage", "criteria": {"comparisonOperator": "less-than-equals", "statisticalThreshold": {"statistic": "p90"}}, "suppressAlerts": true}
        ],
        "mitigationActions": [{"quarantineDeviceParams": {}}, {"updateDeviceCertificateParams": {"action": "REVOKE"}}]}
        """#

    @Test func profilesAreReadAsAWSWritesThem() throws {
        let profile = try SecurityProfile(json: Array(Self.profile.utf8))
        #expect(profile.behaviors.map(\.name) == ["denials", "ports", "peers", "cpu"])
        #expect(profile.behaviors[0].source == .cloud)
        #expect(profile.behaviors[3].threshold == .statistic(90))
        #expect(profile.behaviors[3].suppressAlerts)
        #expect(profile.mitigations == [.quarantineDevice, .revokeCertificate])
        let ports = profile.behaviors[1]
        #expect(ports.isNormal(.ports([443])))
        #expect(!ports.isNormal(.ports([443, 23])))
        let peers = profile.behaviors[2]
        #expect(peers.isNormal(.addresses(["10.1.2.3"])))
        #expect(!peers.isNormal(.addresses(["10.1.2.3", "192.0.2.1"])))
        #expect(profile.behaviors[3].isNormal(.number(99), statisticalThreshold: nil))  // no fleet yet
        #expect(!profile.behaviors[3].isNormal(.number(99), statisticalThreshold: 40))
    }

    @Test func whatIsNotEvaluatedIsRefusedAtCreation() {
        let refused = HallmarkError(.securityProfileInvalid, "", remedy: "")
        let cases = [
            #"{"behaviors": []}"#,
            #"{"behaviors": [{"name": "a", "metric": "aws:num-messages-sent", "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}}}]}"#,  // no duration
            #"{"behaviors": [{"name": "a", "metric": "aws:num-messages-sent", "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}, "durationSeconds": 42}}]}"#,
            #"{"behaviors": [{"name": "a", "metric": "aws:listening-tcp-ports", "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}}}]}"#,
            #"{"behaviors": [{"name": "a", "metric": "aws:unknown-metric", "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}}}]}"#,
            #"{"behaviors": [{"name": "a", "metric": "cpu", "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}}]}"#,
            #"{"behaviors": [{"name": "a", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 1}, "statisticalThreshold": {"statistic": "p50"}}}]}"#,
            #"{"behaviors": [{"name": "a", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 1}}}, {"name": "a", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 1}}}]}"#,
            #"{"behaviors": [{"name": "a", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 1}}}], "alertTargets": {}}"#,
            #"{"behaviors": [{"name": "a", "metric": "cpu", "criteria": {"comparisonOperator": "less-than", "value": {"number": 1}}}], "mitigationActions": [{"replaceDefaultPolicyVersionParams": {}}]}"#,
        ]
        for text in cases {
            #expect(throws: refused, "\(text)") { try SecurityProfile(json: Array(text.utf8)) }
        }
    }

    @Test func consecutiveDatapointsRaiseAndClearAlarms() throws {
        let behavior = try SecurityProfile(json: Array(Self.profile.utf8)).behaviors[0]
        var state = BehaviorState()
        #expect(state.record(normal: false, behavior) == nil)  // one of two
        #expect(state.record(normal: false, behavior) == .inAlarm)
        #expect(state.record(normal: false, behavior) == nil)  // already in alarm
        #expect(state.record(normal: true, behavior) == nil)
        #expect(state.record(normal: false, behavior) == nil)  // the run of normal ones starts again
        #expect(state.record(normal: true, behavior) == nil)
        #expect(state.record(normal: true, behavior) == .cleared)
        #expect(!state.inAlarm)
    }

    @Test func percentilesAndCIDRs() {
        let fleet = (1...19).map(Double.init) + [1000]
        #expect(FleetStatistic.percentile(90, of: fleet) == 18)
        #expect(FleetStatistic.percentile(50, of: fleet) == 10)
        #expect(FleetStatistic.percentile(100, of: fleet) == 1000)
        #expect(FleetStatistic.percentile(90, of: []) == nil)
        #expect(NetworkAddress.CIDR("192.168.0.0/16")!.contains("192.168.200.1"))
        #expect(!NetworkAddress.CIDR("192.168.0.0/16")!.contains("192.169.0.1"))
        #expect(NetworkAddress.CIDR("2001:db8::/32")!.contains("2001:db8:1::5"))
        #expect(!NetworkAddress.CIDR("10.0.0.0/8")!.contains("2001:db8::1"))
        #expect(NetworkAddress.CIDR("10.0.0.0/33") == nil)
        #expect(NetworkAddress.host(ofHostPort: "[2001:db8::1]:443") == "2001:db8::1")
        #expect(NetworkAddress.host(ofHostPort: "1.2.3.4") == nil)
    }

    @Test func answersAreAWSsShape() throws {
        let accepted = try JSONSerialization.jsonObject(with: Data(DefenderReply.accepted(thing: "t\"1", reportID: 5, nowMilliseconds: 1700)))
            as? [String: Any]
        #expect(accepted?["thingName"] as? String == "t\"1")
        #expect(accepted?["status"] as? String == "ACCEPTED")
        let error = HallmarkError(.reportThrottled, "too soon", remedy: "wait")
        let rejected = try JSONSerialization.jsonObject(with: Data(DefenderReply.rejected(thing: "t", reportID: nil, error: error, nowMilliseconds: 1)))
            as? [String: Any]
        #expect((rejected?["statusDetails"] as? [String: Any])?["ErrorCode"] as? String == "Throttled")
        #expect(rejected?["hallmarkCode"] as? String == "report_throttled")
        #expect(rejected?["reportId"] == nil)
    }
}
