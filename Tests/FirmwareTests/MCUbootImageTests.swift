import Crypto
import Firmware
import HallmarkCore
import Testing

@Suite struct MCUbootImageTests {
    let signing = P256.Signing.PrivateKey()
    let mastering = P256.KeyAgreement.PrivateKey()
    let binary = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    func mastered(version: String = "1.2.3+4", counter: UInt32 = 7) throws -> MCUbootImage {
        try FirmwareMastering(signingKey: signing, masteringKey: mastering.publicKey)
            .master(binary, version: ImageVersion(parsing: version)!, securityCounter: counter,
                    vendorID: ProductClass(tenant: "acme", product: "sensor").vendorID,
                    classID: ProductClass(tenant: "acme", product: "sensor").classID)
    }

    @Test func versionsParseAsImgtoolsDo() {
        #expect(ImageVersion(parsing: "1.2.3+4") == ImageVersion(major: 1, minor: 2, revision: 3, build: 4))
        #expect(ImageVersion(parsing: "2") == ImageVersion(major: 2))
        #expect(ImageVersion(parsing: "1.2.3")!.automaticSecurityCounter == 0x0102_0003)
        for bad in ["", "1.", "a.b", "1.2.3.4", "1.2+3", "256.0.0", "1.2.3+", "-1"] { #expect(ImageVersion(parsing: bad) == nil, "\(bad)") }
        #expect(ImageVersion(parsing: "1.2.3+9")! < ImageVersion(parsing: "1.2.4")!)
        #expect(!(ImageVersion(parsing: "1.2.3+9")! < ImageVersion(parsing: "1.2.3+1")!))
    }

    @Test func aMasteredImageHasMCUbootsLayout() throws {
        let image = try mastered()
        #expect(image.header.headerSize == 0x200)
        #expect(image.header.flags.contains(.encryptedAES128))
        #expect(image.header.imageSize == 5008)  // padded to a multiple of 16
        #expect(image.header.version.description == "1.2.3+4")
        #expect(image.securityCounter == 7)
        #expect(image.classID == ProductClass(tenant: "acme", product: "sensor").classID)
        #expect(image.unprotected(.encEC256)?.value.count == 113)
        #expect(image.unprotected(.keyHash)?.value == MCUbootImage.keyHash(signing.publicKey))
        // Encrypted as it stands, so the hash over its bytes does not match.
        #expect(throws: HallmarkError(.firmwareSignatureInvalid, "", remedy: "")) { try image.verify(signers: [signing.publicKey]) }
    }

    @Test func devicesCopiesDifferOnlyInTheirKeyAndDecryptToOneDigest() throws {
        let image = try mastered()
        let copier = try DeviceCopier(image: image, masteringKey: mastering)
        let deviceA = P256.KeyAgreement.PrivateKey(), deviceB = P256.KeyAgreement.PrivateKey()
        let copyA = try MCUbootImage(copier.copy(for: deviceA.publicKey)), copyB = try MCUbootImage(copier.copy(for: deviceB.publicKey))
        let differing = zip(copyA.bytes, copyB.bytes).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(!differing.isEmpty && differing.allSatisfy { copier.keyRange.contains($0) })
        let (verifiedA, plainA) = try copyA.decrypt(with: deviceA, signers: [signing.publicKey])
        let (verifiedB, _) = try copyB.decrypt(with: deviceB, signers: [signing.publicKey])
        #expect(verifiedA.digest == verifiedB.digest)
        #expect(verifiedA.digest == image.digest)
        #expect(Array(plainA[0x200..<0x200 + binary.count]) == binary)
        #expect(try MCUbootImage(plainA).verify(signers: [signing.publicKey]).version == ImageVersion(parsing: "1.2.3+4"))
        // Another device's copy does not open with this device's key.
        #expect(throws: HallmarkError(.firmwareNotForDevice, "", remedy: "")) { try copyB.decrypt(with: deviceA, signers: [signing.publicKey]) }
    }

    @Test func alteredImagesAreRefused() throws {
        let image = try mastered()
        let device = P256.KeyAgreement.PrivateKey()
        let copy = try DeviceCopier(image: image, masteringKey: mastering).copy(for: device.publicKey)
        var payload = copy
        payload[0x200 + 100] ^= 0x01
        #expect(throws: HallmarkError(.firmwareSignatureInvalid, "", remedy: "")) {
            try MCUbootImage(payload).decrypt(with: device, signers: [signing.publicKey])
        }
        var key = copy
        key[try MCUbootImage(copy).unprotected(.encEC256)!.offset + 100] ^= 0x01
        #expect(throws: HallmarkError(.firmwareNotForDevice, "", remedy: "")) {
            try MCUbootImage(key).decrypt(with: device, signers: [signing.publicKey])
        }
        var counter = copy
        counter[Int(image.header.headerSize) + Int(image.header.imageSize) + 8] ^= 0x01  // inside SEC_CNT
        #expect(throws: HallmarkError(.firmwareSignatureInvalid, "", remedy: "")) {
            try MCUbootImage(counter).decrypt(with: device, signers: [signing.publicKey])
        }
        #expect(throws: HallmarkError(.firmwareSignerUnknown, "", remedy: "")) {
            try MCUbootImage(copy).decrypt(with: device, signers: [P256.Signing.PrivateKey().publicKey])
        }
    }

    @Test func truncatedAndMalformedBytesAreInvalidNotATrap() throws {
        let bytes = try mastered().bytes
        for length in [0, 10, 32, 0x200, 0x200 + 5008, 0x200 + 5008 + 6, bytes.count - 1] {
            #expect(throws: HallmarkError(.firmwareImageInvalid, "", remedy: "")) { try MCUbootImage(Array(bytes.prefix(length))) }
        }
        var inflated = bytes
        inflated[12] = 0xff; inflated[13] = 0xff; inflated[14] = 0xff  // image size past the end
        #expect(throws: HallmarkError(.firmwareImageInvalid, "", remedy: "")) { try MCUbootImage(inflated) }
        var protectedSize = bytes
        protectedSize[10] = 0x30  // disagrees with the protected area's total
        #expect(throws: HallmarkError(.firmwareImageInvalid, "", remedy: "")) { try MCUbootImage(protectedSize) }
        // Trailing bytes (a slot's padding) are ignored.
        #expect(try MCUbootImage(bytes + [UInt8](repeating: 0xff, count: 64)).bytes == bytes)
    }

    @Test func classIDsAreImgtoolsUUID5s() {
        // python3 -c "import uuid; v=uuid.uuid5(uuid.NAMESPACE_DNS,'acme'); print(v, uuid.uuid5(v,'sensor'))"
        let product = ProductClass(tenant: "acme", product: "sensor")
        #expect(product.vendorIDText == "38394337-9aff-503a-b737-e711338283d4")
        #expect(product.classIDText == "511f7219-f494-5edd-8fb7-07668d45edca")
    }
}
