import Crypto
import HallmarkCore
import HallmarkStore
import Logging
import Synchronization
import X509

import Foundation

/// AWS IoT fleet provisioning by claim, behind the broker: CreateCertificateFromCsr,
/// CreateKeysAndCertificate (where the product allows it) and RegisterThing.
///
/// A claim is a secret baked into many devices, so it opens no door by itself: the CSR's key
/// must be the root-of-trust key of an allowlisted device of the claim's tenant and product that
/// is in good standing and not enrolled yet, and the same rules are taken again when the device
/// registers. Every answer, accepted or not, is an event first.
public struct FleetProvisioningService: FleetProvisioner {
    let registry: Registry
    let authorities: IssuingAuthorities
    let hook: PreProvisioningHook
    let logger: Logger
    let clock: @Sendable () -> Date
    /// Templates parsed once per document (a RegisterThing reads its template's row each time).
    private let templateCache = ParsedTemplates()

    public init(
        registry: Registry, authorities: IssuingAuthorities, hook: PreProvisioningHook = PreProvisioningHook(), logger: Logger,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.registry = registry
        self.authorities = authorities
        self.hook = hook
        self.logger = logger
        self.clock = clock
    }

    public func answer(_ request: FleetProvisioningRequest) async -> FleetProvisioningAnswer {
        let now = clock()
        let action: EventAction = if case .registerThing = request.topic.operation { .provisioningRegister } else { .provisioningCertificate }
        let event = AuditEvent(at: now, tenant: request.tenant, action: action, decision: .allow, code: "", source: request.source, detail: "")
        do {
            guard let claimID = request.claimID else {
                throw HallmarkError(.notAuthorized, "Only a fleet provisioning claim's connection asks for certificates here.",
                                    remedy: "A device with its own certificate renews over EST (simplereenroll).")
            }
            let payload = try ProvisioningReply.decode(request.payload, format: request.topic.format)
            switch request.topic.operation {
            case .createFromCSR:
                return try await createFromCSR(payload, claimID: claimID, format: request.topic.format, event: event)
            case .createKeysAndCertificate:
                return try await createKeys(claimID: claimID, format: request.topic.format, event: event)
            case .registerThing(let template):
                return try await register(payload, template: template, claimID: claimID, request: request, event: event)
            }
        } catch let error as HallmarkError {
            return await reject(error, event: event, format: request.topic.format)
        } catch {
            logger.error("fleet provisioning failed: \(error)")
            return await reject(HallmarkError(.internalError, "The request could not be answered.", remedy: "Retry."), event: event, format: request.topic.format)
        }
    }

    /// A refusal found before the registry's commit: logged here (a commit logs its own).
    private func reject(_ error: HallmarkError, event: AuditEvent, format: ProvisioningTopic.Format, logged: Bool = false) async -> FleetProvisioningAnswer {
        if !logged {
            var event = event
            event.decision = .refuse
            event.code = error.code.rawValue
            event.detail = error.reason
            try? await registry.append(event)
        }
        return FleetProvisioningAnswer(accepted: false, payload: ProvisioningReply.rejection(error, format: format))
    }

    // MARK: CreateCertificateFromCsr

    private func createFromCSR(_ payload: [String: Any], claimID: String, format: ProvisioningTopic.Format, event: AuditEvent) async throws -> FleetProvisioningAnswer {
        guard let text = payload["certificateSigningRequest"] as? String else {
            throw HallmarkError(.provisioningRequestInvalid, "The request has no certificateSigningRequest.",
                                remedy: "Send {\"certificateSigningRequest\": \"-----BEGIN CERTIFICATE REQUEST-----…\"}.")
        }
        let der = try Self.csrDER(text)
        // The device is the one whose root-of-trust key signed the CSR, whatever its subject says.
        let verified = try VerifiedCSR(der: der)
        let key = verified.key
        guard let device = try registry.device(keyFingerprint: key.fingerprint) else {
            throw HallmarkError(.unknownDevice, "The CSR's key is no allowlisted device's root-of-trust key.",
                                remedy: "Sign the CSR with the device's root-of-trust key; its UDID and key must be on the allowlist.")
        }
        var event = event
        event.udid = device.udid.rawValue
        let request = EnrollmentRequest(verified, device: device.udid)
        let (tenant, now) = (event.tenant, event.at)
        let decide: @Sendable (Registry.EnrollmentView) -> EnrollmentDecision = { view in
            EnrollmentRules.decideEnrollment(request, tenant: tenant, device: view.device, active: view.active, now: now)
        }
        let token = Self.newToken()
        var candidate: (record: CertificateRecord, certificate: Certificate)?
        for _ in 0..<3 {
            let view = try await registry.enrollmentView(udid: device.udid)
            if candidate == nil, try registry.pendingCertificate(udid: device.udid, keyFingerprint: key.fingerprint) == nil,
                case .issue(_, nil) = decide(view), let found = view.device
            {
                candidate = try await sign(request.key, device: found, profile: view.profile ?? DeviceCertificateProfile(), now: event.at)
            }
            let outcome = try await registry.commitProvisionalCertificate(
                claimID: claimID, udid: device.udid, keyFingerprint: key.fingerprint, decide: decide, candidate: candidate?.record,
                tokenHash: Self.tokenHash(token), event: event)
            switch outcome {
            case .issued(let record), .existing(let record):
                let pem = try Certificate(derEncoded: record.der).serializeAsPEM().pemString
                return FleetProvisioningAnswer(
                    accepted: true, payload: ProvisioningReply.certificate(id: record.fingerprint, pem: pem, ownershipToken: token, format: format))
            case .refused(let error):
                return await reject(error, event: event, format: format, logged: true)
            case .stale:
                continue
            }
        }
        throw HallmarkError(.internalError, "Device \(device.udid)'s registry record kept changing.", remedy: "Retry the request.")
    }

    /// A CSR in PEM (as AWS's API carries it), or bare base64 DER.
    static func csrDER(_ text: String) throws(HallmarkError) -> [UInt8] {
        let body = text.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: body), !der.isEmpty else {
            throw HallmarkError(.csrMalformed, "The certificateSigningRequest is not a PEM certificate request.",
                                remedy: "Send the CSR as PEM: -----BEGIN CERTIFICATE REQUEST-----, base64, -----END CERTIFICATE REQUEST-----.")
        }
        return Array(der)
    }

    private func sign(_ key: DeviceKey, device: DeviceRecord, profile: DeviceCertificateProfile, now: Date) async throws -> (record: CertificateRecord, certificate: Certificate) {
        let authority = try await authorities.authority(for: device.tenant)
        let thingName = EnrollmentRules.thingName(for: device)
        let certificate = try authority.issueDeviceCertificate(thingName: thingName, key: key, profile: profile, now: now)
        let der = try certificate.derBytes()
        let record = CertificateRecord(
            serial: certificate.serialHex, tenant: device.tenant, thingName: thingName, udid: device.udid,
            fingerprint: CertificateFingerprint.sha256(der: der), keyFingerprint: key.fingerprint, notBefore: certificate.notValidBefore,
            notAfter: certificate.notValidAfter, status: .pendingActivation, replacedBy: nil, der: der, issuerKeyID: authority.keyIdentifier)
        return (record, certificate)
    }

    // MARK: CreateKeysAndCertificate

    private func createKeys(claimID: String, format: ProvisioningTopic.Format, event: AuditEvent) async throws -> FleetProvisioningAnswer {
        guard let claim = try registry.claim(id: claimID) else {
            throw Registry.ProvisioningClaim.gone
        }
        let product = try registry.product(tenant: claim.tenant, id: claim.product)
        guard product?.serverKeys == true else {
            // Refused before anything is made (the commit checks again).
            return await reject(Registry.ProvisioningClaim.serverKeysNotAllowed(product: claim.product), event: event, format: format)
        }
        let privateKey = P256.Signing.PrivateKey(compactRepresentable: false)
        let key = try DeviceKey(Certificate.PublicKey(privateKey.publicKey))
        let authority = try await authorities.authority(for: claim.tenant)
        // Named after the certificate until RegisterThing gives it a thing.
        let placeholder = "pending-" + key.fingerprint.prefix(16)
        let certificate = try authority.issueDeviceCertificate(
            thingName: placeholder, key: key, profile: product?.profile ?? DeviceCertificateProfile(), now: event.at)
        let der = try certificate.derBytes()
        let record = CertificateRecord(
            serial: certificate.serialHex, tenant: claim.tenant, thingName: placeholder, udid: nil,
            fingerprint: CertificateFingerprint.sha256(der: der), keyFingerprint: key.fingerprint, notBefore: certificate.notValidBefore,
            notAfter: certificate.notValidAfter, status: .pendingActivation, replacedBy: nil, der: der, issuerKeyID: authority.keyIdentifier)
        let token = Self.newToken()
        switch try await registry.commitServerKeyCertificate(claimID: claimID, record: record, tokenHash: Self.tokenHash(token), event: event) {
        case .issued(let record), .existing(let record):
            return FleetProvisioningAnswer(
                accepted: true,
                payload: ProvisioningReply.certificate(
                    id: record.fingerprint, pem: try certificate.serializeAsPEM().pemString, ownershipToken: token,
                    privateKeyPEM: privateKey.pemRepresentation, format: format))
        case .refused(let error):
            return await reject(error, event: event, format: format, logged: true)
        case .stale:
            throw HallmarkError(.internalError, "The certificate could not be recorded.", remedy: "Retry.")
        }
    }

    // MARK: RegisterThing

    private func register(
        _ payload: [String: Any], template name: String, claimID: String, request: FleetProvisioningRequest, event: AuditEvent
    ) async throws -> FleetProvisioningAnswer {
        let format = request.topic.format
        guard let token = payload["certificateOwnershipToken"] as? String, !token.isEmpty, token.utf8.count <= 512 else {
            throw HallmarkError(.ownershipTokenInvalid, "The request has no certificateOwnershipToken.",
                                remedy: "Send the token the create-from-csr answer gave, with the template's parameters.")
        }
        var parameters: [String: String] = [:]
        if let given = payload["parameters"] {
            guard let given = given as? [String: Any], given.count <= 64 else {
                throw HallmarkError(.provisioningRequestInvalid, "parameters is not an object of at most 64 names.", remedy: "Send {\"parameters\": {\"SerialNumber\": \"…\"}}.")
            }
            for (key, value) in given {
                guard let text = value as? String ?? (value as? NSNumber)?.stringValue, text.utf8.count <= 2048 else {
                    throw HallmarkError(.provisioningRequestInvalid, "Parameter \(key.prefix(64)) is not a string.", remedy: "Send parameters as strings.")
                }
                parameters[key] = text
            }
        }
        guard let claim = try registry.claim(id: claimID) else {
            throw Registry.ProvisioningClaim.gone
        }
        // A claim's policy names its template; a topic naming another is refused by it first.
        guard name == claim.template, let template = try registry.provisioningTemplate(tenant: claim.tenant, name: name) else {
            throw HallmarkError(.notFound, "Claim \(claim.id) provisions with template \(claim.template), not \(name.prefix(40)).",
                                remedy: "Publish to $aws/provisioning-templates/\(claim.template)/provision/json.")
        }
        let tokenHash = Self.tokenHash(token)
        guard let record = try registry.provisioningToken(hash: tokenHash), record.claimID == claimID else {
            throw HallmarkError(.ownershipTokenInvalid, "The certificate ownership token is not one this claim was given.",
                                remedy: "Send the certificateOwnershipToken from the create-from-csr answer, over the same claim.")
        }
        if record.usedAt != nil, let answer = record.answer {
            return FleetProvisioningAnswer(accepted: true, payload: try Self.reencode(answer, format: format))
        }
        guard let certificate = try registry.certificate(fingerprint: record.fingerprint) else {
            throw HallmarkError(.ownershipTokenInvalid, "The certificate of this ownership token is gone.", remedy: "Ask for a certificate again.")
        }
        let parsed = try Certificate(derEncoded: certificate.der)
        parameters["AWS::IoT::Certificate::Id"] = certificate.fingerprint
        parameters["AWS::IoT::Certificate::CommonName"] = parsed.subject.commonName
        if let url = template.hookURL {
            let overrides = try await hook.ask(url: url, payload: [
                "claimCertificateId": claim.fingerprint, "certificateId": certificate.fingerprint,
                "certificatePem": try parsed.serializeAsPEM().pemString, "templateArn": "arn:hallmark:iot:::provisioningtemplate/\(name)",
                "clientId": request.clientID, "parameters": parameters,
            ])
            parameters.merge(overrides) { _, new in new }
        }
        guard let udidText = parameters[template.udidParameter] else {
            throw HallmarkError(.provisioningRequestInvalid, "The request gives no \(template.udidParameter), the parameter that carries the device's UDID.",
                                remedy: "Send {\"parameters\": {\"\(template.udidParameter)\": \"<the device's UDID>\"}}.")
        }
        let udid = try UDID(validating: udidText)
        let document = try templateCache.template(template)
        let outcome = try document.evaluate(parameters)
        var policies = outcome.policyNames
        let inline = document.policies.filter { $0.document != nil }.count
        for index in 0..<inline { policies.append(Registry.templatePolicyName(name, index: index)) }
        let answer = String(decoding: ProvisioningReply.registered(thingName: outcome.thingName, deviceConfiguration: outcome.deviceConfiguration, format: .json), as: UTF8.self)
        let registration = Registry.Registration(
            tokenHash: tokenHash, claimID: claimID, template: name, udid: udid, outcome: outcome, policies: policies, answer: answer)
        var event = event
        event.udid = udid.rawValue
        switch try await registry.commitRegistration(registration, event: event) {
        case .registered(let answer), .repeated(let answer):
            return FleetProvisioningAnswer(accepted: true, payload: try Self.reencode(answer, format: format))
        case .refused(let error):
            return await reject(error, event: event, format: format, logged: true)
        }
    }

    static func reencode(_ answer: String, format: ProvisioningTopic.Format) throws -> [UInt8] {
        guard format == .cbor else { return Array(answer.utf8) }
        let object = try ProvisioningReply.decode(Array(answer.utf8), format: .json)
        return CBOR(jsonObject: object)?.encoded ?? []
    }

    // MARK: Ownership tokens

    /// 32 random bytes, base64url: the token is a bearer secret; only its hash is kept.
    static func newToken() -> String {
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        return Base64URL.encode(bytes)
    }

    static func tokenHash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).hexString
    }
}

/// Parsed templates by document text: a replaced template is a new key.
private final class ParsedTemplates: Sendable {
    private let cache = Mutex<[String: FleetProvisioningTemplate]>([:])

    func template(_ record: Registry.ProvisioningTemplateRecord) throws(HallmarkError) -> FleetProvisioningTemplate {
        if let known = cache.withLock({ $0[record.document] }) { return known }
        let template = try record.parsed()
        cache.withLock {
            if $0.count > 1000 { $0.removeAll() }
            $0[record.document] = template
        }
        return template
    }
}
