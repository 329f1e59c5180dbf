"""Fleet provisioning by claim with the AWS IoT Device SDK for Python (awsiotsdk's
IotIdentityClientV2), unchanged, as a device built on it would: connect with the claim,
CreateCertificateFromCsr (or CreateKeysAndCertificate), RegisterThing, then reconnect with the new
certificate and publish. Prints one JSON object of what it saw; the shell checks read it.

usage: provisioning_client.py PROTOCOL(5|311) HOST PORT CA CLAIM_CERT CLAIM_KEY CLIENT_ID MODE ...
  flow TEMPLATE CSR_PEM PARAMS_JSON OUT_CERT DEVICE_KEY   the whole flow, then a publish with the new certificate
  csr CSR_PEM                                             CreateCertificateFromCsr only (prints the token)
  keys                                                    CreateKeysAndCertificate only
  register TEMPLATE TOKEN PARAMS_JSON                     RegisterThing only
  publish TOPIC                                           a publish with the claim itself (must be refused)
"""
import json
import sys
from concurrent.futures import Future

from awscrt import mqtt, mqtt5, mqtt_request_response
from awsiot import iotidentity, mqtt5_client_builder, mqtt_connection_builder, V2ServiceException

protocol, host, port, ca, cert, key, client_id, mode = sys.argv[1:9]
extra = sys.argv[9:]
out = {}


def connect(cert, key, client_id):
    """An MQTT 5 client or an MQTT 3.1.1 connection, connected; and a function that ends it."""
    if protocol == "5":
        connected = Future()
        stopped = Future()
        client = mqtt5_client_builder.mtls_from_path(
            endpoint=host, port=int(port), cert_filepath=cert, pri_key_filepath=key, ca_filepath=ca, client_id=client_id,
            on_lifecycle_connection_success=lambda data: connected.done() or connected.set_result(True),
            on_lifecycle_connection_failure=lambda data: connected.done() or connected.set_exception(Exception(str(data.exception))),
            on_lifecycle_stopped=lambda data: stopped.done() or stopped.set_result(True))
        client.start()
        connected.result(timeout=15)
        def stop():
            client.stop()
            stopped.result(timeout=10)
        return client, stop
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=host, port=int(port), cert_filepath=cert, pri_key_filepath=key, ca_filepath=ca, client_id=client_id,
        clean_session=True, keep_alive_secs=30)
    connection.connect().result(timeout=15)
    return connection, lambda: connection.disconnect().result(timeout=10)


def error_code(call):
    try:
        return None, call().result(timeout=15)
    except V2ServiceException as e:
        error = e.modeled_error
        return (error.error_code if error else "unmodeled"), None
    except Exception as e:
        return "failed: " + type(e).__name__, None


client, stop = connect(cert, key, client_id)
identity = iotidentity.IotIdentityClientV2(client, mqtt_request_response.ClientOptions(
    max_request_response_subscriptions=2, max_streaming_subscriptions=1, operation_timeout_in_seconds=15))


def create_from_csr(path):
    csr = open(path).read()
    code, response = error_code(lambda: identity.create_certificate_from_csr(
        iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request=csr)))
    out["create_error"] = code
    if response:
        out["certificate_id"] = response.certificate_id
        out["token"] = response.certificate_ownership_token
        out["certificate_pem"] = response.certificate_pem
    return response


def register(template, token, params):
    code, response = error_code(lambda: identity.register_thing(iotidentity.RegisterThingRequest(
        template_name=template, certificate_ownership_token=token, parameters=params)))
    out["register_error"] = code
    if response:
        out["thing_name"] = response.thing_name
        out["device_configuration"] = response.device_configuration
    return response


if mode == "flow":
    template, csr_path, params, out_cert, device_key = extra
    created = create_from_csr(csr_path)
    if created and register(template, created.certificate_ownership_token, json.loads(params)):
        stop()
        open(out_cert, "w").write(created.certificate_pem)
        device, stop = connect(out_cert, device_key, out["thing_name"])
        topic = "things/%s/hello" % out["thing_name"]
        if protocol == "5":
            result = device.publish(mqtt5.PublishPacket(topic=topic, payload=b"provisioned", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(timeout=10)
            out["publish"] = result.puback.reason_code.name
        else:
            publish, _ = device.publish(topic=topic, payload=b"provisioned", qos=mqtt.QoS.AT_LEAST_ONCE)
            publish.result(timeout=10)
            out["publish"] = "SUCCESS"
elif mode == "csr":
    create_from_csr(extra[0])
elif mode == "keys":
    code, response = error_code(lambda: identity.create_keys_and_certificate(iotidentity.CreateKeysAndCertificateRequest()))
    out["create_error"] = code
    if response:
        out["certificate_id"] = response.certificate_id
        out["token"] = response.certificate_ownership_token
        out["has_private_key"] = "PRIVATE KEY" in (response.private_key or "")
elif mode == "register":
    template, token, params = extra
    register(template, token, json.loads(params))
elif mode == "publish":
    topic = extra[0]
    try:
        if protocol == "5":
            result = client.publish(mqtt5.PublishPacket(topic=topic, payload=b"x", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(timeout=10)
            out["publish"] = result.puback.reason_code.name
        else:
            publish, _ = client.publish(topic=topic, payload=b"x", qos=mqtt.QoS.AT_LEAST_ONCE)
            publish.result(timeout=5)
            out["publish"] = "SUCCESS"
    except Exception as e:
        out["publish"] = "failed: " + type(e).__name__
try:
    stop()
except Exception:
    pass
print(json.dumps(out))
