import Foundation

/// A device as the registry knows it: the allowlist record and where it stands.
public struct DeviceRecord: Sendable, Hashable {
    public var tenant: String
    public var udid: UDID
    /// The root-of-trust public key on record.
    public var key: DeviceKey
    public var status: DeviceStatus
    /// Where the record came from (file name, manifest).
    public var source: String
    public var product: String

    public init(tenant: String, udid: UDID, key: DeviceKey, status: DeviceStatus, source: String, product: String) {
        self.tenant = tenant
        self.udid = udid
        self.key = key
        self.status = status
        self.source = source
        self.product = product
    }
}

/// An issued certificate as the registry knows it.
public struct CertificateRecord: Sendable, Hashable {
    /// Hex serial number.
    public var serial: String
    public var tenant: String
    public var thingName: String
    /// The allowlisted device; nil for a certificate of a registered OEM CA.
    public var udid: UDID?
    /// SHA-256 of the certificate DER, hex.
    public var fingerprint: String
    /// SHA-256 of the certified public key's SPKI DER, hex.
    public var keyFingerprint: String
    public var notBefore: Date
    public var notAfter: Date
    public var status: CertificateStatus
    /// The serial of the certificate that replaced this one, if any.
    public var replacedBy: String?
    /// The certificate DER.
    public var der: [UInt8]
    /// The key identifier (hex) of the Hallmark CA that signed it; nil for a registered CA's.
    public var issuerKeyID: String?

    public init(
        serial: String, tenant: String, thingName: String, udid: UDID?, fingerprint: String, keyFingerprint: String,
        notBefore: Date, notAfter: Date, status: CertificateStatus, replacedBy: String?, der: [UInt8], issuerKeyID: String? = nil
    ) {
        self.issuerKeyID = issuerKeyID
        self.serial = serial
        self.tenant = tenant
        self.thingName = thingName
        self.udid = udid
        self.fingerprint = fingerprint
        self.keyFingerprint = keyFingerprint
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = status
        self.replacedBy = replacedBy
        self.der = der
    }
}
