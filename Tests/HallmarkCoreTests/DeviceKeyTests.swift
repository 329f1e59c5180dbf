import Crypto
import HallmarkCore
import Testing
import X509

@Suite struct DeviceKeyTests {
    static let keys: [Certificate.PublicKey] = [
        Certificate.PrivateKey(P256.Signing.PrivateKey()).publicKey,
        Certificate.PrivateKey(P384.Signing.PrivateKey()).publicKey,
    ]

    /// The registry's copy of a key is the same key, whether or not its point has been parsed yet.
    @Test(arguments: keys) func aStoredKeyIsTheKeyThatWasStored(_ original: Certificate.PublicKey) throws {
        let key = try DeviceKey(original)
        let stored = try DeviceKey(storedSPKI: key.spkiDER)
        #expect(stored == key)
        #expect(stored.algorithm == key.algorithm)
        #expect(stored.fingerprint == key.fingerprint)
        #expect(try stored.publicKey == original)
    }

    /// Damaged stored bytes are an error, when read or when the key is first needed; never a crash.
    @Test func aDamagedStoredKeyIsAnErrorNotACrash() throws {
        let key = try DeviceKey(Certificate.PrivateKey(P256.Signing.PrivateKey()).publicKey)
        var offCurve = key.spkiDER
        offCurve[offCurve.count - 1] ^= 0x01  // the point's y coordinate, no longer on the curve
        let damaged = try DeviceKey(storedSPKI: offCurve)
        #expect(damaged != key)
        #expect(throws: HallmarkError.self) { try damaged.publicKey }
        #expect(throws: HallmarkError.self) { try DeviceKey(storedSPKI: Array(key.spkiDER.dropLast())) }
        #expect(throws: HallmarkError.self) { try DeviceKey(storedSPKI: [0x30, 0x00]) }
    }
}
