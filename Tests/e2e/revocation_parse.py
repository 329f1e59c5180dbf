"""Parses Hallmark's CRL and OCSP answers with Python `cryptography`, an implementation
independent of the one that wrote them, and checks what a relying party would.

usage: revocation_parse.py CRL ISSUER.pem REVOKED_SERIAL_HEX GOOD.resp REVOKED.resp GOOD.pem REVOKED.pem
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

failures = []


def expect(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


crl_path, issuer_path, revoked_serial, good_path, revoked_path, good_cert_path, revoked_cert_path = sys.argv[1:8]
issuer = x509.load_pem_x509_certificate(open(issuer_path, "rb").read())
crl = x509.load_der_x509_crl(open(crl_path, "rb").read())
expect(crl.is_signature_valid(issuer.public_key()), "the CRL's signature verifies with the issuing CA's key")
expect(crl.issuer == issuer.subject, "the CRL's issuer is the issuing CA")
expect(crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc, "nextUpdate follows thisUpdate")
number = crl.extensions.get_extension_for_oid(ExtensionOID.CRL_NUMBER)
expect(not number.critical and number.value.crl_number > 0, f"CRL number {number.value.crl_number}, not critical")
idp = crl.extensions.get_extension_for_oid(ExtensionOID.ISSUING_DISTRIBUTION_POINT)
expect(idp.critical and idp.value.only_contains_user_certs, "a critical IDP, only user certificates")
aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
expect(aki.key_identifier == ski.digest, "AKI names the issuing CA's key")
entry = crl.get_revoked_certificate_by_serial_number(int(revoked_serial, 16))
expect(entry is not None, "the revoked serial is listed")
if entry is not None:
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    expect(reason == x509.ReasonFlags.key_compromise, f"its reason is keyCompromise ({reason})")

for path, cert_path, status in [(good_path, good_cert_path, ocsp.OCSPCertStatus.GOOD),
                                (revoked_path, revoked_cert_path, ocsp.OCSPCertStatus.REVOKED)]:
    response = ocsp.load_der_ocsp_response(open(path, "rb").read())
    certificate = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    expect(response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, f"{path}: successful")
    expect(response.certificate_status == status, f"{path}: {status.name}")
    expect(response.serial_number == certificate.serial_number, f"{path}: about the certificate asked about")
    expect(response.next_update_utc is not None, f"{path}: nextUpdate set")
    expect(any(e.oid == x509.OCSPNonce.oid for e in response.extensions), f"{path}: the nonce echoed")
    signers = response.certificates
    expect(len(signers) == 1, f"{path}: a delegated responder certificate sent with it")
    if signers:
        signer = signers[0]
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        expect(ExtendedKeyUsageOID.OCSP_SIGNING in usage, f"{path}: the responder is id-kp-OCSPSigning")
        expect(any(e.oid == x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5") for e in signer.extensions), f"{path}: ocsp-nocheck")
        issuer.public_key().verify(signer.signature, signer.tbs_certificate_bytes, ec.ECDSA(signer.signature_hash_algorithm))
        signer.public_key().verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
        expect(True, f"{path}: the issuing CA signed the responder, the responder signed the answer")
    if status == ocsp.OCSPCertStatus.REVOKED:
        expect(response.revocation_reason == x509.ReasonFlags.key_compromise, f"{path}: keyCompromise")

sys.exit(1 if failures else 0)
