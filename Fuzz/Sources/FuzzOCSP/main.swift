import Crypto
import Foundation
import FuzzSupport
import Revocation
import X509

/// An OCSP request (RFC 6960) as `POST /ocsp` and `GET /ocsp/<base64>` take it. The responder
/// answers every input with DER, `malformedRequest` or `unauthorized` for a bad one, never
/// `internalError`; a request that parses is also answered as if it asked the harness's CA, so
/// the signing path is reached with every CertID and nonce the fuzzer makes.
let caKey = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: 0x2B, count: 32))
let caCertificate: Certificate = {
    let name = try! DistinguishedName { CommonName("Hallmark Fuzz Issuing CA") }
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    return try! Certificate(
        version: .v3, serialNumber: .init(bytes: [0x01]), publicKey: .init(caKey.publicKey),
        notValidBefore: now, notValidAfter: now + 86_400 * 365, issuer: name, subject: name,
        signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try! Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
        },
        issuerPrivateKey: .init(caKey))
}()
let responder = OCSPResponder(
    issuers: [try! .init(id: "fuzz", certificate: caCertificate,
                         signer: try! .init(key: .init(caKey), certificate: caCertificate, delegated: false))],
    validity: 3600)
let identity = try! IssuerIdentity(caCertificate, algorithm: .sha256)

func lookup(_ issuer: OCSPResponder.Issuer, _ serial: [UInt8]) -> OCSPResponder.Status? {
    switch serial.last.map({ $0 % 3 }) {
    case 0: .good
    case 1: .revoked(at: Date(timeIntervalSince1970: 1_700_000_000), reason: .keyCompromise)
    default: nil
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOCSP(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = input(start, count)
    let now = Date(timeIntervalSince1970: 1_800_000_100)
    let answer = responder.answer(bytes, now: now, lookup: lookup)
    require(answer.der.first == 0x30, "an OCSP answer is not a DER SEQUENCE")
    switch answer.outcome {
    case .failed(let why): fatalError("a request was answered internalError: \(why)")
    case .answered, .malformed, .unauthorized: break
    }
    guard var request = try? OCSPRequest(derEncoded: bytes) else {
        if case .malformed = answer.outcome {} else { fatalError("a request that does not parse was not answered malformedRequest") }
        return 0
    }
    require(!request.certificates.isEmpty && request.certificates.count <= OCSPRequest.maximumCertificates,
            "a request with \(request.certificates.count) CertIDs parsed")
    for index in request.certificates.indices { request.certificates[index].issuer = identity }
    let ours = responder.answer(request, now: now, lookup: lookup)
    guard case .answered(_, let serials, let statuses, _) = ours.outcome else {
        fatalError("a request for the harness's CA was answered \(ours.outcome)")
    }
    require(serials.count == request.certificates.count && statuses.count == serials.count, "an answer lost a CertID")
    require(ours.der.first == 0x30, "a signed OCSP answer is not a DER SEQUENCE")
    return 0
}

/// The process's entry when the build names it `FuzzOCSP_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzOCSP_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOCSP)
}
