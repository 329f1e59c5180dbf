import Foundation
import HallmarkCore
import Testing

@Suite struct FleetProvisioningTests {
    static let template = #"""
        {
          "Parameters": {"SerialNumber": {"Type": "String"}, "Region": {"Type": "String", "Default": "eu"}, "Count": {"Type": "Number", "Default": 3},
                         "AWS::IoT::Certificate::Id": {"Type": "String"}},
          "Mappings": {"Endpoints": {"eu": {"Url": "https://eu.example"}, "us": {"Url": "https://us.example"}}},
          "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "OverrideSettings": {"AttributePayload": "MERGE"},
                      "Properties": {"ThingName": {"Fn::Join": ["_", ["thermo", {"Ref": "SerialNumber"}]]}, "AttributePayload": {"count": {"Ref": "Count"}}}},
            "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": {"Fn::Join": ["-", ["thermo", {"Ref": "Region"}]]}}}
          },
          "DeviceConfiguration": {"Endpoint": {"Fn::FindInMap": ["Endpoints", {"Ref": "Region"}, "Url"]}, "Fixed": "1"}
        }
        """#

    @Test func aTemplateIsEvaluatedAsAWSWould() throws {
        let template = try FleetProvisioningTemplate(json: Data(Self.template.utf8))
        let outcome = try template.evaluate(["SerialNumber": "HM-1", "Region": "us", "AWS::IoT::Certificate::Id": "ab"])
        #expect(outcome.thingName == "thermo_HM-1")
        #expect(outcome.attributes == ["count": "3"])
        #expect(outcome.certificateActive)
        #expect(outcome.policyNames == ["thermo-us"])
        #expect(outcome.deviceConfiguration == ["Endpoint": "https://us.example", "Fixed": "1"])
        #expect(try template.evaluate(["SerialNumber": "HM-1"]).deviceConfiguration["Endpoint"] == "https://eu.example")
    }

    @Test func missingValuesAreTheDevicesMistake() throws {
        let template = try FleetProvisioningTemplate(json: Data(Self.template.utf8))
        #expect(throws: HallmarkError(.provisioningFailed, "", remedy: "")) { try template.evaluate([:]) }
        #expect(throws: HallmarkError(.provisioningFailed, "", remedy: "")) { try template.evaluate(["SerialNumber": "HM-1", "Region": "mars"]) }
        #expect(throws: HallmarkError(.provisioningFailed, "", remedy: "")) { try template.evaluate(["SerialNumber": "no spaces allowed"]) }
    }

    @Test func whatHallmarkDoesNotSupportIsRefusedAtCreation() {
        let thing = #""t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "x"}}"#
        let certificate = #""c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}"#
        let refused = [
            "[]", "{}", #"{"Conditions": {}, "Resources": {\#(thing), \#(certificate)}}"#,
            #"{"Resources": {\#(thing)}}"#, #"{"Resources": {\#(certificate)}}"#,
            #"{"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Sub": "x"}}}, \#(certificate)}}"#,
            #"{"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "x", "ThingGroups": ["g"]}}, \#(certificate)}}"#,
            #"{"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Undeclared"}}}, \#(certificate)}}"#,
            #"{"Resources": {\#(thing), "c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "abc"}}}}"#,
            #"{"Resources": {\#(thing), "c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Revoked"}}}}"#,
            #"{"Resources": {\#(thing), \#(certificate), "p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "not a policy"}}}}"#,
            #"{"Resources": {\#(thing), \#(certificate), "r": {"Type": "AWS::IAM::Role"}}}"#,
            #"{"Resources": {\#(thing), \#(certificate)}, "DeviceConfiguration": {"a": {"Fn::FindInMap": ["Nowhere", "k", "f"]}}}"#,
        ]
        for document in refused {
            #expect(throws: HallmarkError(.provisioningTemplateInvalid, "", remedy: ""), "\(document)") {
                try FleetProvisioningTemplate(json: Data(document.utf8))
            }
        }
    }

    @Test func topicsNameTheThreeOperations() {
        #expect(ProvisioningTopic(parsing: "$aws/certificates/create-from-csr/json")?.operation == .createFromCSR)
        #expect(ProvisioningTopic(parsing: "$aws/certificates/create/cbor")?.format == .cbor)
        #expect(ProvisioningTopic(parsing: "$aws/provisioning-templates/fleet_1/provision/json")?.operation == .registerThing(template: "fleet_1"))
        for topic in ["$aws/certificates/create-from-csr/json/accepted", "$aws/certificates/create/xml", "$aws/provisioning-templates/a.b/provision/json",
                      "$aws/provisioning-templates/t/provision/json/rejected", "$aws/certificates/delete/json"] {
            #expect(ProvisioningTopic(parsing: topic) == nil, "\(topic)")
            #expect(ProvisioningTopic.isProvisioningTopic(topic))
        }
        #expect(ProvisioningTopic(parsing: "$aws/certificates/create/json")?.reply(accepted: false) == "$aws/certificates/create/json/rejected")
    }

    @Test func theClaimPolicyAllowsProvisioningOnly() throws {
        let policy = try Policy(document: ClaimPolicy.document(template: "fleet"))
        let context = Policy.Context(thingName: "claim-1", clientID: "any-device", certificateCommonName: "claim-1")
        #expect(Policy.evaluate([policy], action: .connect, resource: "any-device", context: context).isAllowed)
        #expect(Policy.evaluate([policy], action: .publish, resource: "$aws/certificates/create-from-csr/json", context: context).isAllowed)
        #expect(Policy.evaluate([policy], action: .subscribe, resource: "$aws/provisioning-templates/fleet/provision/json/accepted", context: context).isAllowed)
        #expect(Policy.evaluate([policy], action: .publish, resource: "$aws/provisioning-templates/other/provision/json", context: context).isAllowed == false)
        #expect(Policy.evaluate([policy], action: .publish, resource: "things/claim-1/x", context: context).isAllowed == false)
        #expect(Policy.evaluate([policy], action: .subscribe, resource: "#", context: context).isAllowed == false)
    }

    @Test func theCertificateAnswerIsJSONThatParsesBack() throws {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB/+==\r\n\t\"quoted\" \\ \u{1} é\n-----END CERTIFICATE-----\n"
        let payload = ProvisioningReply.certificate(id: "ab", pem: pem, ownershipToken: "t_-1", privateKeyPEM: "k", format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: String])
        #expect(object == ["certificateId": "ab", "certificatePem": pem, "certificateOwnershipToken": "t_-1", "privateKey": "k"])
        let cbor = try CBOR(decoding: ProvisioningReply.certificate(id: "ab", pem: pem, ownershipToken: "t", format: .cbor))
        #expect(cbor["certificatePem"]?.text == pem && cbor["privateKey"] == nil)
    }

    @Test func rejectionsCarryAWSsShapeAndHallmarksCode() throws {
        let payload = ProvisioningReply.rejection(HallmarkError(.ownershipTokenInvalid, "bad token", remedy: "ask again"), format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        #expect(object["statusCode"] as? Int == 400)
        #expect(object["errorCode"] as? String == "InvalidCertificateOwnershipToken")
        #expect(object["hallmarkCode"] as? String == "ownership_token_invalid")
        let denied = try CBOR(decoding: ProvisioningReply.rejection(HallmarkError(.unknownDevice, "no", remedy: "r"), format: .cbor))
        #expect(denied["errorCode"]?.text == "unknown_device" && denied["statusCode"] == .unsigned(403))
        #expect(throws: HallmarkError(.provisioningRequestInvalid, "", remedy: "")) { try ProvisioningReply.decode(Array("[1]".utf8), format: .json) }
        #expect(throws: HallmarkError(.provisioningRequestInvalid, "", remedy: "")) { try ProvisioningReply.decode([0xff], format: .cbor) }
        #expect(try ProvisioningReply.decode([], format: .json).isEmpty)
    }
}

@Suite struct CBORTests {
    @Test func itemsRoundTrip() throws {
        let item = CBOR.map([
            CBORPair(.text("a"), .unsigned(1)), CBORPair(.text("b"), .array([.negative(0), .bool(true), .null, .double(1.5)])),
            CBORPair(.text("c"), .bytes([1, 2, 3])), CBORPair(.unsigned(7), .tagged(18, .text("x"))), CBORPair(.text("big"), .unsigned(1 << 40)),
        ])
        #expect(try CBOR(decoding: item.encoded) == item)
        #expect(CBOR.unsigned(500).encoded == [0x19, 0x01, 0xf4])
        #expect(CBOR.negative(9).encoded == [0x29])
        #expect(CBOR.text("IETF").encoded == [0x64, 0x49, 0x45, 0x54, 0x46])
    }

    @Test func rfc8949ExamplesDecode() throws {
        #expect(try CBOR(decoding: [0xf9, 0x3c, 0x00]) == .double(1.0))
        #expect(try CBOR(decoding: [0xfa, 0x47, 0xc3, 0x50, 0x00]) == .double(100000.0))
        #expect(try CBOR(decoding: [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) == .negative(.max))
        #expect(try CBOR(decoding: [0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x02, 0x03]).jsonObject as? [String: Any] != nil)
    }

    @Test func hostilePayloadsAreRefusedNotTrapped() {
        let hostile: [[UInt8]] = [
            [], [0x18], [0x62, 0x61], [0x5f, 0xff], [0x9f, 0xff], [0x1c], [0x01, 0x02], [0x62, 0xff, 0xfe],
            [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Array(repeating: 0x81, count: 100) + [0x01], [0xf8, 0x20],
        ]
        for bytes in hostile {
            #expect(throws: HallmarkError(.bodyEncodingInvalid, "", remedy: ""), "\(bytes.prefix(8))") { try CBOR(decoding: bytes) }
        }
    }
}
