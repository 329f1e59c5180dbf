import Crypto
import X509
import Foundation

/// Verification of a device attestation chain (an IDevID) up to a vendor's registered roots.
public enum AttestationChain {
    /// Verifies a chain, leaf first, to one of the vendor's roots: signatures, validity and CA
    /// constraints as RFC 5280 has them. A root with the same name but another key does not verify.
    public static func verify(_ chain: [Certificate], trust: ManufacturerTrust, now: Date) async throws(HallmarkError) {
        guard let leaf = chain.first else {
            throw HallmarkError(.attestationChainInvalid, "The attestation chain is empty.", remedy: "Present the device's attestation certificate.")
        }
        guard !trust.attestationRoots.isEmpty else {
            throw HallmarkError(
                .attestationChainInvalid, "Vendor \(trust.vendor) has no attestation root registered, so the chain cannot be checked.",
                remedy: "Register the vendor's root: `hallmark vendor register \(trust.vendor) --attestation-root ROOT.pem`.")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(trust.attestationRoots)) {
            RFC5280Policy(validationTime: now)
        }
        let result = await verifier.validate(
            leaf: leaf, intermediates: CertificateStore(Array(chain.dropFirst()) + trust.attestationIntermediates))
        guard case .validCertificate = result else {
            throw HallmarkError(
                .attestationChainInvalid,
                "The attestation certificate \(leaf.subject) does not chain to a root registered for vendor \(trust.vendor) (or is outside its validity).",
                remedy: "Register the vendor's attestation root, or treat the device as counterfeit.")
        }
    }
}
