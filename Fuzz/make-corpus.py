#!/usr/bin/env python3
"""Makes the fuzz targets' seed corpora from real clients' output: Mosquitto's clients and broker
on the wire, openssl's CSRs, keys and OCSP requests, imgtool's images, AWS's Device Defender
collector, pycose, cbor2. Writes Fuzz/Corpus/<target>/<name>; run again to refresh them.

Needs: openssl, mosquitto, mosquitto_pub/sub, and the Python packages scripts/test.sh installs
(cryptography, cbor2<6, pycose, imgtool, AWSIoTDeviceDefenderAgentSDK, psutil).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "Corpus")
WORK = tempfile.mkdtemp(prefix="hallmark-corpus.")


def seed(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, cwd=WORK, **kw).stdout


def work(name):
    return os.path.join(WORK, name)


def fixed_key(byte):
    """The harnesses' fixed P-256 keys: the scalar is 32 copies of one byte."""
    return ec.derive_private_key(int.from_bytes(bytes([byte]) * 32, "big"), ec.SECP256R1())


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def es256(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def spki_b64(key):
    return base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


# MARK: openssl: keys, CSRs, a CA

for name, args in [("p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                   ("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
                   ("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])]:
    run("openssl", "genpkey", *args, "-out", name + ".key")
csrs = {}
for name, key, subject in [("p256", "p256", "/CN=DEV-1"), ("p384", "p384", "/CN=DEV-2/O=Thermo"),
                           ("serial", "p256", "/serialNumber=DEV-3"), ("badudid", "p256", "/CN=DEV 4!"),
                           ("rsa", "rsa", "/CN=DEV-5")]:
    csrs[name] = run("openssl", "req", "-new", "-key", key + ".key", "-subj", subject, "-outform", "DER")
    csrs[name + ".pem"] = run("openssl", "req", "-new", "-key", key + ".key", "-subj", subject)
run("openssl", "req", "-x509", "-new", "-key", "p256.key", "-subj", "/CN=Fuzz CA", "-days", "30", "-out", "ca.pem",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
run("openssl", "req", "-x509", "-new", "-key", "p384.key", "-subj", "/CN=DEV-2", "-days", "30", "-out", "leaf.pem")
leaf_der = run("openssl", "x509", "-in", "leaf.pem", "-outform", "DER")

# MARK: FuzzEST: the bodies curl sends (base64 DER), PEM, raw DER

for name in ["p256", "p384", "serial", "badudid", "rsa"]:
    seed("FuzzEST", name + ".b64", base64.encodebytes(csrs[name]))
seed("FuzzEST", "p256.pem", csrs["p256.pem"])
seed("FuzzEST", "p256.der", csrs["p256"])

# MARK: FuzzAllowlist: mode byte (even: CSV with that chunk size; odd: JSON), then the file

keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
csv = "udid,public_key\n" + "".join("DEV-%d,%s\n" % (i, spki_b64(k)) for i, k in enumerate(keys))
seed("FuzzAllowlist", "csv", b"\x00" + csv.encode())
seed("FuzzAllowlist", "csv-chunked", b"\x0e" + csv.encode())
pem = keys[0].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
seed("FuzzAllowlist", "csv-pem-firmware", b"\x04" + ('udid,public_key,firmware_key\nDEV-9,"%s",%s\nDEV-9,%s,\n"DEV-8",x\n'
                                                     % (pem, spki_b64(keys[1]), spki_b64(keys[2]))).encode())
seed("FuzzAllowlist", "json-list", b"\x01" + json.dumps(
    [{"udid": "DEV-%d" % i, "public_key": spki_b64(k)} for i, k in enumerate(keys)]).encode())
seed("FuzzAllowlist", "json-devices", b"\x03" + json.dumps(
    {"devices": [{"udid": "DEV-1", "publicKey": spki_b64(keys[0]), "firmwareKey": spki_b64(keys[1])}]}).encode())

# MARK: FuzzManifest: mode 1, one entry's claims (the harness signs); mode 0, a whole signed file


def jwk(key, chain=None):
    numbers = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    out = {"kid": "0", "kty": "EC", "crv": "P-%d" % key.curve.key_size,
           "x": b64url(numbers.x.to_bytes(size, "big")), "y": b64url(numbers.y.to_bytes(size, "big"))}
    if chain:
        out["x5c"] = chain
    return out


def claims(udid, key, chain=None):
    return {"version": 1, "model": "ATECC608B", "partNumber": "ATECC608B-TNGTLS", "manufacturer": {"organizationName": "Microchip"},
            "groupId": "LOT-7", "provisioningTimestamp": "2026-11-30T10:00:00Z", "uniqueId": udid, "publicKeySet": {"keys": [jwk(key, chain)]}}


with open(work("p384.key"), "rb") as f:
    p384 = serialization.load_pem_private_key(f.read(), None)
seed("FuzzManifest", "claims", b"\x01" + json.dumps(claims("0123A5F2E2D1", keys[0])).encode())
seed("FuzzManifest", "claims-x5c", b"\x01" + json.dumps(claims("DEV-2", p384, [base64.b64encode(leaf_der).decode()])).encode())
vendor = fixed_key(0x5A)
protected = b64url(json.dumps({"alg": "ES256", "kid": "fuzz", "typ": "JWT"}).encode())
entries = []
for i, k in enumerate(keys[:2]):
    payload = b64url(json.dumps(claims("SE-%d" % i, k)).encode())
    entries.append({"payload": payload, "protected": protected, "header": {"uniqueId": "SE-%d" % i},
                    "signature": b64url(es256(vendor, (protected + "." + payload).encode()))})
seed("FuzzManifest", "file", b"\x00" + json.dumps(entries).encode())

# MARK: FuzzPolicy: a document, a zero byte, a resource

default_policy = open(os.path.join(HERE, "..", "Sources", "HallmarkStore", "DefaultPolicy.swift")).read()
default_policy = default_policy.split('public static let document = """', 1)[1].split('"""', 1)[0]
seed("FuzzPolicy", "default", default_policy.encode() + b"\x00things/DEV-1/temp")
seed("FuzzPolicy", "deny", json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
    {"Sid": "no-admin", "Effect": "Deny", "Action": ["iot:Publish", "iot:Subscribe"], "Resource": "arn:aws:iot:eu-west-1:123456789012:topic*/admin/?/*"}]}).encode()
     + b"\x00admin/a/b")
seed("FuzzPolicy", "single", json.dumps({"Statement": {"Effect": "Allow", "Action": "iot:Connect",
                                                       "Resource": "client/${iot:ClientId}"}}).encode() + b"\x00DEV-1")

# MARK: FuzzProvisioning: mode 0 JITP, 1 fleet template + parameters, 2/3 requests in JSON/CBOR

seed("FuzzProvisioning", "jitp", b"\x00" + json.dumps({"product": "thermo", "thingName": "thermo-${iot:Certificate.Subject.CommonName}",
                                                     "policy": "default-thing-policy"}).encode())
seed("FuzzProvisioning", "jitp-serial", b"\x00" + json.dumps({"product": "p", "thingName": "${iot:Certificate.SerialNumber}"}).encode())
template = {
    "Parameters": {"SerialNumber": {"Type": "String"}, "Region": {"Type": "String", "Default": "eu"},
                   "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Mappings": {"Endpoints": {"eu": {"Url": "https://eu.thermo.example"}, "us": {"Url": "https://us.thermo.example"}}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing", "OverrideSettings": {"AttributePayload": "MERGE"},
                  "Properties": {"ThingName": {"Fn::Join": ["", ["thermo_", {"Ref": "SerialNumber"}]]},
                                 "AttributePayload": {"region": {"Ref": "Region"}}}},
        "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "thermo-policy"}}},
    "DeviceConfiguration": {"Endpoint": {"Fn::FindInMap": ["Endpoints", {"Ref": "Region"}, "Url"]}, "Interval": "60"}}
seed("FuzzProvisioning", "fleet", b"\x01" + json.dumps(template).encode() + b"\x00" +
     json.dumps({"SerialNumber": "1234", "Region": "us", "AWS::IoT::Certificate::Id": "ab12"}).encode())
create = {"certificateSigningRequest": csrs["p256.pem"].decode()}
register = {"certificateOwnershipToken": "eyJ0b2tlbiI6MX0", "parameters": {"SerialNumber": "1234", "Region": "eu"}}
seed("FuzzProvisioning", "create-json", b"\x02" + json.dumps(create).encode())
seed("FuzzProvisioning", "register-json", b"\x02" + json.dumps(register).encode())
seed("FuzzProvisioning", "create-cbor", b"\x03" + cbor2.dumps(create))
seed("FuzzProvisioning", "register-cbor", b"\x03" + cbor2.dumps(register))

# MARK: FuzzOCSP: openssl ocsp's requests

run("openssl", "ocsp", "-issuer", "ca.pem", "-serial", "0x1000", "-reqout", "r1.der")
run("openssl", "ocsp", "-issuer", "ca.pem", "-serial", "0x1001", "-serial", "0x2a", "-no_nonce", "-reqout", "r2.der")
run("openssl", "ocsp", "-sha256", "-issuer", "ca.pem", "-serial", "0x0102030405060708090a", "-reqout", "r3.der")
for name in ["r1", "r2", "r3"]:
    with open(work(name + ".der"), "rb") as f:
        seed("FuzzOCSP", name, f.read())

# MARK: FuzzMCUboot: imgtool's images, signed with the harness's keys (Fuzz/keys)

os.makedirs(os.path.join(HERE, "keys"), exist_ok=True)
for name, byte in [("signing", 0x11), ("mastering", 0x22), ("device", 0x33)]:
    key = fixed_key(byte)
    with open(os.path.join(HERE, "keys", name + ".pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(work(name + ".pub.pem"), "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
with open(work("app.bin"), "wb") as f:
    f.write(bytes(range(256)) * 2)
signing = os.path.join(HERE, "keys", "signing.pem")
common = ["imgtool", "sign", "-k", signing, "--header-size", "0x200", "--pad-header", "--align", "4", "--slot-size", "0x20000"]
run(*common, "--version", "1.2.3+4", "app.bin", "plain.bin")
run(*common, "--version", "2.0.0", "-s", "7", "-E", work("mastering.pub.pem"), "app.bin", "encrypted.bin")
run(*common, "--version", "2.0.1", "-s", "8", "-E", work("device.pub.pem"), "app.bin", "for-device.bin")
for name in ["plain", "encrypted", "for-device"]:
    with open(work(name + ".bin"), "rb") as f:
        seed("FuzzMCUboot", name, f.read())

# MARK: FuzzDefender: mode 0 JSON, 1 CBOR, 2 COSE_Sign1, 3 security event, 4 security profile

from AWSIoTDeviceDefenderAgentSDK import collector  # noqa: E402

for short in (False, True):
    report = collector.Collector(short_metrics_names=short, use_custom_metrics=True).collect_metrics()
    text = report.to_json_string(pretty_print=False)
    name = "short" if short else "long"
    seed("FuzzDefender", "json-" + name, b"\x00" + text.encode())
    seed("FuzzDefender", "cbor-" + name, b"\x01" + cbor2.dumps(json.loads(text)))

from pycose.headers import KID, Algorithm  # noqa: E402
from pycose.algorithms import Es256  # noqa: E402
from pycose.keys import EC2Key  # noqa: E402
from pycose.messages import Sign1Message  # noqa: E402

signer = EC2Key.from_dict({1: 2, -1: 1, -4: bytes([0x44]) * 32, -2: fixed_key(0x44).public_key().public_numbers().x.to_bytes(32, "big"),
                           -3: fixed_key(0x44).public_key().public_numbers().y.to_bytes(32, "big")})
signed_report = cbor2.dumps({"header": {"report_id": 1764600000, "version": "1.0"},
                             "metrics": {"listening_tcp_ports": {"ports": [{"port": 8883}], "total": 1}},
                             "custom_metrics": {"cpu_usage": [{"number": 12.5}]}})
event = cbor2.dumps({"event_id": 3, "type": "tamper", "time": 1764600000, "detail": "enclosure opened"})
for name, payload in [("report", signed_report), ("event", event)]:
    message = Sign1Message(phdr={Algorithm: Es256}, uhdr={KID: b"DEV-1"}, payload=payload)
    message.key = signer
    seed("FuzzDefender", "cose-" + name, b"\x02" + message.encode())
seed("FuzzDefender", "event", b"\x03" + event)
seed("FuzzDefender", "event-short", b"\x03" + cbor2.dumps({"eid": 4, "ty": "failover-boot", "ts": 1764600001}))
seed("FuzzDefender", "profile", b"\x04" + json.dumps({
    "securityProfileDescription": "sensors stay in their lane",
    "behaviors": [
        {"name": "few-denials", "metric": "aws:num-authorization-failures",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}, "durationSeconds": 300,
                      "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1}},
        {"name": "ports", "metric": "aws:listening-tcp-ports", "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [8883]}}},
        {"name": "peers", "metric": "aws:destination-ip", "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]}}},
        {"name": "p90", "metric": "aws:message-byte-size", "criteria": {"comparisonOperator": "less-than",
                                                                        "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}},
        {"name": "cpu", "metric": "cpu_usage", "criteria": {"comparisonOperator": "less-than-equals", "value": {"number": 50}}}],
    "mitigationActions": [{"quarantineDeviceParams": {}}, {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}]}).encode())

# MARK: FuzzJobs: mode 0 a topic, a zero byte, its payload; mode 1 a rollout file

for name, topic, payload in [
    ("get", "$aws/things/DEV-1/jobs/get", {"clientToken": "t1"}),
    ("start-next", "$aws/things/DEV-1/jobs/start-next", {"statusDetails": {"step": "download"}, "stepTimeoutInMinutes": 10, "clientToken": "t2"}),
    ("describe", "$aws/things/DEV-1/jobs/$next/get", {"includeJobDocument": True, "executionNumber": 1}),
    ("update", "$aws/things/DEV-1/jobs/fw-1/update", {"status": "IN_PROGRESS", "expectedVersion": 2, "statusDetails": {"progress": "50"},
                                                      "stepTimeoutInMinutes": -1, "includeJobExecutionState": True}),
    ("succeed", "$aws/things/DEV-1/jobs/fw-1/update", {"status": "SUCCEEDED", "statusDetails": {"version": "2.0.0"}})]:
    seed("FuzzJobs", name, b"\x00" + topic.encode() + b"\x00" + json.dumps(payload).encode())
seed("FuzzJobs", "rollout", b"\x01" + json.dumps({
    "jobExecutionsRolloutConfig": {"maximumPerMinute": 100, "exponentialRate": {"baseRatePerMinute": 10, "incrementFactor": 2.0,
                                                                                "rateIncreaseCriteria": {"numberOfNotifiedThings": 50}}},
    "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 20, "minNumberOfExecutedThings": 10}]},
    "timeoutConfig": {"inProgressTimeoutInMinutes": 60},
    "waves": [{"name": "canary", "percent": 5, "successThreshold": 100, "errorThreshold": 20},
              {"name": "rest", "percent": 95, "successThreshold": 0, "errorThreshold": 100}]}).encode())

# MARK: FuzzMQTT: Mosquitto's clients and broker on the wire, both directions, both versions


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


broker_port, proxy_port = free_port(), free_port()
with open(work("mosquitto.conf"), "w") as f:
    f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % broker_port)
broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", work("mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
sessions = []


def relay(source, sink, record):
    while True:
        try:
            data = source.recv(65536)
        except OSError:
            data = b""
        if not data:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        record.extend(data)
        sink.sendall(data)


def proxy():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", proxy_port))
    listener.listen()
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", broker_port))
        session = (bytearray(), bytearray())
        sessions.append(session)
        threading.Thread(target=relay, args=(client, upstream, session[0]), daemon=True).start()
        threading.Thread(target=relay, args=(upstream, client, session[1]), daemon=True).start()


threading.Thread(target=proxy, daemon=True).start()
time.sleep(0.2)
P = ["-h", "127.0.0.1", "-p", str(proxy_port)]
scenarios = [
    ("v311-qos0", "4", ["mosquitto_pub", *P, "-V", "mqttv311", "-i", "DEV-1", "-t", "things/DEV-1/temp", "-m", "21.5"]),
    ("v311-qos1-retain-will", "4", ["mosquitto_pub", *P, "-V", "mqttv311", "-i", "DEV-1", "-q", "1", "-r", "-t", "things/DEV-1/state",
                                    "-m", "on", "--will-topic", "things/DEV-1/lwt", "--will-payload", "gone", "--will-qos", "1", "-u", "u", "-P", "p"]),
    ("v311-qos2", "4", ["mosquitto_pub", *P, "-V", "mqttv311", "-i", "DEV-1", "-q", "2", "-t", "things/DEV-1/t", "-m", "x" * 40]),
    ("v5-properties", "5", ["mosquitto_pub", *P, "-V", "mqttv5", "-i", "DEV-2", "-q", "1", "-t", "things/DEV-2/t", "-m", "{\"t\":1}",
                            "-D", "publish", "user-property", "k", "v", "-D", "publish", "content-type", "application/json",
                            "-D", "publish", "message-expiry-interval", "60", "-D", "publish", "response-topic", "things/DEV-2/r",
                            "-D", "connect", "session-expiry-interval", "30", "-D", "connect", "receive-maximum", "10",
                            "--will-topic", "things/DEV-2/lwt", "--will-payload", "bye", "-D", "will", "will-delay-interval", "5"]),
    ("v5-qos2-alias", "5", ["mosquitto_pub", *P, "-V", "mqttv5", "-i", "DEV-2", "-q", "2", "-t", "things/DEV-2/t", "-m", "y",
                            "-D", "publish", "topic-alias", "1"]),
]
for name, version, command in scenarios:
    subprocess.run(command, check=True, timeout=10)
    time.sleep(0.2)
# A subscriber that gets a retained message and a live one, then unsubscribes (mosquitto_sub -U on a second session).
for version, flag in [("4", "mqttv311"), ("5", "mqttv5")]:
    sub = subprocess.Popen(["mosquitto_sub", *P, "-V", flag, "-i", "SUB-" + version, "-q", "2", "-t", "things/DEV-1/#", "-t", "things/+/lwt",
                            "-C", "2", "-W", "5"] + (["-D", "subscribe", "user-property", "a", "b", "-t", "$share/g/things/x"] if version == "5" else []),
                           stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    subprocess.run(["mosquitto_pub", *P, "-V", flag, "-i", "PUB-" + version, "-q", "1", "-t", "things/DEV-1/live", "-m", "z"], check=True, timeout=10)
    sub.wait(timeout=10)
    scenarios.append(("sub-" + flag, version, None))
    subprocess.run(["mosquitto_sub", *P, "-V", flag, "-i", "UNSUB-" + version, "-c", "-t", "things/a", "-U", "things/a", "-E"],
                   check=True, timeout=10)
    scenarios.append(("unsub-" + flag, version, None))
time.sleep(0.5)
broker.terminate()
broker.wait()

# Sessions in order: each scenario's own, plus the publisher of each subscriber scenario.
order = []
for name, version, command in scenarios:
    if command is not None:
        order.append((name, version))
    elif name.startswith("sub-"):
        order += [(name, version), ("pub-" + name[4:], version)]
    else:
        order.append((name, version))
for (name, version), (c2s, s2c) in zip(order, sessions):
    seed("FuzzMQTT", "client-" + name, b"\x00" + bytes(c2s))
    seed("FuzzMQTT", "server-" + name, (b"\x01" if version == "4" else b"\x02") + bytes(s2c))

shutil.rmtree(WORK)
for target in sorted(os.listdir(CORPUS)):
    files = os.listdir(os.path.join(CORPUS, target))
    print("%-18s %3d seeds, %6d bytes" % (target, len(files), sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)))
