import Crypto
import HallmarkCore
import SwiftASN1
import X509

import Foundation

/// A simulated silicon vendor, kept in a directory: the P-256 key that signs its manifests
/// (`manifest-signing.key`, 0600, and `manifest-signing.pub.pem`) and the root CA of its devices'
/// attestation certificates (`attestation-root.pem`, `attestation-root.key`, 0600).
///
/// It does what a secure-element vendor does before chips ship: gives each chip an attestation
/// certificate (an IDevID) for its root-of-trust key, and signs a manifest listing the chips.
public struct SimulatedVendor: Sendable {
    public let directory: URL
    public let name: String
    let manifestKey: P256.Signing.PrivateKey
    let attestationKey: Certificate.PrivateKey
    public let attestationRoot: Certificate

    public var manifestPublicKeyFile: URL { directory.appendingPathComponent("manifest-signing.pub.pem") }
    public var attestationRootFile: URL { directory.appendingPathComponent("attestation-root.pem") }

    /// Creates a vendor in an empty directory.
    public static func create(at directory: URL, name: String, now: Date = Date()) throws -> SimulatedVendor {
        let fileManager = FileManager.default
        guard !fileManager.fileExists(atPath: directory.appendingPathComponent("manifest-signing.key").path) else {
            throw HallmarkError(.keyFileInvalid, "A vendor already exists in \(directory.path).", remedy: "Choose an empty directory.")
        }
        try fileManager.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let manifestKey = P256Key.make()
        let attestationKey = Certificate.PrivateKey(P256Key.make())
        let rootName = try DistinguishedName {
            OrganizationName(name)
            CommonName("\(name) Attestation Root CA")
        }
        let root = try CertificateProfiles.root(key: attestationKey, name: rootName, now: now)
        try write(manifestKey.pemRepresentation, to: directory.appendingPathComponent("manifest-signing.key"), secret: true)
        try write(manifestKey.publicKey.pemRepresentation, to: directory.appendingPathComponent("manifest-signing.pub.pem"))
        try write(try attestationKey.serializeAsPEM().pemString, to: directory.appendingPathComponent("attestation-root.key"), secret: true)
        try write(try root.serializeAsPEM().pemString, to: directory.appendingPathComponent("attestation-root.pem"))
        try write(name, to: directory.appendingPathComponent("name"))
        return SimulatedVendor(
            directory: directory, name: name, manifestKey: manifestKey, attestationKey: attestationKey, attestationRoot: root)
    }

    /// Loads a vendor from its directory.
    public static func load(from directory: URL) throws -> SimulatedVendor {
        func read(_ file: String) throws -> String {
            try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        }
        return SimulatedVendor(
            directory: directory, name: try read("name"),
            manifestKey: try P256.Signing.PrivateKey(pemRepresentation: read("manifest-signing.key")),
            attestationKey: try Certificate.PrivateKey(pemEncoded: read("attestation-root.key")),
            attestationRoot: try Certificate(pemEncoded: read("attestation-root.pem")))
    }

    /// The attestation certificate (IDevID) of a chip: CN and serialNumber = UDID, its root-of-trust
    /// key, digitalSignature + clientAuth, valid for 25 years.
    public func attestationCertificate(udid: UDID, key: DeviceKey, now: Date = Date()) throws -> Certificate {
        let subject = try DistinguishedName {
            OrganizationName(name)
            CommonName(udid.rawValue)
        }
        let publicKey = try key.publicKey
        return try Certificate(
            version: .v3, serialNumber: CertificateProfiles.randomSerial(), publicKey: publicKey,
            notValidBefore: now - CertificateProfiles.backdating, notValidAfter: now + 25 * 365.25 * 86400,
            issuer: attestationRoot.subject, subject: subject,
            signatureAlgorithm: CertificateProfiles.signatureAlgorithm(for: attestationKey),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                SubjectKeyIdentifier(hash: publicKey)
                try CertificateProfiles.authorityKeyIdentifier(of: attestationRoot)
            },
            issuerPrivateKey: attestationKey)
    }

    /// Signs a manifest of chips: one signed entry each, with its attestation chain.
    public func manifest(_ chips: [(udid: UDID, key: DeviceKey, attestation: Certificate?)], lot: String?, now: Date = Date())
        throws -> [UInt8]
    {
        let entries = try chips.map { chip in
            try SecureElementManifest.sign(
                udid: chip.udid, key: chip.key, lot: lot, attestationChain: chip.attestation.map { [$0] } ?? [],
                vendorName: name, vendorKey: manifestKey, at: now)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(entries))
    }

    static func write(_ text: String, to url: URL, secret: Bool = false) throws {
        if secret { try writeSecret(text, to: url) } else { try Data(text.utf8).write(to: url) }
    }
}

/// Writes a private key file readable by its owner only (0600), never briefly wider.
func writeSecret(_ text: String, to url: URL) throws {
    guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
        throw HallmarkError(
            .keyFileInvalid, "Could not create \(url.lastPathComponent).",
            remedy: "Check that its directory exists and is writable.")
    }
    try Data(text.utf8).write(to: url)
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
}
