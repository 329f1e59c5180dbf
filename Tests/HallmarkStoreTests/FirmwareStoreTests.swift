import Foundation
import HallmarkCore
import HallmarkServices
import HallmarkStore
import Testing

/// Releases in a real SQLite registry: ids, repeats, sealed keys, a device's copy.
@Suite struct FirmwareStoreTests {
    let registry: Registry
    let passphrase: Passphrase

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hallmark-firmware-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        registry = try Registry(path: directory.appendingPathComponent("registry.sqlite").path)
        passphrase = try Passphrase("firmware-store-test-passphrase")
    }

    @Test func releasesAreFoundByIdOrPrefixAndNeverTwice() throws {
        let catalog = FirmwareCatalog(registry: registry, tenant: Registry.defaultTenant)
        #expect(throws: HallmarkError(.firmwareKeyMissing, "", remedy: "")) {
            try catalog.master(product: "default", binary: [1, 2, 3], version: .init(major: 1), securityCounter: 1, passphrase: passphrase)
        }
        _ = try catalog.createKeys(product: "default", passphrase: passphrase)
        #expect(throws: HallmarkError(.firmwareKeyExists, "", remedy: "")) { try catalog.createKeys(product: "default", passphrase: passphrase) }
        let release = try catalog.master(product: "default", binary: Array(repeating: 7, count: 1000), version: .init(major: 1), securityCounter: 1, passphrase: passphrase)
        #expect(try registry.firmwareRelease(tenant: "default", id: release.id).id == release.id)
        #expect(try registry.firmwareRelease(tenant: "default", id: String(release.id.prefix(8)).uppercased()).id == release.id)
        for bad in [String(release.id.prefix(7)), "zz" + release.id.prefix(10), "%", String(release.id.prefix(8)) + "%"] {
            #expect(throws: HallmarkError(.notFound, "", remedy: "")) { try registry.firmwareRelease(tenant: "default", id: bad) }
        }
        #expect(throws: HallmarkError(.notFound, "", remedy: "")) { try registry.firmwareRelease(tenant: "acme", id: release.id) }
        #expect(throws: HallmarkError(.firmwareReleaseExists, "", remedy: "")) {
            try catalog.master(product: "default", binary: [9, 9], version: .init(major: 1), securityCounter: 2, passphrase: passphrase)
        }
        #expect(throws: HallmarkError(.passphraseWrong, "", remedy: "")) {
            try catalog.master(product: "default", binary: [9, 9], version: .init(major: 2), securityCounter: 2, passphrase: try Passphrase("another passphrase here"))
        }
        let refusals = try registry.events(code: HallmarkError.Code.firmwareReleaseExists.rawValue, limit: 5)
        #expect(refusals.count == 1 && refusals[0].decision == .refuse)
    }
}
