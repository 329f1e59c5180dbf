import SwiftASN1
import X509

import Foundation

/// Proof that whoever registers an OEM's CA holds its private key: a verification certificate,
/// signed by that CA, whose subject CN is the registration code Hallmark handed out (the flow AWS
/// IoT calls "Use Your Own Certificate").
public enum CARegistration {
    /// Checks the CA certificate and its proof of possession. Returns the CA's id: the SHA-256
    /// fingerprint of its DER encoding, the `caCertificateId` of JITR events.
    public static func verify(
        caCertificate ca: Certificate, verificationCertificate proof: Certificate, registrationCode: String, now: Date
    ) throws(HallmarkError) -> String {
        guard let constraints = try? ca.extensions.basicConstraints, case .isCertificateAuthority = constraints else {
            throw invalid("The certificate \(ca.subject) is not a CA certificate (basicConstraints CA:TRUE is missing).",
                          remedy: "Register the CA that signs the device certificates, not a device certificate.")
        }
        if let usage = try? ca.extensions.keyUsage, !usage.keyCertSign {
            throw invalid("The CA certificate \(ca.subject) may not sign certificates (keyUsage keyCertSign is missing).",
                          remedy: "Register a CA certificate with keyUsage keyCertSign.")
        }
        guard ca.notValidBefore <= now, now <= ca.notValidAfter else {
            throw invalid("The CA certificate \(ca.subject) is outside its validity period.", remedy: "Register a CA certificate that is valid now.")
        }
        if ca.subject == ca.issuer, !ca.publicKey.isValidSignature(ca.signature, for: ca) {
            throw invalid("The self-signed CA certificate \(ca.subject) does not verify with its own key.",
                          remedy: "Check that the file is the CA's certificate, unaltered.")
        }
        guard proof.issuer == ca.subject, ca.publicKey.isValidSignature(proof.signature, for: proof) else {
            throw invalid("The verification certificate is not signed by the CA being registered.",
                          remedy: "Sign the verification certificate's CSR with the CA's private key.")
        }
        guard proof.notValidBefore <= now, now <= proof.notValidAfter else {
            throw invalid("The verification certificate is outside its validity period.", remedy: "Issue a verification certificate valid now.")
        }
        guard proof.subject.commonName == registrationCode else {
            throw invalid("The verification certificate's subject CN is not this tenant's registration code.",
                          remedy: "Put the code from `hallmark ca registration-code` in the verification certificate's CN.")
        }
        return CertificateFingerprint.sha256(ca)
    }

    private static func invalid(_ reason: String, remedy: String) -> HallmarkError {
        HallmarkError(.caRegistrationInvalid, reason, remedy: remedy)
    }
}

extension DistinguishedName {
    /// The first common name attribute, if any.
    public var commonName: String? { attributeValue(.RDNAttributeType.commonName) }

    /// The first organization name attribute, if any.
    public var organizationName: String? { attributeValue(.RDNAttributeType.organizationName) }

    /// The first value of an attribute type, as a string.
    public func attributeValue(_ type: ASN1ObjectIdentifier) -> String? {
        for rdn in self {
            for attribute in rdn where attribute.type == type {
                return String(attribute.value) ?? String(describing: attribute.value)
            }
        }
        return nil
    }
}
