import Crypto
import Firmware
import HallmarkCore
import HallmarkStore
import NIOCore
import Synchronization
import X509

import Foundation

/// Serves devices their copies of releases over mutual TLS: the release's image is read once and
/// kept as one buffer; a device's copy is that buffer with its own ENC_EC256 value in place, sent
/// as slices of it, never copied per device. The content key is unwrapped once per release (the
/// mastering key is opened with the passphrase then) and kept in memory, like the CA's keys.
public final class FirmwareDelivery: Sendable {
    let registry: Registry
    let passphrase: Passphrase

    struct Prepared: Sendable {
        var release: Registry.FirmwareRelease
        var image: ByteBuffer
        var copier: DeviceCopier
    }

    private let prepared = Mutex<[String: Prepared]>([:])

    public init(registry: Registry, passphrase: Passphrase) {
        self.registry = registry
        self.passphrase = passphrase
    }

    /// A device's copy, as the parts to send: the bytes before its key, its key, the bytes after.
    public struct Copy: Sendable {
        public var release: Registry.FirmwareRelease
        public var size: Int
        let image: ByteBuffer
        let keyRange: Range<Int>
        let key: [UInt8]

        /// The bytes of `range` of the copy, as slices of the shared image around the device's key.
        public func parts(_ range: Range<Int>) -> [ByteBuffer] {
            var parts: [ByteBuffer] = []
            func slice(_ piece: Range<Int>) {
                let clipped = piece.clamped(to: range)
                guard !clipped.isEmpty, let part = image.getSlice(at: image.readerIndex + clipped.lowerBound, length: clipped.count) else { return }
                parts.append(part)
            }
            slice(0..<keyRange.lowerBound)
            let keyPart = keyRange.clamped(to: range)
            if !keyPart.isEmpty {
                parts.append(ByteBuffer(bytes: key[(keyPart.lowerBound - keyRange.lowerBound)..<(keyPart.upperBound - keyRange.lowerBound)]))
            }
            slice(keyRange.upperBound..<size)
            return parts
        }
    }

    /// The copy of a release a client certificate's device may download.
    /// - Throws: `client_certificate_required`, `certificate_unknown` / `certificate_revoked` /
    ///   `thing_inactive` (not a device in good standing), `not_found` (no such release in the
    ///   device's tenant), `firmware_wrong_product`, `not_authorized` (no job targets the device
    ///   with this release), `firmware_key_missing`.
    public func copy(release id: String, clientCertificate: Certificate?, now: Date = Date()) async throws -> (Copy, ConnectionIdentity) {
        guard let clientCertificate else {
            throw HallmarkError(
                .clientCertificateRequired, "Firmware is delivered over mutual TLS only.",
                remedy: "Connect with the device's operational certificate and key.")
        }
        let fingerprint = CertificateFingerprint.sha256(clientCertificate)
        guard let identity = try registry.connectionIdentity(fingerprint: fingerprint) else {
            throw HallmarkError(.certificateUnknown, "The client certificate is not one Hallmark issued or registered.", remedy: "Enrol the device first.")
        }
        guard identity.certificateStatus == .active else {
            throw HallmarkError(
                .certificateRevoked, "The client certificate is \(identity.certificateStatus.rawValue).", remedy: "Renew the device's certificate.")
        }
        guard identity.thingStatus != .inactive, identity.deviceStatus == nil || identity.deviceStatus == .enrolled else {
            throw HallmarkError(.thingInactive, "Thing \(identity.thingName) is not in good standing.", remedy: "Reactivate the thing or device.")
        }
        let release = try registry.firmwareRelease(tenant: identity.tenant, id: id)
        guard let udid = identity.udid, let device = try registry.deviceFirmwareKey(udid: udid) else {
            throw HallmarkError(.firmwareKeyMissing, "Thing \(identity.thingName) has no device on record.", remedy: "Enrol the device with its UDID.")
        }
        guard device.product == release.product else {
            throw HallmarkError(
                .firmwareWrongProduct, "Release \(release.id.prefix(16)) is for product \(release.product); this device is a \(device.product).",
                remedy: "Download a release of the device's own product.")
        }
        guard try registry.downloadGrant(tenant: identity.tenant, thing: identity.thingName, release: release) != nil else {
            throw HallmarkError(
                .notAuthorized, "No job targets thing \(identity.thingName) with release \(release.id.prefix(16)).",
                remedy: "Download a release while a job for it targets the device (or the release it last reported running, to restore it).")
        }
        let recipient = try FirmwareCatalog.firmwareKey(device.key, udid: udid)
        let ready = try prepare(release)
        let key = try await registry.wrappedKey(release: release.id, udid: udid, make: { try ready.copier.wrappedKey(for: recipient) }, now: now)
        return (Copy(release: release, size: ready.image.readableBytes, image: ready.image, keyRange: ready.copier.keyRange, key: key), identity)
    }

    private func prepare(_ release: Registry.FirmwareRelease) throws -> Prepared {
        if let known = prepared.withLock({ $0[release.id] }) { return known }
        let keys = try registry.firmwareKeys(tenant: release.tenant, product: release.product)
        let image = try MCUbootImage(try registry.firmwareImage(release: release.id))
        let copier = try DeviceCopier(image: image, masteringKey: try FirmwareCatalog.agreementKey(keys.masteringKeySealed, passphrase: passphrase))
        let ready = Prepared(release: release, image: ByteBuffer(bytes: image.bytes), copier: copier)
        prepared.withLock { $0[release.id] = ready }
        return ready
    }
}
