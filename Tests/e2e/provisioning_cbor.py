"""Fleet provisioning's CBOR payloads ($aws/certificates/create-from-csr/cbor and
$aws/provisioning-templates/T/provision/cbor), with paho-mqtt over the claim's mutual TLS and cbor2
(the encoder imgtool itself uses) as a device speaking CBOR would. Prints what it got, as JSON.

usage: provisioning_cbor.py HOST PORT CA CLAIM_CERT CLAIM_KEY TEMPLATE CSR_PEM UDID_PARAMETER UDID
"""
import json
import queue
import ssl
import sys

import cbor2
import paho.mqtt.client as mqtt

host, port, ca, cert, key, template, csr_path, parameter, udid = sys.argv[1:10]
answers = queue.Queue()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cbor-device", protocol=mqtt.MQTTv311)
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
client.tls_set_context(context)
client.on_message = lambda c, u, m: answers.put((m.topic, m.payload))
client.connect(host, int(port))
client.loop_start()
out = {}


def ask(topic, request):
    client.subscribe(topic + "/+", qos=1)
    client.publish(topic, cbor2.dumps(request), qos=1).wait_for_publish(5)
    reply_topic, payload = answers.get(timeout=10)
    return reply_topic.rsplit("/", 1)[1], cbor2.loads(payload)


status, created = ask("$aws/certificates/create-from-csr/cbor", {"certificateSigningRequest": open(csr_path).read()})
out["create"] = status
if status == "accepted":
    out["certificate_id"] = created["certificateId"]
    status, registered = ask("$aws/provisioning-templates/%s/provision/cbor" % template,
                             {"certificateOwnershipToken": created["certificateOwnershipToken"], "parameters": {parameter: udid}})
    out["register"] = status
    out["thing_name"] = registered.get("thingName")
    out["device_configuration"] = registered.get("deviceConfiguration")
status, rejected = ask("$aws/provisioning-templates/%s/provision/cbor" % template, {"certificateOwnershipToken": "forged"})
out["forged"] = rejected.get("errorCode")
client.loop_stop()
print(json.dumps(out))
