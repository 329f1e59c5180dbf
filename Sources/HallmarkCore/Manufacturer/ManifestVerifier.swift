import Crypto
import X509

import Foundation

/// What a tenant trusts a silicon vendor for: the key that signs its manifests, and the roots of
/// the attestation certificates its chips carry (an IDevID chain).
public struct ManufacturerTrust: Sendable {
    public var vendor: String
    public var manifestKey: P256.Signing.PublicKey?
    public var attestationRoots: [Certificate]
    /// Intermediates the vendor publishes, used to build chains the devices do not carry whole.
    public var attestationIntermediates: [Certificate]

    public init(
        vendor: String, manifestKey: P256.Signing.PublicKey?, attestationRoots: [Certificate],
        attestationIntermediates: [Certificate] = []
    ) {
        self.vendor = vendor
        self.manifestKey = manifestKey
        self.attestationRoots = attestationRoots
        self.attestationIntermediates = attestationIntermediates
    }
}

/// A device the manifest vouches for, once its entry has been checked.
public struct ManifestDevice: Sendable {
    /// Position in the manifest, from 1.
    public var index: Int
    public var udid: UDID
    public var key: DeviceKey
    public var lot: String?
    /// The device's attestation certificate chain, leaf first, verified to a vendor root.
    public var attestationChain: [Certificate]
}

/// An entry refused, by position.
public struct ManifestProblem: Sendable {
    public var index: Int
    public var udid: String?
    public var error: HallmarkError

    public init(index: Int, udid: String?, error: HallmarkError) {
        self.index = index
        self.udid = udid
        self.error = error
    }
}

/// A manifest, checked entry by entry.
public struct VerifiedManifest: Sendable {
    /// SHA-256 of the file, hex: the manifest's identity in the provenance of its devices.
    public var id: String
    public var devices: [ManifestDevice]
    public var problems: [ManifestProblem]
    public var entryCount: Int
}

/// Checks a vendor manifest: each entry's ES256 signature by the vendor's manifest key, its
/// claims, and its attestation chain up to a registered vendor root, with the chain's leaf
/// certifying the very key the entry names.
public enum ManifestVerifier {
    /// Largest manifest file accepted: 64 MiB, some 20,000 entries with chains.
    public static let maximumSize = 64 << 20

    public static func verify(_ file: [UInt8], trust: ManufacturerTrust, now: Date) async throws(HallmarkError)
        -> VerifiedManifest
    {
        guard file.count <= maximumSize else {
            throw HallmarkError(
                .manifestInvalid, "The manifest is larger than \(maximumSize >> 20) MiB.",
                remedy: "Split the manifest into lots and import each.")
        }
        guard let manifestKey = trust.manifestKey else {
            throw HallmarkError(
                .vendorInvalid, "Vendor \(trust.vendor) has no manifest-signing key registered.",
                remedy: "Register it: `hallmark vendor register \(trust.vendor) --manifest-key KEY.pem`.")
        }
        let entries: [SecureElementManifest.SignedEntry]
        do {
            entries = try JSONDecoder().decode([SecureElementManifest.SignedEntry].self, from: Data(file))
        } catch {
            throw HallmarkError(
                .manifestInvalid, "The file is not a manifest: a JSON array of signed entries (payload, protected, signature).",
                remedy: "Import the vendor's manifest file as delivered.")
        }
        var result = VerifiedManifest(
            id: SHA256.hash(data: file).hexString, devices: [], problems: [], entryCount: entries.count)
        var seen: [UDID: Int] = [:]
        for (offset, entry) in entries.enumerated() {
            let index = offset + 1
            do throws(HallmarkError) {
                let device = try await verify(entry, index: index, key: manifestKey, trust: trust, now: now)
                if let first = seen[device.udid] {
                    throw HallmarkError(
                        .manifestInvalid, "Device \(device.udid) appears twice in the manifest (entries \(first) and \(index)).",
                        remedy: "Ask the vendor for a corrected manifest.")
                }
                seen[device.udid] = index
                result.devices.append(device)
            } catch {
                result.problems.append(ManifestProblem(index: index, udid: entry.header?.uniqueId, error: error))
            }
        }
        return result
    }

    static func verify(
        _ entry: SecureElementManifest.SignedEntry, index: Int, key: P256.Signing.PublicKey, trust: ManufacturerTrust,
        now: Date
    ) async throws(HallmarkError) -> ManifestDevice {
        let header = Base64URL.decode(entry.protected).flatMap {
            try? JSONDecoder().decode(SecureElementManifest.ProtectedHeader.self, from: Data($0))
        }
        guard let header else {
            throw signatureInvalid("Entry \(index) has no readable protected header.")
        }
        guard header.alg == "ES256" else {
            throw signatureInvalid(
                "Entry \(index) is not signed ES256 (alg \(header.alg.map { "'\($0.prefix(16))'" } ?? "missing")); unsigned or re-signed entries are refused.")
        }
        guard let signatureBytes = Base64URL.decode(entry.signature), signatureBytes.count == 64,
            let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes),
            key.isValidSignature(signature, for: Data((entry.protected + "." + entry.payload).utf8))
        else {
            throw signatureInvalid(
                "Entry \(index)'s signature does not verify with vendor \(trust.vendor)'s manifest key: it was altered or signed by someone else.")
        }
        guard let payload = Base64URL.decode(entry.payload),
            let claims = try? JSONDecoder().decode(SecureElementManifest.Claims.self, from: Data(payload))
        else {
            throw HallmarkError(
                .manifestInvalid, "Entry \(index)'s payload is not the claims of a secure element.",
                remedy: "Ask the vendor for a corrected manifest.")
        }
        let udid = try UDID(validating: claims.uniqueId)
        if let unprotected = entry.header?.uniqueId, unprotected != claims.uniqueId {
            throw HallmarkError(
                .manifestInvalid, "Entry \(index)'s unsigned header names \(unprotected.prefix(64)) but its signed payload names \(udid).",
                remedy: "The unsigned header was altered; ask the vendor for the original manifest.")
        }
        guard let jwk = claims.publicKeySet.keys.first else {
            throw HallmarkError(.manifestInvalid, "Entry \(index) has no public key.", remedy: "Ask the vendor for a corrected manifest.")
        }
        let deviceKey = try SecureElementManifest.deviceKey(jwk)
        var chain: [Certificate] = []
        if let x5c = jwk.x5c, !x5c.isEmpty {
            for (position, text) in x5c.enumerated() {
                guard let der = Data(base64Encoded: text), let certificate = try? Certificate(derEncoded: Array(der)) else {
                    throw HallmarkError(
                        .attestationChainInvalid, "Entry \(index)'s certificate \(position + 1) in x5c is not a DER certificate.",
                        remedy: "Ask the vendor for a corrected manifest.")
                }
                chain.append(certificate)
            }
            try await AttestationChain.verify(chain, trust: trust, now: now)
            guard (try? DeviceKey(chain[0].publicKey)) == deviceKey else {
                throw HallmarkError(
                    .attestationChainInvalid, "Entry \(index)'s attestation certificate certifies another key than the entry's.",
                    remedy: "The entry was assembled from two devices; ask the vendor for a corrected manifest.")
            }
        }
        return ManifestDevice(index: index, udid: udid, key: deviceKey, lot: claims.groupId, attestationChain: chain)
    }

    static func signatureInvalid(_ reason: String) -> HallmarkError {
        HallmarkError(
            .manifestSignatureInvalid, reason,
            remedy: "Import the manifest exactly as the vendor signed it, and check the vendor named is the one that signed it.")
    }
}
