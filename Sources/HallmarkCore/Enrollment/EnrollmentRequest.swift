import Crypto
import SwiftASN1
import X509

/// A CSR that has passed the checks that need no registry: it parses, its self-signature verifies
/// (proof of possession), it names a well-formed UDID, and its key is P-256 or P-384.
public struct EnrollmentRequest: Sendable {
    /// The parsed CSR.
    public let csr: CertificateSigningRequest
    /// The UDID from the subject CN (or, lacking a CN, the serialNumber attribute).
    public let udid: UDID
    /// The key the certificate will certify.
    public let key: DeviceKey
    /// SHA-256 of the CSR's DER, in hex.
    public let fingerprint: String

    static let serialNumberAttribute: ASN1ObjectIdentifier = [2, 5, 4, 5]

    /// Inspects a DER CSR.
    /// - Throws: `csr_malformed`, `csr_signature_invalid`, `udid_missing`, `udid_invalid`, or
    ///   `key_algorithm_not_allowed`.
    public init(der: [UInt8]) throws(HallmarkError) {
        let verified = try VerifiedCSR(der: der)
        self.init(verified, device: try Self.udid(in: verified.csr.subject))
    }

    /// A verified CSR for a device found otherwise (fleet provisioning finds it by the CSR's
    /// root-of-trust key): the subject need not name it.
    public init(_ verified: VerifiedCSR, device udid: UDID) {
        self.csr = verified.csr
        self.key = verified.key
        self.udid = udid
        self.fingerprint = SHA256.hash(data: verified.der).hexString
    }

    /// Finds the UDID in a subject: the CN, else the serialNumber attribute.
    public static func udid(in subject: DistinguishedName) throws(HallmarkError) -> UDID {
        var serialNumber: String?
        for rdn in subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName, let text = String(attribute.value) {
                    return try UDID(validating: text)
                }
                if attribute.type == serialNumberAttribute {
                    serialNumber = String(attribute.value) ?? (try? ASN1PrintableString(asn1Any: ASN1Any(attribute.value))).map(String.init)
                }
            }
        }
        if let serialNumber { return try UDID(validating: serialNumber) }
        throw HallmarkError(
            .udidMissing, "The CSR subject has neither a CN nor a serialNumber holding the device's UDID.",
            remedy: "Put the device's UDID in the CSR subject as CN (e.g. -subj /CN=UDID).")
    }
}

/// A CSR that parses, whose key is P-256 or P-384 and whose self-signature verifies (proof of
/// possession), before the device it is for is known.
public struct VerifiedCSR: Sendable {
    public let csr: CertificateSigningRequest
    public let key: DeviceKey
    let der: [UInt8]

    /// - Throws: `csr_malformed`, `csr_signature_invalid`, `key_algorithm_not_allowed`.
    public init(der: [UInt8]) throws(HallmarkError) {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: der)
        } catch {
            throw HallmarkError(
                .csrMalformed, "The body decodes but is not a PKCS#10 certificate signing request.",
                remedy: "Send a DER CSR (openssl req -new -key KEY -subj /CN=UDID -outform DER), base64-encoded.")
        }
        let key = try DeviceKey(csr.publicKey)
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw HallmarkError(
                .csrSignatureInvalid, "The CSR's signature does not verify with the key it carries.",
                remedy: "Sign the CSR with the device's root-of-trust private key.")
        }
        self.csr = csr
        self.key = key
        self.der = der
    }
}
