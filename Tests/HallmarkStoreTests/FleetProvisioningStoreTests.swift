import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import Testing
import X509

/// Fleet provisioning's service over a real SQLite registry, without the broker: what is signed,
/// what is not, and that racing or repeated requests never sign or register twice.
@Suite struct FleetProvisioningStoreTests {
    let registry: Registry
    let authority: IssuingAuthority
    let claim: ClaimIssuance.Issued
    let device: Certificate.PrivateKey
    let udid = "FP-1"

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-provisioning-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let passphrase = try Passphrase("provisioning-store-test")
        authority = try AuthorityFiles(dataDirectory: directory).initialise(organization: "Test", passphrase: passphrase, now: Date())
        registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        device = Certificate.PrivateKey(P256Key.make())
        _ = try registry.importAllowlist(
            .init(entries: [AllowlistEntry(udid: try UDID(validating: udid), key: try DeviceKey(device.publicKey), line: 1)]),
            source: "test", skipInvalid: false, now: Date())
        let template = #"""
            {"Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
             "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["", ["t_", {"Ref": "SerialNumber"}]]}}},
               "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}}}
            """#
        try registry.putProvisioningTemplate(
            .init(tenant: "default", name: "fleet", product: nil, document: template, udidParameter: "SerialNumber", hookURL: nil, createdAt: Date()),
            now: Date())
        claim = try ClaimIssuance.issue(
            registry: registry, authority: authority, tenant: "default", product: "default", template: "fleet", maxUses: 5, validDays: 1, now: Date())
    }

    func service(at now: Date = Date()) -> FleetProvisioningService {
        FleetProvisioningService(
            registry: registry, authorities: IssuingAuthorities(shared: authority), logger: .init(label: "test"), clock: { now })
    }

    func request(_ topic: String, _ object: [String: Any], claim: String? = nil) throws -> FleetProvisioningRequest {
        FleetProvisioningRequest(
            topic: try #require(ProvisioningTopic(parsing: topic)), payload: Array(try JSONSerialization.data(withJSONObject: object)),
            tenant: "default", claimID: claim ?? self.claim.claim.id, clientID: "c", source: nil)
    }

    func decoded(_ answer: FleetProvisioningAnswer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.payload)) as? [String: Any])
    }

    var csr: String { get throws { try DeviceCSR.make(commonName: "anything", key: device).serializeAsPEM().pemString } }

    @Test func racingRequestsForOneDeviceGetOneCertificate() async throws {
        let service = service()
        let csr = try self.csr
        let create = try request("$aws/certificates/create-from-csr/json", ["certificateSigningRequest": csr])
        let answers = await withTaskGroup(of: FleetProvisioningAnswer.self) { group in
            for _ in 0..<8 { group.addTask { await service.answer(create) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let objects = try answers.map(decoded)
        #expect(answers.allSatisfy { $0.accepted })
        #expect(Set(objects.compactMap { $0["certificateId"] as? String }).count == 1)
        #expect(Set(objects.compactMap { $0["certificateOwnershipToken"] as? String }).count == 8)
        #expect(try registry.events(code: "issued_pending", limit: 20).count == 1)
        #expect(try registry.events(code: "returned_pending", limit: 20).count == 7)
    }

    @Test func registeringTwiceRegistersOnceAndAnUnregisteredCertificateIsRevokedAfterTheHour() async throws {
        let now = Date()
        let created = try decoded(await service(at: now).answer(try request("$aws/certificates/create-from-csr/json", ["certificateSigningRequest": try csr])))
        let token = try #require(created["certificateOwnershipToken"] as? String)
        let register = try request("$aws/provisioning-templates/fleet/provision/json", ["certificateOwnershipToken": token, "parameters": ["SerialNumber": udid]])
        let first = await service(at: now).answer(register)
        let second = await service(at: now).answer(register)
        #expect(first.accepted && second.accepted && first.payload == second.payload)
        #expect(try decoded(first)["thingName"] as? String == "t_FP-1")
        #expect(try registry.events(code: "registered", limit: 5).count == 1)
        #expect(try registry.claims(tenant: "default").first?.used == 1)
        let certificateID = try #require(created["certificateId"] as? String)
        let certificate = try #require(try registry.certificate(fingerprint: certificateID))
        #expect(certificate.status == .active && certificate.thingName == "t_FP-1")

        // Another claim's connection cannot use the token.
        let other = try ClaimIssuance.issue(
            registry: registry, authority: authority, tenant: "default", product: "default", template: "fleet", maxUses: nil, validDays: 1, now: now)
        let stolen = await service(at: now).answer(
            try request("$aws/provisioning-templates/fleet/provision/json", ["certificateOwnershipToken": token, "parameters": ["SerialNumber": udid]],
                        claim: other.claim.id))
        let stolenCode = try decoded(stolen)["errorCode"] as? String
        #expect(!stolen.accepted && stolenCode == "InvalidCertificateOwnershipToken")

        // Revoke the device's certificate and ask again: the new one is never registered, and the hour's sweep revokes it.
        try await registry.setCertificateStatus(certificate.fingerprint, to: .revoked, reason: "test", now: now)
        let again = try decoded(await service(at: now).answer(try request("$aws/certificates/create-from-csr/json", ["certificateSigningRequest": try csr])))
        let pending = try #require(again["certificateId"] as? String)
        #expect(try await registry.sweepProvisioningTokens(now: now.addingTimeInterval(3599)) == 0)
        #expect(try await registry.sweepProvisioningTokens(now: now.addingTimeInterval(3601)) == 1)
        #expect(try registry.certificate(fingerprint: pending)?.status == .revoked)
        // Past its hour the used token is forgotten too: a repeat is now refused.
        #expect(!(await service(at: now.addingTimeInterval(3601)).answer(register)).accepted)
    }

    @Test func aStrangersKeyAndADeviceOfTheClaimsOwnConnectionAreRefused() async throws {
        let stranger = Certificate.PrivateKey(P256Key.make())
        let refused = await service().answer(try request(
            "$aws/certificates/create-from-csr/json", ["certificateSigningRequest": try DeviceCSR.make(commonName: udid, key: stranger).serializeAsPEM().pemString]))
        let refusedCode = try decoded(refused)["errorCode"] as? String
        #expect(!refused.accepted && refusedCode == "unknown_device")
        let notClaim = FleetProvisioningRequest(
            topic: try #require(ProvisioningTopic(parsing: "$aws/certificates/create-from-csr/json")), payload: [], tenant: "default", claimID: nil,
            clientID: "c", source: nil)
        #expect(!(await service().answer(notClaim)).accepted)
        #expect(try registry.certificates(limit: 10).filter { $0.udid?.rawValue == udid }.isEmpty)
    }
}
