import Crypto
import Foundation

/// A COSE_Sign1 message (RFC 9052 §4.2) signed with ES256 (RFC 9053: ECDSA P-256 over SHA-256,
/// the signature the raw `r‖s`): `[protected bstr, unprotected map, payload bstr, signature bstr]`,
/// tag 18 or untagged. What Hallmark's device agent sends and `pycose` reads and writes.
public struct COSESign1: Sendable, Equatable {
    /// The CBOR tag of a COSE_Sign1.
    public static let tag: UInt64 = 18
    /// COSE's algorithm id of ES256.
    public static let es256: Int64 = -7

    /// The protected header as sent (the bytes the signature covers).
    public var protectedHeader: [UInt8]
    /// The key id from the unprotected (or protected) header, if any.
    public var keyID: [UInt8]?
    public var payload: [UInt8]
    public var signature: [UInt8]

    /// Decodes a message.
    /// - Throws: `report_invalid` for anything but a COSE_Sign1 with an ES256 protected header,
    ///   an attached payload and a 64-byte signature; critical headers are refused (RFC 9052 §3.1).
    public init(decoding bytes: [UInt8]) throws(HallmarkError) {
        let item: CBOR
        do { item = try CBOR(decoding: bytes) } catch { throw Self.invalid("it is not one CBOR item") }
        var message = item
        if case .tagged(let tag, let inner) = item {
            guard tag == Self.tag else { throw Self.invalid("its tag is \(tag), not 18 (COSE_Sign1)") }
            message = inner
        }
        guard case .array(let parts) = message, parts.count == 4 else { throw Self.invalid("it is not a four-element COSE_Sign1 array") }
        guard case .bytes(let protected) = parts[0] else { throw Self.invalid("its protected header is not a byte string") }
        guard case .map(let unprotected) = parts[1] else { throw Self.invalid("its unprotected header is not a map") }
        guard case .bytes(let payload) = parts[2] else { throw Self.invalid("its payload is detached or not a byte string") }
        guard case .bytes(let signature) = parts[3], signature.count == 64 else {
            throw Self.invalid("its signature is not the 64-byte r‖s of ES256")
        }
        let headers: [CBORPair]
        if protected.isEmpty {
            headers = []
        } else {
            guard let decoded = try? CBOR(decoding: protected), case .map(let pairs) = decoded else {
                throw Self.invalid("its protected header is not a CBOR map")
            }
            headers = pairs
        }
        func label(_ pairs: [CBORPair], _ label: Int64) -> CBOR? { pairs.first { $0.key.integer == label }?.value }
        guard label(headers, 1)?.integer == Self.es256 else { throw Self.invalid("its protected header does not name ES256 (alg -7)") }
        guard label(headers, 2) == nil, label(unprotected, 2) == nil else { throw Self.invalid("it has critical headers, which are not understood") }
        guard label(unprotected, 1) == nil else { throw Self.invalid("it names an algorithm outside the protected header") }
        if case .bytes(let kid)? = label(unprotected, 4) ?? label(headers, 4) { keyID = kid } else { keyID = nil }
        protectedHeader = protected
        self.payload = payload
        self.signature = signature
    }

    /// The `Sig_structure` the signature covers: `["Signature1", protected, external_aad, payload]`.
    public static func toBeSigned(protectedHeader: [UInt8], payload: [UInt8], externalAAD: [UInt8] = []) -> [UInt8] {
        CBOR.array([.text("Signature1"), .bytes(protectedHeader), .bytes(externalAAD), .bytes(payload)]).encoded
    }

    /// Whether the signature is the key's over the message.
    public func isValidSignature(for key: P256.Signing.PublicKey) -> Bool {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
        return key.isValidSignature(signature, for: Self.toBeSigned(protectedHeader: protectedHeader, payload: payload))
    }

    /// Signs a payload: protected `{1: -7, 3: "application/cbor"}`, unprotected `{4: keyID}`, tagged.
    public static func sign(_ payload: [UInt8], with key: P256.Signing.PrivateKey, keyID: [UInt8]?) throws -> [UInt8] {
        let protected = CBOR.map([CBORPair(.unsigned(1), .negative(6)), CBORPair(.unsigned(3), .text("application/cbor"))]).encoded
        let signature = try key.signature(for: toBeSigned(protectedHeader: protected, payload: payload))
        let unprotected = keyID.map { [CBORPair(.unsigned(4), .bytes($0))] } ?? []
        return CBOR.tagged(tag, .array([.bytes(protected), .map(unprotected), .bytes(payload), .bytes(Array(signature.rawRepresentation))])).encoded
    }

    static func invalid(_ what: String) -> HallmarkError {
        HallmarkError(
            .reportInvalid, "The signed message is not a COSE_Sign1 Hallmark takes: \(what).",
            remedy: "Sign the CBOR report as a COSE_Sign1 with ES256 (RFC 9052) with the key of the thing's certificate.")
    }
}
