"""Device Defender against Hallmark with clients Hallmark did not write: paho-mqtt over mutual TLS
publishing what AWS's own collector (AWSIoTDeviceDefenderAgentSDK) produces, the AWS IoT Device SDK
(awsiotsdk's MQTT 5 client) doing the same, and pycose signing and verifying COSE_Sign1 messages.
Prints what happened as JSON: the answer's topic suffix and payload.

usage: defender_client.py HOST PORT CA CERT KEY CLIENT_ID THING MODE [ARGS...]
modes:
  collector json|cbor|short   the collector's report, on $aws/things/THING/defender/metrics/<fmt>
  raw json|cbor FILE          a file's bytes as the report
  twice json                  the collector's report twice: the second is a replay
  pycose [KEY_PEM] [tamper]   a report signed by pycose (with KEY_PEM, default KEY), on the cose topic
  pycose-event TYPE ID        a security event signed by pycose, on $hallmark/things/THING/events/cose
  sdk                         the collector's JSON report over awsiotsdk's MQTT 5 client
  verify FILE CERT            pycose verifies a COSE_Sign1 file with a certificate's key: prints {"valid": bool}
  offend TOPIC N              publishes N times where the policy refuses, then waits (3 s) to be disconnected
"""
import json
import queue
import ssl
import subprocess
import sys
import time

import cbor2

host, port, ca, cert, key, client_id, thing, mode = sys.argv[1:9]
args = sys.argv[9:]


def collector_report(short=False):
    from AWSIoTDeviceDefenderAgentSDK import collector
    return collector.Collector(short_metrics_names=short, use_custom_metrics=True).collect_metrics()


def public_key_pem(certificate):
    return subprocess.run(["openssl", "x509", "-in", certificate, "-noout", "-pubkey"], check=True, capture_output=True).stdout


def sign(payload, key_pem, tamper=False):
    from pycose.algorithms import Es256
    from pycose.headers import KID, Algorithm
    from pycose.keys import CoseKey
    from pycose.messages import Sign1Message
    message = Sign1Message(phdr={Algorithm: Es256}, uhdr={KID: b"pycose"}, payload=payload)
    message.key = CoseKey.from_pem_private_key(open(key_pem).read())
    wire = bytearray(message.encode())
    if tamper:
        wire[wire.index(payload[:8]) + 4] ^= 0x01  # a byte of the payload, after signing
    return bytes(wire)


if mode == "verify":
    from pycose.keys import CoseKey
    from pycose.messages import CoseMessage
    message = CoseMessage.decode(open(args[0], "rb").read())
    message.key = CoseKey.from_pem_public_key(public_key_pem(args[1]).decode())
    print(json.dumps({"valid": message.verify_signature(), "payload_keys": sorted(cbor2.loads(message.payload))}))
    sys.exit(0)

if mode == "sdk":
    from concurrent.futures import Future
    from awscrt import mqtt5
    from awsiot import mqtt5_client_builder
    got, connected = Future(), Future()
    topic = "$aws/things/%s/defender/metrics/json" % thing
    client = mqtt5_client_builder.mtls_from_path(
        endpoint=host, port=int(port), cert_filepath=cert, pri_key_filepath=key, ca_filepath=ca, client_id=client_id,
        on_publish_received=lambda data: got.done() or got.set_result((data.publish_packet.topic, data.publish_packet.payload)),
        on_lifecycle_connection_success=lambda data: connected.done() or connected.set_result(True))
    client.start()
    connected.result(timeout=15)
    client.subscribe(mqtt5.SubscribePacket(subscriptions=[mqtt5.Subscription(topic_filter=topic + "/+", qos=mqtt5.QoS.AT_LEAST_ONCE)])).result(10)
    client.publish(mqtt5.PublishPacket(topic=topic, payload=collector_report().to_json_string().encode(), qos=mqtt5.QoS.AT_LEAST_ONCE)).result(10)
    reply_topic, payload = got.result(timeout=10)
    print(json.dumps({"answer": reply_topic.rsplit("/", 1)[1], "payload": json.loads(payload)}))
    client.stop()
    sys.exit(0)

import paho.mqtt.client as mqtt

answers = queue.Queue()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
client.tls_set_context(context)
client.on_message = lambda c, u, m: answers.put((m.topic, m.payload))
acks = queue.Queue()
client.on_publish = lambda c, u, mid, reason, properties: acks.put(str(reason))
client.connect(host, int(port))
client.loop_start()


def send(topic, payload):
    client.subscribe(topic + "/+", qos=1)
    time.sleep(0.2)
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    ack = acks.get(timeout=5)
    try:
        reply_topic, reply = answers.get(timeout=5)
        return {"ack": ack, "answer": reply_topic.rsplit("/", 1)[1], "payload": json.loads(reply)}
    except queue.Empty:
        return {"ack": ack, "answer": None}


out = {}
if mode == "collector":
    report = collector_report(short=args[0] == "short")
    fmt = "cbor" if args[0] == "cbor" else "json"
    data = report.to_cbor() if fmt == "cbor" else report.to_json_string().encode()
    out = send("$aws/things/%s/defender/metrics/%s" % (thing, fmt), data)
    out["sent_report_id"] = report._report_id if hasattr(report, "_report_id") else None
elif mode == "raw":
    out = send("$aws/things/%s/defender/metrics/%s" % (thing, args[0]), open(args[1], "rb").read())
elif mode == "twice":
    data = collector_report().to_json_string().encode()
    first = send("$aws/things/%s/defender/metrics/json" % thing, data)
    time.sleep(1.2)
    out = {"first": first, "second": send("$aws/things/%s/defender/metrics/json" % thing, data)}
elif mode == "pycose":
    key_pem = args[0] if args and args[0] != "tamper" else key
    report = {"header": {"report_id": int(time.time()), "version": "1.0"}, "custom_metrics": {"signed_by": [{"number": 1}]}}
    out = send("$hallmark/things/%s/defender/metrics/cose" % thing, sign(cbor2.dumps(report), key_pem, tamper="tamper" in args))
elif mode == "pycose-event":
    event = {"event_id": int(args[1]), "type": args[0], "time": int(time.time()), "detail": "signed by pycose"}
    out = send("$hallmark/things/%s/events/cose" % thing, sign(cbor2.dumps(event), key))
elif mode == "offend":
    ended = queue.Queue()
    client.on_disconnect = lambda c, u, flags, reason, properties: ended.put((time.time(), str(reason)))
    reasons = []
    for _ in range(int(args[1])):
        info = client.publish(args[0], b"where it may not", qos=1)
        info.wait_for_publish(5)
        reasons.append(acks.get(timeout=5))
    last = time.time()
    try:
        at, reason = ended.get(timeout=3)
        out = {"acks": reasons, "disconnected_after": round(at - last, 3), "reason": reason}
    except queue.Empty:
        out = {"acks": reasons, "disconnected_after": None}
else:
    sys.exit("unknown mode " + mode)
print(json.dumps(out))
client.loop_stop()
