import Crypto
import Foundation
import FuzzSupport
import HallmarkCore
import X509

/// A silicon vendor's manifest as `hallmark manifest import` checks it. Mode 0 takes the input as
/// a whole manifest file; mode 1 takes it as one entry's claims, which the harness signs with the
/// vendor's manifest key so that the claims, the JWK and the x5c chain are reached past the
/// signature. Every entry is a device or a problem with a client's code, never both or neither.
let vendorKey = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: 0x5A, count: 32))
let trust = ManufacturerTrust(vendor: "fuzz-vendor", manifestKey: vendorKey.publicKey, attestationRoots: [])
let protectedHeader = Base64URL.encode(Array(#"{"alg":"ES256","kid":"fuzz","typ":"JWT"}"#.utf8))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard case (let mode, var file)? = modeAndRest(start, count) else { return 0 }
    if mode & 1 == 1 {
        let payload = Base64URL.encode(file)
        let signature = try! vendorKey.signature(for: Data((protectedHeader + "." + payload).utf8))
        file = Array(#"[{"payload":"\#(payload)","protected":"\#(protectedHeader)","signature":"\#(Base64URL.encode(signature.rawRepresentation))"}]"#.utf8)
    }
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let manifestFile = file
    blocking {
        do throws(HallmarkError) {
            let manifest = try await ManifestVerifier.verify(manifestFile, trust: trust, now: now)
            require(manifest.devices.count + manifest.problems.count == manifest.entryCount,
                    "\(manifest.entryCount) entries gave \(manifest.devices.count) devices and \(manifest.problems.count) problems")
            require(Set(manifest.devices.map(\.udid)).count == manifest.devices.count, "a UDID is vouched for twice")
            for problem in manifest.problems {
                requireRefusal(problem.error, "manifest entry \(problem.index)",
                               codes: ["manifest_invalid", "manifest_signature_invalid", "attestation_chain_invalid", "udid_invalid",
                                       "key_algorithm_not_allowed"])
            }
        } catch {
            requireRefusal(error, "the manifest", codes: ["manifest_invalid"])
        }
    }
    return 0
}

/// The process's entry when the build names it `FuzzManifest_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzManifest_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzManifest)
}
