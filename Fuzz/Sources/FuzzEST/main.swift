import FuzzSupport
import HallmarkCore
import X509

/// An EST request body (base64, PEM or raw DER) and the CSR in it, as `simpleenroll` reads
/// them: every refusal is a client's mistake with a code; a body that decodes re-encodes to
/// itself; a CSR's UDID is checked whether or not its signature verifies.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEST(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let body = input(start, count)
    let der: [UInt8]
    do {
        der = try ESTBody.decode(body)
    } catch {
        requireRefusal(error, "the EST body", codes: ["body_encoding_invalid"])
        return 0
    }
    require(!der.isEmpty, "an EST body decoded to nothing")
    require((try? ESTBody.decode(Array(ESTBody.encode(der).utf8))) == der, "an EST body's DER does not survive base64")
    do {
        let request = try EnrollmentRequest(der: der)
        require(request.fingerprint.count == 64, "a CSR fingerprint is not SHA-256 hex")
        require(UDID(rawValue: request.udid.rawValue) == request.udid, "a CSR's UDID does not read back")
    } catch {
        requireRefusal(error, "the CSR", codes: [
            "csr_malformed", "csr_signature_invalid", "udid_missing", "udid_invalid", "key_algorithm_not_allowed",
        ])
    }
    // The subject's UDID, reached even when the self-signature does not verify.
    if let csr = try? CertificateSigningRequest(derEncoded: der) {
        do {
            _ = try EnrollmentRequest.udid(in: csr.subject)
        } catch {
            requireRefusal(error, "the CSR subject", codes: ["udid_missing", "udid_invalid"])
        }
    }
    return 0
}

/// The process's entry when the build names it `FuzzEST_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzEST_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzEST)
}
