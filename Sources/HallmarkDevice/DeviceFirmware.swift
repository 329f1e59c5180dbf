import Crypto
import Firmware
import HallmarkCore

import Foundation

/// A simulated device's firmware storage, laid out like a device with MCUboot: two slot files
/// (`slot-a.img`, `slot-b.img`, each an image as downloaded, encrypted for this device),
/// `boot.json` (the trailers' states, the non-volatile security counter and the boot count),
/// the firmware decryption key `firmware-key.pem` (0600; separate from the root of trust), the
/// signers' public keys the bootloader trusts (`boot-keys.pem`) and, optionally, `product`
/// (`TENANT/PRODUCT`, whose class id an image must carry when it names one).
///
/// Every decision is ``BootLoader``'s; this type reads and writes the files around it.
public struct DeviceFirmware: Sendable {
    public let state: DeviceState

    public init(state: DeviceState) {
        self.state = state
    }

    var directory: URL { state.directory }
    var firmwareKeyFile: URL { directory.appendingPathComponent("firmware-key.pem") }
    var bootKeysFile: URL { directory.appendingPathComponent("boot-keys.pem") }
    var productFile: URL { directory.appendingPathComponent("product") }
    var bootFile: URL { directory.appendingPathComponent("boot.json") }
    func slotFile(_ index: Int) -> URL { directory.appendingPathComponent("slot-\(BootState.names[index].lowercased()).img") }

    /// Makes the firmware decryption key, once ("at the factory").
    func makeFirmwareKey() throws {
        guard !FileManager.default.fileExists(atPath: firmwareKeyFile.path) else { return }
        try writeSecret(P256.KeyAgreement.PrivateKey().pemRepresentation + "\n", to: firmwareKeyFile)
    }

    /// The firmware decryption key.
    func firmwareKey() throws -> P256.KeyAgreement.PrivateKey {
        guard let text = try? String(contentsOf: firmwareKeyFile, encoding: .utf8),
            let key = try? P256.KeyAgreement.PrivateKey(pemRepresentation: text)
        else {
            throw HallmarkError(
                .firmwareKeyMissing, "The device has no firmware key (\(firmwareKeyFile.lastPathComponent)).",
                remedy: "Manufacture it again with `hallmark device factory`.")
        }
        return key
    }

    /// The firmware key's public half (DER SubjectPublicKeyInfo), for the allowlist's `firmware_key` column.
    public func firmwareKeySPKI() throws -> [UInt8] {
        Array(try firmwareKey().publicKey.derRepresentation)
    }

    /// Installs the keys the bootloader trusts and, optionally, the product it is.
    public func provision(bootKeysPEM: String, tenant: String?, product: String?) throws {
        let keys = try Self.parseKeys(bootKeysPEM)
        guard !keys.isEmpty else {
            throw HallmarkError(.firmwareImageInvalid, "No P-256 public key in the boot keys given.", remedy: "Give DIR/signing.pub.pem from `hallmark firmware key create`.")
        }
        try Data(bootKeysPEM.utf8).write(to: bootKeysFile)
        if let product { try Data("\(tenant ?? "default")/\(product)\n".utf8).write(to: productFile) }
    }

    static func parseKeys(_ pem: String) throws -> [P256.Signing.PublicKey] {
        pem.components(separatedBy: "-----END PUBLIC KEY-----").compactMap { part in
            guard let start = part.range(of: "-----BEGIN PUBLIC KEY-----") else { return nil }
            return try? P256.Signing.PublicKey(pemRepresentation: String(part[start.lowerBound...]) + "-----END PUBLIC KEY-----")
        }
    }

    func bootKeys() throws -> [P256.Signing.PublicKey] {
        let keys = (try? String(contentsOf: bootKeysFile, encoding: .utf8)).map { (try? Self.parseKeys($0)) ?? [] } ?? []
        guard !keys.isEmpty else {
            throw HallmarkError(
                .firmwareSignerUnknown, "The device's bootloader trusts no signing key (\(bootKeysFile.lastPathComponent)).",
                remedy: "Provision it with `hallmark device factory --boot-key DIR/signing.pub.pem`.")
        }
        return keys
    }

    func productClass() -> ProductClass? {
        guard let text = try? String(contentsOf: productFile, encoding: .utf8) else { return nil }
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? ProductClass(tenant: parts[0], product: parts[1]) : nil
    }

    /// The boot state (a new device's when there is none yet).
    public func bootState() throws -> BootState {
        guard let data = FileManager.default.contents(atPath: bootFile.path) else { return BootState() }
        return try JSONDecoder().decode(BootState.self, from: data)
    }

    /// Stores a boot state (the boot limit is the one setting a user changes).
    public func saveBootState(_ boot: BootState) throws { try save(boot) }

    func save(_ boot: BootState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Self.replace(bootFile, with: try encoder.encode(boot))
    }

    /// Checks an image as the bootloader would before it is marked pending: decrypted with this
    /// device's key, hash and signature by a trusted key, its product's class id when it names one.
    /// - Throws: `firmware_image_invalid`, `firmware_not_for_device`, `firmware_signature_invalid`,
    ///   `firmware_signer_unknown`, `firmware_wrong_product`.
    public func check(_ bytes: [UInt8]) throws -> SlotImage {
        let image = try MCUbootImage(bytes)
        let (verified, _) = try image.decrypt(with: try firmwareKey(), signers: try bootKeys())
        guard let counter = verified.securityCounter else {
            throw HallmarkError(.firmwareImageInvalid, "The image has no security counter.", remedy: "Sign it with a security counter (`imgtool sign -s N`).")
        }
        if let productClass = productClass(), let classID = image.classID, classID != productClass.classID {
            throw HallmarkError(.firmwareWrongProduct, "The image is for another product (its UUID_CID is not this device's).", remedy: "Install a release of this device's product.")
        }
        return SlotImage(version: verified.version, securityCounter: counter, digest: verified.digest.hexString)
    }

    /// Verifies a download completely and writes it to the inactive slot, pending a trial boot.
    /// - Throws: what ``check(_:)`` throws, `firmware_rollback`, `firmware_downgrade`.
    public func install(_ bytes: [UInt8], permanent: Bool = false) throws -> (BootState, [BootLoader.Event]) {
        let image = try check(bytes)
        let next: BootState, events: [BootLoader.Event]
        do {
            (next, events) = try BootLoader.install(try bootState(), image, permanent: permanent)
        } catch let refusal as HallmarkError where refusal.code == .firmwareRollback || refusal.code == .firmwareDowngrade {
            // The cloud hears of a rollback refused, signed, at the next report.
            DefenderAgent.queue([(.rollbackRefused, "install of \(image.version) refused: \(refusal.code)")], in: directory)
            throw refusal
        }
        try write(bytes, toSlot: next.slots.firstIndex { $0.image == image && ($0.state == .pendingTest || $0.state == .pendingPermanent) }!)
        try save(next)
        return (next, events)
    }

    /// Writes the last good release, fetched from Hallmark, when no slot can boot.
    public func restore(_ bytes: [UInt8]) throws -> (BootState, [BootLoader.Event]) {
        let image = try check(bytes)
        let (next, events) = try BootLoader.restore(try bootState(), image)
        try write(bytes, toSlot: next.slots.firstIndex { $0.image == image && $0.state == .pendingPermanent }!)
        try save(next)
        return (next, events)
    }

    /// A reset: each slot's image verified again, then the bootloader's decision.
    public func reboot(failing: Bool = false) throws -> (BootState, [BootLoader.Event]) {
        let boot = try bootState()
        let intact = boot.slots.indices.map { index -> Bool in
            guard let recorded = boot.slots[index].image else { return true }
            guard let bytes = FileManager.default.contents(atPath: slotFile(index).path), let found = try? check([UInt8](bytes)) else { return false }
            return found == recorded
        }
        let (next, events) = BootLoader.boot(boot, intact: intact, failing: failing)
        try save(next)
        DefenderAgent.queue(DefenderAgent.securityEvents(events), in: directory)
        return (next, events)
    }

    /// The running trial image passed its self-test: confirm it.
    public func confirm() throws -> (BootState, [BootLoader.Event]) {
        let (next, events) = BootLoader.confirm(try bootState())
        try save(next)
        return (next, events)
    }

    /// The running image's decrypted payload (what it runs), for its self-test.
    public func runningPayload() throws -> [UInt8] {
        let boot = try bootState()
        guard let running = boot.running, let bytes = FileManager.default.contents(atPath: slotFile(running).path) else { return [] }
        let image = try MCUbootImage([UInt8](bytes))
        let (_, plain) = try image.decrypt(with: try firmwareKey(), signers: try bootKeys())
        return Array(plain[image.payloadRange])
    }

    /// Simulates an attack on the flash: one byte of the running image's payload flipped.
    public func tamper() throws -> Int {
        let boot = try bootState()
        guard let running = boot.running, var bytes = FileManager.default.contents(atPath: slotFile(running).path).map([UInt8].init) else {
            throw HallmarkError(.notFound, "No image is running to tamper with.", remedy: "Install and boot an image first.")
        }
        let offset = Int(try MCUbootImage(bytes).header.headerSize) + 16
        bytes[offset] ^= 0x5a
        try Self.replace(slotFile(running), with: Data(bytes))
        return running
    }

    private func write(_ bytes: [UInt8], toSlot index: Int) throws {
        try Self.replace(slotFile(index), with: Data(bytes))
    }

    /// Writes a file whole or not at all (a temporary file, then a rename), as a power loss must
    /// leave either the old or the new contents.
    static func replace(_ url: URL, with data: Data) throws {
        let temporary = url.appendingPathExtension("\(UUID().uuidString).new")
        try data.write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            throw HallmarkError(.internalError, "Cannot write \(url.path) (errno \(errno)).", remedy: "Check the state directory's permissions.")
        }
    }
}

extension BootLoader.Event {
    /// The event as one JSON object: what the device reports.
    public var report: [String: String] {
        func describe(_ image: SlotImage) -> [String: String] {
            ["version": image.version.description, "securityCounter": String(image.securityCounter), "digest": image.digest]
        }
        switch self {
        case .installed(let slot, let image, let permanent):
            return ["event": "installed", "slot": BootState.names[slot], "state": permanent ? "pending_permanent" : "pending_test"].merging(describe(image)) { $1 }
        case .booted(let slot, let image, let trial):
            return ["event": "booted", "slot": BootState.names[slot], "trial": String(trial)].merging(describe(image)) { $1 }
        case .confirmed(let slot, let image):
            return ["event": "confirmed", "slot": BootState.names[slot]].merging(describe(image)) { $1 }
        case .counterRaised(let value):
            return ["event": "counter_raised", "securityCounter": String(value)]
        case .reverted(let slot, let image):
            return ["event": "reverted", "slot": BootState.names[slot]].merging(describe(image)) { $1 }
        case .refused(let slot, let image, let code):
            return ["event": "refused", "slot": BootState.names[slot], "code": code].merging(describe(image)) { $1 }
        case .tamperDetected(let slot):
            return ["event": "tamper_detected", "slot": BootState.names[slot]]
        case .bootFailed(let slot, let count):
            return ["event": "boot_failed", "slot": BootState.names[slot], "bootCount": String(count)]
        case .failedOver(let from, let to):
            return ["event": "failed_over", "from": BootState.names[from], "to": BootState.names[to]]
        case .recoveryNeeded:
            return ["event": "recovery_needed"]
        }
    }
}
