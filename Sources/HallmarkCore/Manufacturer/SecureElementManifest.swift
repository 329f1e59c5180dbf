import Crypto
import X509

import Foundation

/// A silicon vendor's manifest in the shape Microchip publishes for its secure elements: a JSON
/// array of *signed secure elements*, each a flattened JWS (RFC 7515 §7.2.2) signed ES256 by the
/// vendor, whose payload names one device: its unique id, its root-of-trust public key as a JWK,
/// and optionally the device's attestation certificate chain (`x5c`, leaf first).
///
/// Each entry carries its own signature, so a tampered entry is found and named on its own.
public enum SecureElementManifest {
    /// One signed entry, as it appears in the file.
    public struct SignedEntry: Codable, Sendable, Hashable {
        public var payload: String
        public var protected: String
        public var header: Header?
        public var signature: String

        public struct Header: Codable, Sendable, Hashable {
            public var uniqueId: String?
        }
    }

    /// The signed claims of one entry.
    public struct Claims: Codable, Sendable {
        public var version: Int?
        public var model: String?
        public var partNumber: String?
        public var manufacturer: Organization?
        /// The lot the device was shipped in; an OEM may claim one lot of a manifest.
        public var groupId: String?
        public var provisioningTimestamp: String?
        public var uniqueId: String
        public var publicKeySet: KeySet

        public struct Organization: Codable, Sendable {
            public var organizationName: String?
        }

        public struct KeySet: Codable, Sendable {
            public var keys: [JWK]
        }

        /// An EC public key (RFC 7517 / 7518 §6.2), with its certificate chain.
        public struct JWK: Codable, Sendable {
            public var kid: String?
            public var kty: String
            public var crv: String?
            public var x: String?
            public var y: String?
            /// Standard base64 DER certificates, the device's first (RFC 7517 §4.7).
            public var x5c: [String]?
        }
    }

    struct ProtectedHeader: Codable {
        var typ: String?
        var alg: String?
        var kid: String?
    }

    /// Signs one entry: what a vendor's (here, a simulated vendor's) tooling does.
    public static func sign(
        udid: UDID, key: DeviceKey, lot: String?, attestationChain: [Certificate], model: String = "HM-SE1",
        vendorName: String, vendorKey: P256.Signing.PrivateKey, at: Date
    ) throws -> SignedEntry {
        let claims = Claims(
            version: 1, model: model, partNumber: model + "-TNG", manufacturer: .init(organizationName: vendorName),
            groupId: lot, provisioningTimestamp: ISO8601DateFormatter().string(from: at), uniqueId: udid.rawValue,
            publicKeySet: .init(keys: [
                try jwk(for: key, chain: attestationChain.map { Data(try $0.derBytes()).base64EncodedString() })
            ]))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = ProtectedHeader(typ: "JWT", alg: "ES256", kid: keyID(vendorKey.publicKey))
        let protected = Base64URL.encode(try encoder.encode(header))
        let payload = Base64URL.encode(try encoder.encode(claims))
        let signature = try vendorKey.signature(for: Data((protected + "." + payload).utf8))
        return SignedEntry(
            payload: payload, protected: protected, header: .init(uniqueId: udid.rawValue),
            signature: Base64URL.encode(signature.rawRepresentation))
    }

    /// A short, stable id for a vendor's signing key: base64url of the first 16 bytes of the
    /// SHA-256 of its SubjectPublicKeyInfo.
    public static func keyID(_ key: P256.Signing.PublicKey) -> String {
        Base64URL.encode(SHA256.hash(data: key.derRepresentation).prefix(16))
    }

    static func jwk(for key: DeviceKey, chain: [String]) throws -> Claims.JWK {
        let point: [UInt8]
        switch key.algorithm {
        case .p256: point = Array(P256.Signing.PublicKey(try key.publicKey)!.x963Representation)
        case .p384: point = Array(P384.Signing.PublicKey(try key.publicKey)!.x963Representation)
        }
        let half = (point.count - 1) / 2
        return Claims.JWK(
            kid: "0", kty: "EC", crv: key.algorithm.rawValue, x: Base64URL.encode(point[1...half]),
            y: Base64URL.encode(point[(half + 1)...]), x5c: chain.isEmpty ? nil : chain)
    }

    /// The device key a JWK names: EC, P-256 or P-384.
    static func deviceKey(_ jwk: Claims.JWK) throws(HallmarkError) -> DeviceKey {
        guard jwk.kty == "EC", let x = jwk.x.flatMap(Base64URL.decode), let y = jwk.y.flatMap(Base64URL.decode) else {
            throw HallmarkError(
                .manifestInvalid, "The entry's key is not an EC JWK with x and y.",
                remedy: "The vendor's manifest must give each device key as an EC JWK (kty EC, crv, x, y).")
        }
        let point = Data([0x04] + x + y)
        let publicKey: Certificate.PublicKey?
        switch jwk.crv {
        case "P-256": publicKey = (try? P256.Signing.PublicKey(x963Representation: point)).map(Certificate.PublicKey.init)
        case "P-384": publicKey = (try? P384.Signing.PublicKey(x963Representation: point)).map(Certificate.PublicKey.init)
        default:
            throw HallmarkError(
                .keyAlgorithmNotAllowed, "The entry's key is on curve \(jwk.crv ?? "none"), not P-256 or P-384.",
                remedy: "Hallmark accepts device keys on P-256 or P-384 only.")
        }
        guard let publicKey else {
            throw HallmarkError(
                .manifestInvalid, "The entry's key is not a point on \(jwk.crv ?? "its curve").",
                remedy: "Ask the vendor for a corrected manifest.")
        }
        return try DeviceKey(publicKey)
    }
}
