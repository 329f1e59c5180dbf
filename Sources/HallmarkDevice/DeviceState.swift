import Crypto
import HallmarkCore
import SwiftASN1
import X509

import Foundation

/// A simulated device's persistent state, in its own directory:
/// `udid` (the burnt-in id), `rot-key.pem` (the root-of-trust private key, mode 0600, made once
/// "at the factory"), `certificate.pem` (the operational certificate, once enrolled) and
/// `trust.pem` (the CA the device trusts to be its server).
public struct DeviceState: Sendable {
    public let directory: URL
    public let udid: UDID
    /// The root-of-trust key. On real silicon it never leaves the chip.
    let rootOfTrust: Certificate.PrivateKey

    var udidFile: URL { directory.appendingPathComponent("udid") }
    var keyFile: URL { directory.appendingPathComponent("rot-key.pem") }
    var certificateFile: URL { directory.appendingPathComponent("certificate.pem") }
    var trustFile: URL { directory.appendingPathComponent("trust.pem") }
    var attestationFile: URL { directory.appendingPathComponent("attestation.pem") }

    /// The device's public root-of-trust key, as a manufacturer would list it.
    public var publicKey: DeviceKey { try! DeviceKey(rootOfTrust.publicKey) }

    /// "Manufactures" a device: a fresh UDID (unless given) and a P-256 root-of-trust key.
    public static func manufacture(at directory: URL, udid: UDID? = nil) throws -> DeviceState {
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: directory.appendingPathComponent("rot-key.pem").path) {
            throw HallmarkError(
                .keyFileInvalid, "A device already exists in \(directory.path).", remedy: "Choose an empty state directory.")
        }
        try fileManager.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let udid = try udid ?? UDID(validating: "HM-" + (0..<8).map { _ in UInt8.random(in: 0...255) }.hexString.uppercased())
        let key = Certificate.PrivateKey(P256Key.make())
        let state = DeviceState(directory: directory, udid: udid, rootOfTrust: key)
        try writeSecret(try key.serializeAsPEM().pemString, to: state.keyFile)
        try Data((udid.rawValue + "\n").utf8).write(to: state.udidFile)
        try DeviceFirmware(state: state).makeFirmwareKey()
        return state
    }

    /// Loads a device from its state directory.
    public static func load(from directory: URL) throws -> DeviceState {
        let udidText = try String(contentsOf: directory.appendingPathComponent("udid"), encoding: .utf8)
        let udid = try UDID(validating: udidText.trimmingCharacters(in: .whitespacesAndNewlines))
        let keyPEM = try String(contentsOf: directory.appendingPathComponent("rot-key.pem"), encoding: .utf8)
        return DeviceState(directory: directory, udid: udid, rootOfTrust: try Certificate.PrivateKey(pemEncoded: keyPEM))
    }

    /// The CSR a device sends: subject CN = UDID, key and signature from the root of trust.
    public func makeCSR(key: Certificate.PrivateKey? = nil, udid: UDID? = nil) throws -> CertificateSigningRequest {
        try DeviceCSR.make(commonName: (udid ?? self.udid).rawValue, key: key ?? rootOfTrust)
    }

    /// The operational certificate, if enrolled.
    public func certificate() throws -> Certificate? {
        guard FileManager.default.fileExists(atPath: certificateFile.path) else { return nil }
        return try Certificate(pemEncoded: String(contentsOf: certificateFile, encoding: .utf8))
    }

    /// Saves the operational certificate (written to a temporary file, then renamed).
    public func store(certificate: Certificate) throws {
        let temporary = directory.appendingPathComponent("certificate.pem.\(UUID().uuidString).new")
        try Data(try certificate.serializeAsPEM().pemString.utf8).write(to: temporary)
        guard rename(temporary.path, certificateFile.path) == 0 else {
            throw HallmarkError(.internalError, "Cannot save \(certificateFile.path) (errno \(errno)).", remedy: "Check the state directory's permissions.")
        }
    }

    /// The factory attestation certificate (IDevID) its chip vendor gave it, if any.
    public func attestationCertificate() throws -> Certificate? {
        guard FileManager.default.fileExists(atPath: attestationFile.path) else { return nil }
        return try Certificate(pemEncoded: String(contentsOf: attestationFile, encoding: .utf8))
    }

    /// Installs the factory attestation certificate.
    public func install(attestation: Certificate) throws {
        try Data(try attestation.serializeAsPEM().pemString.utf8).write(to: attestationFile)
    }

    /// The CA certificates the device trusts for its server.
    public func trustRoots() throws -> [Certificate] {
        let pem = try String(contentsOf: trustFile, encoding: .utf8)
        return try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
    }

    /// Installs the CA the device trusts (as a factory image would carry it).
    public func install(trustRoots pem: String) throws {
        try Data(pem.utf8).write(to: trustFile)
    }

    var thingFile: URL { directory.appendingPathComponent("thing") }

    /// The thing the device is, when fleet provisioning named it (else its certificate's CN is).
    public func thingName() -> String? {
        (try? String(contentsOf: thingFile, encoding: .utf8)).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Remembers the thing name fleet provisioning gave the device.
    public func store(thingName: String) throws {
        try Data((thingName + "\n").utf8).write(to: thingFile)
    }

    /// The root-of-trust key, for TLS client authentication with the operational certificate.
    public var privateKey: Certificate.PrivateKey { rootOfTrust }

    /// The root-of-trust key as a P-256 signing key (what signs the device's reports and events).
    public func signingKey() throws -> P256.Signing.PrivateKey {
        try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOf: keyFile, encoding: .utf8))
    }
}
