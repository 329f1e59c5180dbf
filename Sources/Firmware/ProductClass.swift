import Crypto

/// The UUID_VID / UUID_CID values that tie an image to a tenant and product, made as imgtool
/// makes them from names: `--vid TENANT` is `uuid5(NAMESPACE_DNS, TENANT)` and `--cid PRODUCT`
/// is `uuid5(VID, PRODUCT)`. An OEM signing with `imgtool sign --vid acme --cid sensor` gets
/// the same bytes Hallmark writes for tenant `acme`, product `sensor`.
public struct ProductClass: Sendable, Hashable {
    public let vendorID: [UInt8]
    public let classID: [UInt8]

    public init(tenant: String, product: String) {
        vendorID = Self.uuid5(namespace: Self.dnsNamespace, name: tenant)
        classID = Self.uuid5(namespace: vendorID, name: product)
    }

    /// RFC 4122's DNS namespace, 6ba7b810-9dad-11d1-80b4-00c04fd430c8.
    static let dnsNamespace: [UInt8] = [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]

    static func uuid5(namespace: [UInt8], name: String) -> [UInt8] {
        var bytes = Array(Insecure.SHA1.hash(data: namespace + Array(name.utf8)).prefix(16))
        bytes[6] = bytes[6] & 0x0f | 0x50
        bytes[8] = bytes[8] & 0x3f | 0x80
        return bytes
    }

    /// The class id in UUID text form.
    public var classIDText: String { Self.text(classID) }
    /// The vendor id in UUID text form.
    public var vendorIDText: String { Self.text(vendorID) }

    static func text(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let characters = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }
}
