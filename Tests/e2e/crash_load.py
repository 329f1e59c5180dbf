"""Devices for the crash-consistency test: keys and CSRs, and EST enrollment over several
keep-alive HTTPS connections (Python's ssl and http.client, the `cryptography` package).

  crash_load.py make N DIR        keys and CSRs of N devices in DIR, their allowlist on stdout
  crash_load.py enrol DIR PORT ROOT
      enrols every device of DIR without a certificate yet, 8 connections at once, until done or
      until the server goes away; appends "udid serial" to DIR/issued.txt for each answer.
      Exits 0 when every device has its certificate, 2 when the server went away first, 1 when an
      answer was not a certificate
  crash_load.py retry DIR PORT ROOT
      sends every device's CSR again; prints "udid serial" for each answer
"""
import base64, http.client, json, os, ssl, sys, threading
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


def make(count, directory):
    os.makedirs(directory, exist_ok=True)
    devices = []
    print("udid,public_key")
    for index in range(count):
        udid = f"CRASH-{index:05d}"
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, udid)]))
               .sign(key, hashes.SHA256()))
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        devices.append({"udid": udid, "csr": base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()})
        print(f"{udid},{base64.b64encode(spki).decode()}")
    with open(os.path.join(directory, "devices.json"), "w") as f:
        json.dump(devices, f)


def connect(port, root):
    context = ssl.create_default_context(cafile=root)
    return http.client.HTTPSConnection("localhost", port, context=context, timeout=30)


def enrol_one(connection, device):
    """The certificate's serial (hex), or raises for anything but a 200."""
    connection.request("POST", "/.well-known/est/simpleenroll", body=device["csr"],
                       headers={"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{device['udid']}: HTTP {response.status} {body[:200]!r}")
    certificates = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    return format(certificates[0].serial_number, "x")


def issued(directory):
    path = os.path.join(directory, "issued.txt")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return dict(line.split() for line in f if line.strip())


def enrol(directory, port, root):
    with open(os.path.join(directory, "devices.json")) as f:
        devices = json.load(f)
    done = issued(directory)
    pending = [device for device in devices if device["udid"] not in done]
    lock = threading.Lock()
    out = open(os.path.join(directory, "issued.txt"), "a")
    refusals = []
    lost = []

    def lane():
        connection = connect(port, root)
        while True:
            with lock:
                if not pending:
                    return
                device = pending.pop()
            try:
                serial = enrol_one(connection, device)
            except RuntimeError as error:  # an answer, but not a certificate: a defect
                with lock:
                    refusals.append(str(error))
                return
            except Exception:  # the server went away mid-request: this answer is lost
                with lock:
                    lost.append(device["udid"])
                return
            with lock:
                out.write(f"{device['udid']} {serial}\n")
                out.flush()

    threads = [threading.Thread(target=lane) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.close()
    for refusal in refusals:
        print(refusal, file=sys.stderr)
    sys.exit(1 if refusals else 2 if lost or pending else 0)


def retry(directory, port, root):
    with open(os.path.join(directory, "devices.json")) as f:
        devices = json.load(f)
    connection = connect(port, root)
    for device in devices:
        print(device["udid"], enrol_one(connection, device))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "make":
        make(int(sys.argv[2]), sys.argv[3])
    elif command == "enrol":
        enrol(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif command == "retry":
        retry(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(f"unknown command {command}")
