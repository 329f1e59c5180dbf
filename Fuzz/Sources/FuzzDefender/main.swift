import Crypto
import FuzzSupport
import HallmarkCore

/// Device Defender input: the first byte picks what the rest is.
/// - 0, 1: a metrics report in JSON or CBOR (`$aws/things/<t>/defender/metrics/{json,cbor}`);
/// - 2: a COSE_Sign1 (`$hallmark/things/<t>/…/cose`) and the report or event it carries;
/// - 3: a security event's CBOR;
/// - 4: a security profile document (`hallmark security-profile create`).
/// Any CBOR item decoded re-encodes to an item that decodes to itself; a COSE_Sign1 that decodes
/// carries a payload that, signed again, verifies; every refusal has a client's code.
let key = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: 0x44, count: 32))
let reportCodes: Set<String> = ["report_invalid", "body_too_large"]

func requireCBORRoundTrip(_ bytes: [UInt8]) {
    guard let item = try? CBOR(decoding: bytes) else { return }
    do {
        // Compared as bytes: a NaN is not equal to itself.
        let again = try CBOR(decoding: item.encoded)
        require(again.encoded == item.encoded, "a CBOR item re-encoded decodes as another")
    } catch {
        fatalError("a CBOR item's own encoding is refused: \(error)")
    }
}

func report(_ payload: [UInt8], _ format: DefenderTopic.Format) {
    do {
        let report = try DefenderReport.decode(payload, format: format)
        for list in [report.listeningTCPPorts, report.listeningUDPPorts].compactMap({ $0 }) {
            require(list.ports.allSatisfy { (0...65535).contains($0) }, "a report with a port out of range was taken")
        }
    } catch {
        requireRefusal(error, "the \(format) report", codes: reportCodes)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDefender(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (mode, rest) = modeAndRest(start, count) else { return 0 }
    switch mode % 5 {
    case 0:
        report(rest, .json)
    case 1:
        requireCBORRoundTrip(rest)
        report(rest, .cbor)
    case 2:
        requireCBORRoundTrip(rest)
        do {
            let message = try COSESign1(decoding: rest)
            let signed = try COSESign1(decoding: try COSESign1.sign(message.payload, with: key, keyID: message.keyID))
            require(signed.isValidSignature(for: key.publicKey), "a payload signed again does not verify")
            require(signed.payload == message.payload && signed.keyID == message.keyID, "signing again changed the payload or key id")
            report(message.payload, .cose)
            do { _ = try SecurityEvent(decoding: message.payload) } catch { requireRefusal(error, "the signed event", codes: reportCodes) }
        } catch let error as HallmarkError {
            requireRefusal(error, "the COSE_Sign1", codes: reportCodes)
        } catch {
            fatalError("signing a COSE_Sign1 failed: \(error)")
        }
    case 3:
        do { _ = try SecurityEvent(decoding: rest) } catch { requireRefusal(error, "the security event", codes: reportCodes) }
    default:
        do {
            _ = try SecurityProfile(json: rest)
        } catch {
            requireRefusal(error, "the security profile", codes: ["security_profile_invalid"])
        }
    }
    return 0
}

/// The process's entry when the build names it `FuzzDefender_main` (SwiftPM's executables on Linux).
@_cdecl("FuzzDefender_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzDefender)
}
