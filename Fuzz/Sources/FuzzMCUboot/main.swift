import Crypto
import Firmware
import FuzzSupport
import HallmarkCore

/// An MCUboot image, as `hallmark firmware import` and a device's download read it. An image that
/// parses re-parses from its own bytes to the same header and TLVs; one that opens with the
/// harness's mastering key and verifies with its signing key gives, for a device, a copy that the
/// device decrypts and verifies to the same digest and version. The keys are Fuzz/keys/*.pem.
let signingKey = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: 0x11, count: 32))
let masteringKey = try! P256.KeyAgreement.PrivateKey(rawRepresentation: Array(repeating: 0x22, count: 32))
let deviceKey = try! P256.KeyAgreement.PrivateKey(rawRepresentation: Array(repeating: 0x33, count: 32))
let firmwareCodes: Set<String> = [
    "firmware_image_invalid", "firmware_signature_invalid", "firmware_signer_unknown", "firmware_not_for_device",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMCUboot(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let image: MCUbootImage
    do {
        image = try MCUbootImage(input(start, count))
    } catch {
        requireRefusal(error, "the image", codes: ["firmware_image_invalid"])
        return 0
    }
    do {
        let again = try MCUbootImage(image.bytes)
        require(again.header == image.header && again.protectedTLVs == image.protectedTLVs
                && again.unprotectedTLVs.map(\.tlv) == image.unprotectedTLVs.map(\.tlv),
                "an image re-parsed from its own bytes differs")
    } catch {
        fatalError("an image's own bytes are refused: \(error)")
    }
    guard image.header.contentKeyLength != nil else {
        do {
            let verified = try image.verify(signers: [signingKey.publicKey])
            require(verified.version == image.header.version, "a verified image's version is not its header's")
        } catch {
            requireRefusal(error, "the plain image", codes: firmwareCodes)
        }
        return 0
    }
    do {
        let copier = try DeviceCopier(image: image, masteringKey: masteringKey)
        let mastered = try image.verify(signers: [signingKey.publicKey], plaintextPayload: try copier.plaintextPayload())
        let copy = try MCUbootImage(try copier.copy(for: deviceKey.publicKey))
        let (verified, plain) = try copy.decrypt(with: deviceKey, signers: [signingKey.publicKey])
        require(verified == mastered, "a device's copy verifies as \(verified), the mastered image as \(mastered)")
        require(plain.count == copy.bytes.count, "a decrypted copy changed length")
    } catch let error as HallmarkError {
        requireRefusal(error, "the encrypted image", codes: firmwareCodes)
    } catch {
        fatalError("a copy for a device failed: \(error)")
    }
    return 0
}

/// The process's entry when the build names it `FuzzMCUboot_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzMCUboot_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzMCUboot)
}
