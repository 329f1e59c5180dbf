import Crypto
import Foundation
import FuzzSupport
import HallmarkCore
import SwiftASN1
import X509

/// Provisioning input: the first byte picks what the rest is.
/// - 0: a JITP template (`hallmark ca register --template`), applied to a device certificate;
/// - 1: a fleet provisioning template and, after a zero byte, RegisterThing's parameters;
/// - 2, 3: a fleet provisioning request payload in JSON or CBOR, as the broker receives it.
/// What a template makes is always a valid thing name; every refusal has a client's code.
let deviceKey = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: 0x3C, count: 32))
let deviceCertificate: Certificate = {
    let name = try! DistinguishedName {
        CommonName("DEV-1")
        OrganizationName("Hallmark Fuzz")
    }
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    return try! Certificate(
        version: .v3, serialNumber: .init(bytes: [0x01, 0x02]), publicKey: .init(deviceKey.publicKey),
        notValidBefore: now, notValidAfter: now + 86_400, issuer: name, subject: name,
        signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(), issuerPrivateKey: .init(deviceKey))
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProvisioning(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (mode, rest) = modeAndRest(start, count) else { return 0 }
    switch mode % 4 {
    case 0:
        do {
            let template = try ProvisioningTemplate(json: Data(rest))
            let name = try template.thingName(for: deviceCertificate)
            require(ThingName.isValid(name), "a JITP template made the thing name \(name)")
        } catch {
            requireRefusal(error, "the JITP template", codes: ["provisioning_template_invalid", "provisioning_failed"])
        }
    case 1:
        let (templateBytes, parameterBytes) = split(rest)
        do {
            let template = try FleetProvisioningTemplate(json: Data(templateBytes))
            let given = (try? JSONSerialization.jsonObject(with: Data(parameterBytes))) as? [String: String] ?? [:]
            let outcome = try template.evaluate(given)
            require(ThingName.isValid(outcome.thingName), "a fleet template made the thing name \(outcome.thingName)")
        } catch {
            requireRefusal(error, "the fleet provisioning template", codes: ["provisioning_template_invalid", "provisioning_failed"])
        }
    default:
        let format: ProvisioningTopic.Format = mode % 4 == 2 ? .json : .cbor
        do {
            let request = try ProvisioningReply.decode(rest, format: format)
            if let csr = request["certificateSigningRequest"] as? String,
                let parsed = try? CertificateSigningRequest(pemEncoded: csr)
            {
                do {
                    var serializer = DER.Serializer()
                    try serializer.serialize(parsed)
                    _ = try VerifiedCSR(der: serializer.serializedBytes)
                } catch let error as HallmarkError {
                    requireRefusal(error, "the request's CSR", codes: ["csr_malformed", "csr_signature_invalid", "key_algorithm_not_allowed"])
                } catch {
                    fatalError("serialising a parsed CSR failed: \(error)")
                }
            }
        } catch {
            requireRefusal(error, "the provisioning request", codes: ["provisioning_request_invalid"])
        }
    }
    return 0
}

/// The process's entry when the build names it `FuzzProvisioning_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzProvisioning_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzProvisioning)
}
