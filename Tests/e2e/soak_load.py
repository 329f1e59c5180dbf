#!/usr/bin/env python3
"""The soak test's clients: devices that enrol, renew, connect and publish at a steady rate, a
factory station registering against a batch quota, a flooding publisher, and hostile clients
(silent, half-handshake and slowloris connections, from many loopback addresses). Every client
retries through the server's restarts; what it was answered is appended to files in DIR:

  issued.txt       "udid serial enrol|renew" for every certificate answered
  registered.txt   "udid status" for every station registration answered
  refusals.txt     "what code" for every refusal answered (a 4xx/5xx with a JSON code)
  published.txt    per device: messages acknowledged (QoS 1)

  soak_load.py make N DIR                 N devices' keys and CSRs in DIR, their allowlist on stdout
  soak_load.py run DIR HTTPS MQTT ROOT SECONDS [STATION_CREDENTIAL]
                                          the steady load for SECONDS; prints a JSON summary
  soak_load.py garbage HTTPS MQTT SECONDS ADDRESSES
                                          hostile connections from ADDRESSES loopback addresses
"""
import base64
import http.client
import json
import os
import random
import socket
import ssl
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


def make(count, directory):
    os.makedirs(os.path.join(directory, "keys"), exist_ok=True)
    devices = []
    print("udid,public_key")
    for index in range(count):
        udid = f"SOAK-{index:05d}"
        key = ec.generate_private_key(ec.SECP256R1())
        with open(os.path.join(directory, "keys", udid + ".key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, udid)])).sign(key, hashes.SHA256()))
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        devices.append({"udid": udid, "csr": base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()})
        print(f"{udid},{base64.b64encode(spki).decode()}")
    with open(os.path.join(directory, "devices.json"), "w") as f:
        json.dump(devices, f)


class Files:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.handles = {}

    def append(self, name, line):
        with self.lock:
            if name not in self.handles:
                self.handles[name] = open(os.path.join(self.directory, name), "a")
            self.handles[name].write(line + "\n")
            self.handles[name].flush()


def https(port, root, cert=None, key=None):
    context = ssl.create_default_context(cafile=root)
    if cert:
        context.load_cert_chain(cert, key)
    return http.client.HTTPSConnection("localhost", port, context=context, timeout=20)


def est(connection, path, csr):
    connection.request("POST", "/.well-known/est/" + path, body=csr,
                       headers={"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"})
    response = connection.getresponse()
    return response.status, response.read()


def code_of(body):
    try:
        return json.loads(body).get("code") or json.loads(body).get("error", {}).get("code") or "?"
    except Exception:
        return "not-json"


def run(directory, https_port, mqtt_port, root, seconds, station=None):
    import paho.mqtt.client as mqtt

    with open(os.path.join(directory, "devices.json")) as f:
        devices = json.load(f)
    files = Files(directory)
    deadline = time.monotonic() + seconds
    stats = {"enrolled": 0, "renewed": 0, "registered": 0, "refused": 0, "retries": 0, "published": 0, "flooded": 0}
    lock = threading.Lock()
    enrolled = []  # udids with a certificate file
    todo = list(devices)

    def count(name, by=1):
        with lock:
            stats[name] += by

    def certificate_file(udid):
        return os.path.join(directory, "certs", udid + ".pem")

    def store(udid, body):
        certificate = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))[0]
        os.makedirs(os.path.join(directory, "certs"), exist_ok=True)
        with open(certificate_file(udid) + ".tmp", "wb") as f:
            f.write(certificate.public_bytes(serialization.Encoding.PEM))
        os.replace(certificate_file(udid) + ".tmp", certificate_file(udid))
        return format(certificate.serial_number, "x")

    def enrol_lane():
        connection = None
        while time.monotonic() < deadline:
            with lock:
                device = todo.pop() if todo else None
            if device is None:
                break
            while time.monotonic() < deadline:
                try:
                    connection = connection or https(https_port, root)
                    status, body = est(connection, "simpleenroll", device["csr"])
                except Exception:
                    connection = None
                    count("retries")
                    time.sleep(0.2)
                    continue
                if status == 200:
                    files.append("issued.txt", f"{device['udid']} {store(device['udid'], body)} enrol")
                    count("enrolled")
                    with lock:
                        enrolled.append(device["udid"])
                else:
                    files.append("refusals.txt", f"enrol {code_of(body)} {status}")
                    count("refused")
                    if status >= 500:  # the server could not commit (a full disk): try again later
                        time.sleep(0.5)
                        continue
                break
            time.sleep(0.1)  # a steady rate: about 10 a second a lane

    def renew_lane():
        by_udid = {device["udid"]: device for device in devices}
        while time.monotonic() < deadline:
            time.sleep(1.0)
            with lock:
                candidates = list(enrolled)
            if not candidates:
                continue
            udid = random.choice(candidates)
            try:
                connection = https(https_port, root, certificate_file(udid), os.path.join(directory, "keys", udid + ".key"))
                status, body = est(connection, "simplereenroll", by_udid[udid]["csr"])
                connection.close()
            except Exception:
                count("retries")
                continue
            if status == 200:
                files.append("issued.txt", f"{udid} {store(udid, body)} renew")
                count("renewed")
            else:
                files.append("refusals.txt", f"renew {code_of(body)} {status}")
                count("refused")

    def station_lane():
        index = 0
        while station and time.monotonic() < deadline:
            udid = f"FAB-{index:05d}"
            key = ec.generate_private_key(ec.SECP256R1())
            spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            body = json.dumps({"udid": udid, "publicKey": base64.b64encode(spki).decode()})
            while time.monotonic() < deadline:
                try:
                    connection = https(https_port, root)
                    connection.request("POST", "/api/v1/station/devices", body=body,
                                       headers={"Authorization": "Bearer " + station, "Content-Type": "application/json"})
                    response = connection.getresponse()
                    answer = response.read()
                    connection.close()
                except Exception:
                    count("retries")
                    time.sleep(0.3)
                    continue
                files.append("registered.txt", f"{udid} {response.status} {code_of(answer) if response.status != 201 else 'ok'}")
                count("registered" if response.status == 201 else "refused")
                break
            index += 1
            time.sleep(0.5)

    def mqtt_lane(udid, flood=False):
        acknowledged = [0]

        def on_publish(client, userdata, mid, reason_code=None, properties=None):
            if not flood:  # QoS 1: called on PUBACK (the flood's QoS 0 sends are counted as "flooded")
                acknowledged[0] += 1

        while time.monotonic() < deadline:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=udid, protocol=mqtt.MQTTv5)
            client.tls_set(ca_certs=root, certfile=certificate_file(udid), keyfile=os.path.join(directory, "keys", udid + ".key"))
            client.max_queued_messages_set(1000)
            client.on_publish = on_publish
            try:
                client.connect("localhost", mqtt_port, keepalive=30)
            except Exception:
                count("retries")
                time.sleep(1.0)
                continue
            client.loop_start()
            waited = time.monotonic() + 5
            while not client.is_connected() and time.monotonic() < waited:
                time.sleep(0.05)
            try:
                while time.monotonic() < deadline and client.is_connected():
                    if flood:
                        if client.publish(f"things/{udid}/flood", b"x" * 64, qos=0).rc == 0:
                            count("flooded")
                        else:
                            time.sleep(0.005)  # the client's own queue is full: the broker is holding it back
                    else:
                        client.publish(f"things/{udid}/telemetry", json.dumps({"t": time.time()}), qos=1)
                        time.sleep(1.0)
            finally:
                client.loop_stop()
                try:
                    client.disconnect()
                except Exception:
                    pass
            count("retries")
            time.sleep(0.5)
        files.append("published.txt", f"{udid} {acknowledged[0]}")
        count("published", acknowledged[0])

    threads = [threading.Thread(target=enrol_lane) for _ in range(2)]
    threads += [threading.Thread(target=renew_lane), threading.Thread(target=station_lane)]
    for thread in threads:
        thread.start()
    # Publishers: the first 20 devices to get a certificate, one of them flooding.
    started = set()
    publishers = []
    while time.monotonic() < deadline and len(started) < 20:
        with lock:
            ready = [udid for udid in enrolled if udid not in started]
        for udid in ready[: 20 - len(started)]:
            started.add(udid)
            thread = threading.Thread(target=mqtt_lane, args=(udid, len(started) == 1))
            thread.start()
            publishers.append(thread)
        time.sleep(0.5)
    for thread in threads + publishers:
        thread.join()
    print(json.dumps(stats))


def garbage(https_port, mqtt_port, seconds, addresses):
    """Bursts of hostile connections until SECONDS pass, from 127.0.0.2 … 127.0.0.(ADDRESSES+1)."""
    deadline = time.monotonic() + seconds
    opened = 0
    refused = 0
    held = []
    while time.monotonic() < deadline:
        for n in range(addresses):
            source = f"127.0.0.{n + 2}"
            for port in (https_port, mqtt_port):
                for kind in ("silent", "half-tls", "slowloris") * 12:
                    try:
                        sock = socket.socket()
                        sock.settimeout(2)
                        sock.bind((source, 0))
                        sock.connect(("127.0.0.1", port))
                        if kind == "half-tls":
                            sock.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC]))
                        elif kind == "slowloris":
                            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                        held.append(sock)
                        opened += 1
                    except OSError:
                        refused += 1
        # A byte now and then on the slowloris ones; the server's deadlines end them all.
        for sock in held:
            try:
                sock.send(b"X")
            except OSError:
                pass
        time.sleep(1.0)
        if len(held) > 8000:
            for sock in held[:4000]:
                sock.close()
            held = held[4000:]
    for sock in held:
        sock.close()
    print(json.dumps({"opened": opened, "refused": refused}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "make":
        make(int(sys.argv[2]), sys.argv[3])
    elif command == "run":
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), sys.argv[7] if len(sys.argv) > 7 else None)
    elif command == "garbage":
        garbage(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
