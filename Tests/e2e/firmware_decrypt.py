"""Decrypts a device's copy of an MCUboot image with the device's firmware key, as MCUboot's
boot_decrypt_key() and bootutil_img_hash() do (ENC_EC256: ECIES-P256, HKDF-SHA256, AES-CTR,
HMAC-SHA256), written from the format's description with Python's `cryptography`, so that
`imgtool verify` can check the plaintext image. Exits 3 when the key's HMAC tag does not verify.

usage: firmware_decrypt.py IMAGE DEVICE_KEY.pem OUT
"""
import struct
import sys

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

image_path, key_path, out_path = sys.argv[1:4]
data = bytearray(open(image_path, "rb").read())
key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)

magic, _, hdr_size, prot_size, img_size, flags = struct.unpack_from("<IIHHII", data, 0)
assert magic == 0x96F3B83D, "not an MCUboot image"
key_len = 32 if flags & 0x8 else 16
off = hdr_size + img_size + prot_size
tlv_magic, tlv_tot = struct.unpack_from("<HH", data, off)
assert tlv_magic == 0x6907, "no unprotected TLV area"
end, off = off + tlv_tot, off + 4
enc = None
while off < end:
    kind, length = struct.unpack_from("<HH", data, off)
    if kind == 0x32:
        enc = bytes(data[off + 4 : off + 4 + length])
    off += 4 + length
assert enc is not None and len(enc) == 65 + 32 + key_len, "no ENC_EC256 TLV"

ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc[:65])
shared = key.exchange(ec.ECDH(), ephemeral)
okm = HKDF(algorithm=hashes.SHA256(), length=key_len + 32, salt=None, info=b"MCUBoot_ECIES_v1").derive(shared)
mac = hmac.HMAC(okm[key_len:], hashes.SHA256())
mac.update(enc[97:])
try:
    mac.verify(enc[65:97])
except Exception:
    print("ENC_EC256 tag does not verify with this key", file=sys.stderr)
    sys.exit(3)
unwrap = Cipher(algorithms.AES(okm[:key_len]), modes.CTR(bytes(16))).decryptor()
content_key = unwrap.update(enc[97:]) + unwrap.finalize()
body = Cipher(algorithms.AES(content_key), modes.CTR(bytes(16))).decryptor()
data[hdr_size : hdr_size + img_size] = body.update(bytes(data[hdr_size : hdr_size + img_size])) + body.finalize()
open(out_path, "wb").write(data)
