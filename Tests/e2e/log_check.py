"""Checks Hallmark's transparency log as an outside auditor would, with code of its own:
the checkpoint's C2SP signed-note signature (Ed25519, with Python `cryptography`), the tree's
root recomputed from the exported leaves with an independent library (PyPI `pymerkle`, RFC 6962
hashing), and inclusion and consistency proofs checked by the algorithms of RFC 9162 §2.1.3.2
and §2.1.4.2, written here from the RFC alone.

usage: log_check.py server BASE_URL CACERT CREDENTIAL KEYFILE
       log_check.py proof PROOF.json
"""
import base64
import hashlib
import json
import ssl
import sys
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pymerkle import InmemoryTree

failures = []


def expect(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def verify_inclusion(leaf, index, size, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    if first & (first - 1) == 0:  # a power of two: the first tree's root starts the path
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def open_checkpoint(note, key_text):
    """C2SP signed-note: the body, then a blank line and `— name base64(keyid || sig)` lines."""
    name, key_hash, key_b64 = key_text.strip().split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1, "not an Ed25519 note key"
    key_id = sha256(name.encode() + b"\n" + raw)[:4]
    expect(key_id.hex() == key_hash, "the verifier key's ID is SHA-256(name, 0x0A, 0x01, key)[:4]")
    body, signatures = note.split("\n\n", 1)
    body += "\n"
    checked = False
    for line in signatures.strip().split("\n"):
        assert line.startswith("\u2014 "), "a signature line starts with an em dash"
        signer, blob = line[2:].split(" ")
        blob = base64.b64decode(blob)
        if signer == name and blob[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], body.encode())
            checked = True
    expect(checked, "the checkpoint's Ed25519 signature verifies (C2SP signed note)")
    origin, size, root = body.split("\n")[:3]
    return origin, int(size), base64.b64decode(root)


def check_server(base, cacert, credential, key_file):
    context = ssl.create_default_context(cafile=cacert)

    def get(path, auth=False):
        request = urllib.request.Request(base + path)
        if auth:
            request.add_header("Authorization", "Bearer " + credential)
        with urllib.request.urlopen(request, context=context) as response:
            return response.read()

    key_text = open(key_file).read()
    origin, size, root = open_checkpoint(get("/log/v1/checkpoint").decode(), key_text)
    expect(size > 5, f"the checkpoint of {origin} covers {size} events")
    leaves = []
    while len(leaves) < size:
        page = json.loads(get(f"/log/v1/entries?start={len(leaves)}&end={size}", auth=True))
        leaves += [base64.b64decode(e["leaf"]) for e in page["entries"]]
    expect(len(leaves) == size, f"{size} leaves exported")
    events = [json.loads(leaf) for leaf in leaves]
    expect(all(isinstance(e["id"], int) and "action" in e for e in events), "each leaf is the JSON of its event")
    tree = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        tree.append_entry(leaf)
    expect(tree.get_state(size) == root, "pymerkle recomputes the checkpoint's root from the exported leaves")
    for index in sorted({0, 1, size // 2, size - 1}):
        proof = json.loads(get(f"/log/v1/proof?index={index}&size={size}"))
        path = [base64.b64decode(p) for p in proof["audit_path"]]
        expect(verify_inclusion(leaf_hash(leaves[index]), index, size, path, root), f"leaf {index}'s inclusion proof (RFC 9162)")
        wrong = leaf_hash(leaves[index] + b" ")
        expect(not verify_inclusion(wrong, index, size, path, root), f"  ... and an altered leaf {index} fails it")
    for first in sorted({1, 2, size // 3, size - 1}):
        proof = json.loads(get(f"/log/v1/consistency?first={first}&second={size}"))
        path = [base64.b64decode(p) for p in proof["consistency"]]
        first_root = tree.get_state(first)
        expect(verify_consistency(first, size, first_root, root, path), f"consistency of size {first} with {size} (RFC 9162)")
        expect(not verify_consistency(first, size, sha256(b"x"), root, path), f"  ... and a forged root of size {first} fails it")


def check_proof(path):
    proof = json.load(open(path))
    origin, size, root = open_checkpoint(proof["checkpoint"], proof["key"])
    leaf = base64.b64decode(proof["leaf"])
    audit = [base64.b64decode(p) for p in proof["audit_path"]]
    expect(proof["tree_size"] == size, "the proof is against the checkpoint's tree")
    expect(verify_inclusion(leaf_hash(leaf), proof["leaf_index"], size, audit, root),
           f"`hallmark log proof`: event {json.loads(leaf)['id']} ({json.loads(leaf)['code']}) is in the signed tree")


if sys.argv[1] == "server":
    check_server(*sys.argv[2:6])
else:
    check_proof(sys.argv[2])
sys.exit(1 if failures else 0)
