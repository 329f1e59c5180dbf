#!/usr/bin/env bash
# Fleet provisioning by claim against the AWS IoT Device SDK for Python (awsiotsdk's
# IotIdentityClientV2, unchanged, over its MQTT 5 and MQTT 3.1.1 builders): a device holding only
# the claim asks for a certificate for its own root-of-trust key, registers with an AWS template,
# reconnects with its new certificate and publishes. Every rejection path is tried: a bad and an
# expired token, an unknown template, a device not on the allowlist, another tenant's device, a
# claim used past its limit or revoked, a hook that says no or times out, Hallmark-made keys on a
# product that does not allow them, and the claim trying anything but provisioning. Port 443 with
# ALPN x-amzn-mqtt-ca, the SDK's default, is served too.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="provisioning-test-passphrase"
H() { "$HALLMARK" "$@" --data-dir "$DATA"; }
ROOT="$DATA/ca/root.pem"

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
H product create thermo >/dev/null
H tenant create acme --name "Acme" >/dev/null
must "nine thermo devices manufactured" "$HALLMARK" device factory --out devs --count 9 --trust "$ROOT" --allowlist devs.csv
must "an acme device manufactured" "$HALLMARK" device factory --out acme --count 1 --trust "$ROOT" --allowlist acme.csv
must "allowlists imported" in_shell "H allowlist import --product thermo devs.csv && H allowlist import --tenant acme acme.csv"
openssl ecparam -name prime256v1 -genkey -noout -out stranger.key 2>/dev/null
U() { cat "devs/device-0000$1/udid"; }
K() { echo "devs/device-0000$1/rot-key.pem"; }
# A CSR as a device built on the SDK makes one: its own key, whatever subject.
csr() { openssl req -new -key "$1" -subj "/CN=${2:-device}" -out "$3" 2>/dev/null; }
for i in 1 2 3 4 5 6 7 8; do csr "$(K $i)" "sensor-$i" "d$i.csr"; done
csr stranger.key stranger stranger.csr
csr acme/device-00001/rot-key.pem acme a.csr

cat > template.json <<'JSON'
{
  "Parameters": {
    "SerialNumber": {"Type": "String"},
    "Region": {"Type": "String", "Default": "eu"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Mappings": {"Endpoints": {"eu": {"Url": "https://eu.thermo.example"}, "us": {"Url": "https://us.thermo.example"}}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "OverrideSettings": {"AttributePayload": "MERGE"},
              "Properties": {"ThingName": {"Fn::Join": ["", ["thermo_", {"Ref": "SerialNumber"}]]},
                             "AttributePayload": {"region": {"Ref": "Region"}}}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
    "policy": {"Type": "AWS::IoT::Policy",
               "Properties": {"PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"arn:hallmark:iot:::client/${iot:Connection.Thing.ThingName}\"},{\"Effect\":\"Allow\",\"Action\":\"iot:Publish\",\"Resource\":\"arn:hallmark:iot:::topic/things/${iot:Connection.Thing.ThingName}/*\"}]}"}}
  },
  "DeviceConfiguration": {"Endpoint": {"Fn::FindInMap": ["Endpoints", {"Ref": "Region"}, "Url"]}, "Interval": "60"}
}
JSON

echo "# templates"
check "an AWS template is stored" H provisioning-template create thermo-fleet template.json --product thermo
check "its inline policy became a policy" in_shell "H policy list | grep -q provisioning-thermo-fleet"
echo '{"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Sub": "x-${SerialNumber}"}}}}}' > sub.json
check "a template using Fn::Sub is refused at creation (provisioning_template_invalid)" in_shell \
  "! H provisioning-template create bad sub.json 2>err.txt && grep -q provisioning_template_invalid err.txt && grep -q 'Fn::Sub' err.txt"
check "a template without the UDID parameter is refused" in_shell \
  "! H provisioning-template create bad2 template.json --udid-parameter DeviceUDID 2>err.txt && grep -q 'no parameter DeviceUDID' err.txt"
check "a template refused is an event" event "provisioning.template.*refuse.*provisioning_template_invalid"
check "a second template of the same name needs --replace (provisioning_template_exists)" in_shell \
  "! H provisioning-template create thermo-fleet template.json 2>err.txt && grep -q provisioning_template_exists err.txt"

echo "# claims"
must "a claim for thermo-fleet, at most 3 devices" in_shell "H claim create --product thermo --template thermo-fleet --out claim --max-uses 3 > claim.txt"
CLAIM=$(cut -f1 claim.txt)
check "claim.pem chains to Hallmark's root" openssl verify -CAfile "$ROOT" -untrusted claim/claim.pem claim/claim.pem
check "claim.key is readable by its owner only" in_shell "[ \"\$(stat -c %a claim/claim.key)\" = 600 ]"
check "the claim is listed with its limit" in_shell "H claim list | grep -q \"$CLAIM.*active.*used 0 of 3\""
check "a claim for a template of another product is refused (claim_invalid)" in_shell \
  "! H claim create --product default --template thermo-fleet --out c2 2>err.txt && grep -q claim_invalid err.txt"
start_server --mqtt-alpn-port 443
P() { python3 "$HERE/provisioning_client.py" "$1" "${ENDPOINT:-localhost}" "${PORT:-$MQTT}" "$ROOT" "${CLAIM_CERT:-claim/claim.pem}" "${CLAIM_KEY:-claim/claim.key}" "${@:2}"; }
# Moves the open ownership tokens two hours into the past, as if the device had waited that long.
age_tokens() { python3 -c "import sqlite3; c = sqlite3.connect('$DATA/registry.sqlite'); c.execute('UPDATE provisioning_tokens SET expires_at = expires_at - 7200 WHERE used_at IS NULL'); c.commit()"; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval('d' + sys.argv[1]))" "$2"; }

echo "# the AWS IoT Device SDK, unchanged"
check "MQTT 5: a device with only the claim provisions itself and publishes with its new certificate" in_shell \
  "P 5 boot-1 flow thermo-fleet d1.csr '{\"SerialNumber\": \"$(U 1)\", \"Region\": \"us\"}' d1.pem $(K 1) > f1.json && field f1.json \"['publish']\" | grep -qE '^(SUCCESS|NO_MATCHING_SUBSCRIBERS)$'"
check "the thing is named by the template and the device configuration comes from its mapping" in_shell \
  "[ \"\$(field f1.json \"['thing_name']\")\" = thermo_$(U 1) ] && [ \"\$(field f1.json \"['device_configuration']['Endpoint']\")\" = https://us.thermo.example ]"
check "certificateId is the certificate's SHA-256 fingerprint" in_shell \
  "[ \"\$(field f1.json \"['certificate_id']\")\" = \"\$(openssl x509 -in d1.pem -outform DER | sha256sum | cut -d' ' -f1)\" ]"
check "the certificate certifies the device's root-of-trust key and chains to the root" in_shell \
  "[ \"\$(openssl x509 -in d1.pem -pubkey -noout)\" = \"\$(openssl pkey -in $(K 1) -pubout)\" ] && openssl verify -CAfile $ROOT -untrusted claim/claim.pem d1.pem"
check "the thing has the template's inline policy and attribute, and its device is enrolled" in_shell \
  "H thing show thermo_$(U 1) > t1.txt && grep -q 'policies: provisioning-thermo-fleet$' t1.txt && grep -q 'attribute region = us' t1.txt && H registry devices | grep $(U 1) | grep -q enrolled"
check "MQTT 3.1.1 (mqtt_connection_builder): the same flow" in_shell \
  "P 311 boot-2 flow thermo-fleet d2.csr '{\"SerialNumber\": \"$(U 2)\"}' d2.pem $(K 2) > f2.json && [ \"\$(field f2.json \"['publish']\")\" = SUCCESS ] && [ \"\$(field f2.json \"['device_configuration']['Endpoint']\")\" = https://eu.thermo.example ]"
check "the registration is an event, with the claim's count" event "provisioning.register.*registered.*$(U 2).*2 of 3"
check "port 443 with the SDK's ALPN x-amzn-mqtt-ca serves the same API" in_shell \
  "PORT=443 P 5 boot-3 csr d3.csr > c3.json && [ \"\$(field c3.json \"['create_error']\")\" = None ]"
check "an endpoint given as 127.0.0.1 (the SDK sends it as SNI) and the SDK's metrics user name are accepted" in_shell \
  "ENDPOINT=127.0.0.1 P 311 ip-literal csr stranger.csr > ip.json && [ \"\$(field ip.json \"['create_error']\")\" = unknown_device ]"
check "the pending certificate cannot connect before RegisterThing (certificate_pending_activation)" in_shell \
  "field c3.json \"['certificate_pem']\" > d3.pem && ! timeout 10 mosquitto_pub -h localhost -p $MQTT --cafile $ROOT --cert d3.pem --key $(K 3) -i $(U 3) -t things/$(U 3)/x -m 1 2>err.txt; sleep 0.5; event 'mqtt.connect.*refuse.*certificate_pending_activation'"
check "an operator cannot activate it around RegisterThing" in_shell \
  "! H cert activate \$(field c3.json \"['certificate_id']\") 2>err.txt && grep -q RegisterThing err.txt"
check "asking again for the same key gives the same certificate, nothing signed twice" in_shell \
  "P 5 boot-3 csr d3.csr > c3b.json && [ \"\$(field c3b.json \"['certificate_id']\")\" = \"\$(field c3.json \"['certificate_id']\")\" ] && [ \"\$(field c3b.json \"['token']\")\" != \"\$(field c3.json \"['token']\")\" ]"

echo "# rejections, each with a code and an event"
check "a bad ownership token: InvalidCertificateOwnershipToken" in_shell \
  "P 5 r1 register thermo-fleet not-a-token '{\"SerialNumber\": \"$(U 3)\"}' > r1.json && [ \"\$(field r1.json \"['register_error']\")\" = InvalidCertificateOwnershipToken ]"
check "the bad token is an event (ownership_token_invalid)" event "provisioning.register.*refuse.*ownership_token_invalid"
check "an unknown template: refused by the claim's policy (the SDK gets no answer)" in_shell \
  "P 5 r2 register other-template \$(field c3.json \"['token']\") '{}' > r2.json && field r2.json \"['register_error']\" | grep -qv None"
check "the UDID parameter of another device: subject_mismatch" in_shell \
  "P 5 r3 register thermo-fleet \$(field c3.json \"['token']\") '{\"SerialNumber\": \"$(U 4)\"}' > r3.json && [ \"\$(field r3.json \"['register_error']\")\" = subject_mismatch ]"
check "a device not on the allowlist: unknown_device, nothing signed" in_shell \
  "P 5 r4 csr stranger.csr > r4.json && [ \"\$(field r4.json \"['create_error']\")\" = unknown_device ] && event 'provisioning.certificate.*refuse.*unknown_device'"
check "another tenant's genuine device: counterfeit_oem" in_shell \
  "P 5 r5 csr a.csr > r5.json && [ \"\$(field r5.json \"['create_error']\")\" = counterfeit_oem ]"
check "a device already enrolled: device_already_enrolled" in_shell \
  "P 5 r6 csr d1.csr > r6.json && [ \"\$(field r6.json \"['create_error']\")\" = device_already_enrolled ]"
check "a CSR that is not one: csr_malformed" in_shell \
  "echo garbage > junk.csr && P 5 r7 csr junk.csr > r7.json && [ \"\$(field r7.json \"['create_error']\")\" = csr_malformed ]"
check "keys made by Hallmark on a product that does not allow them: server_keys_not_allowed" in_shell \
  "P 5 r8 keys > r8.json && [ \"\$(field r8.json \"['create_error']\")\" = server_keys_not_allowed ]"
check "the claim publishing outside provisioning is refused by its policy" in_shell \
  "P 5 r9 publish things/$(U 5)/x > r9.json && [ \"\$(field r9.json \"['publish']\")\" = NOT_AUTHORIZED ] && event 'mqtt.publish.*refuse.*not_authorized'"
check "a device registers with the token it was given over port 443" in_shell \
  "P 5 boot-3b register thermo-fleet \$(field c3b.json \"['token']\") '{\"SerialNumber\": \"$(U 3)\"}' > g3.json && [ \"\$(field g3.json \"['thing_name']\")\" = thermo_$(U 3) ]"
check "the same RegisterThing again gets the same answer (nothing done twice)" in_shell \
  "P 5 boot-3c register thermo-fleet \$(field c3b.json \"['token']\") '{\"SerialNumber\": \"$(U 3)\"}' > g3b.json && [ \"\$(field g3b.json \"['thing_name']\")\" = thermo_$(U 3) ] && [ \"\$(H registry events --limit 1000 | grep -c 'provisioning.register.*registered.*$(U 3)')\" = 1 ]"
check "CBOR (paho-mqtt and cbor2): create-from-csr/cbor and provision/cbor answer in CBOR, a forged token rejected" in_shell \
  "H claim create --product thermo --template thermo-fleet --out claim4 >/dev/null && python3 $HERE/provisioning_cbor.py localhost $MQTT $ROOT claim4/claim.pem claim4/claim.key thermo-fleet d4.csr SerialNumber $(U 4) > cb.json && [ \"\$(field cb.json \"['register']\")\" = accepted ] && [ \"\$(field cb.json \"['thing_name']\")\" = thermo_$(U 4) ] && [ \"\$(field cb.json \"['forged']\")\" = InvalidCertificateOwnershipToken ]"
check "the claim used its three: a fifth device is refused (claim_exhausted)" in_shell \
  "P 5 r10 csr d5.csr > r10.json && [ \"\$(field r10.json \"['create_error']\")\" = claim_exhausted ]"
check "where the product allows it, CreateKeysAndCertificate gives a key Hallmark made, bound to a device at RegisterThing" in_shell \
  "H product server-keys thermo on && CLAIM_CERT=claim4/claim.pem CLAIM_KEY=claim4/claim.key P 5 k9 keys > k9.json && [ \"\$(field k9.json \"['has_private_key']\")\" = True ] && CLAIM_CERT=claim4/claim.pem CLAIM_KEY=claim4/claim.key P 5 k9 register thermo-fleet \$(field k9.json \"['token']\") '{\"SerialNumber\": \"$(U 9)\"}' > g9.json && [ \"\$(field g9.json \"['thing_name']\")\" = thermo_$(U 9) ] && H registry devices | grep $(U 9) | grep -q enrolled"
check "a server-made key's token cannot bind an enrolled device" in_shell \
  "CLAIM_CERT=claim4/claim.pem CLAIM_KEY=claim4/claim.key P 5 k1 keys > k1.json && CLAIM_CERT=claim4/claim.pem CLAIM_KEY=claim4/claim.key P 5 k1 register thermo-fleet \$(field k1.json \"['token']\") '{\"SerialNumber\": \"$(U 1)\"}' > g1.json && [ \"\$(field g1.json \"['register_error']\")\" = device_already_enrolled ] && H product server-keys thermo off"
check "a token older than an hour is refused (the server's clock moved on)" in_shell \
  "H claim create --product thermo --template thermo-fleet --out claim2 > claim2.txt && CLAIM_CERT=claim2/claim.pem CLAIM_KEY=claim2/claim.key P 5 old csr d5.csr > c5.json && age_tokens && CLAIM_CERT=claim2/claim.pem CLAIM_KEY=claim2/claim.key P 5 old register thermo-fleet \$(field c5.json \"['token']\") '{\"SerialNumber\": \"$(U 5)\"}' > r11.json && [ \"\$(field r11.json \"['register_error']\")\" = InvalidCertificateOwnershipToken ]"
check "the unregistered certificate is revoked within seconds" eventually 5 in_shell \
  "H registry certificates | grep \"\$(openssl x509 -noout -serial -in <(field c5.json \"['certificate_pem']\") | cut -d= -f2 | tr A-F a-f)\" | grep -q revoked"
CLAIM2=$(cut -f1 claim2.txt)
check "a revoked claim is refused at connect" in_shell \
  "H claim revoke $CLAIM2 && sleep 1 && CLAIM_CERT=claim2/claim.pem CLAIM_KEY=claim2/claim.key P 5 rv csr d6.csr > rv.json 2>&1; ! grep -q '\"create_error\": null' rv.json && event 'mqtt.connect.*refuse.*certificate_revoked'"

echo "# a pre-provisioning hook"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout hook.key -out hook.pem -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
cat > hook.py <<'PY'
import http.server, json, ssl, sys, time
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        open("hook-requests.jsonl", "a").write(json.dumps(body) + "\n")
        serial = body["parameters"].get("SerialNumber", "")
        if serial == sys.argv[2]:
            time.sleep(7)
        answer = {"allowProvisioning": serial != sys.argv[1], "parameterOverrides": {"Region": "us"}}
        data = json.dumps(answer).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); context.load_cert_chain("hook.pem", "hook.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
open("hook-port.txt", "w").write(str(server.server_address[1]))
server.serve_forever()
PY
python3 hook.py "$(U 7)" "$(U 8)" 2>hook.log &
HOOK_PID=$!
must "the hook listens" eventually 5 test -s hook-port.txt
HOOK="https://localhost:$(cat hook-port.txt)/hook"
must "a template with the hook" H provisioning-template create hooked template.json --product thermo --hook "$HOOK"
must "a claim for it" in_shell "H claim create --product thermo --template hooked --out claim3 > claim3.txt"
stop_server
start_server --provisioning-hook-ca hook.pem
C3() { CLAIM_CERT=claim3/claim.pem CLAIM_KEY=claim3/claim.key P "$@"; }
check "the hook allows a registration and its parameterOverrides apply" in_shell \
  "C3 5 h6 flow hooked d6.csr '{\"SerialNumber\": \"$(U 6)\"}' d6.pem $(K 6) > h6.json && [ \"\$(field h6.json \"['device_configuration']['Endpoint']\")\" = https://us.thermo.example ]"
check "the hook got AWS's payload (claimCertificateId, certificateId, certificatePem, templateArn, clientId, parameters)" in_shell \
  "python3 -c \"import json; r=[json.loads(l) for l in open('hook-requests.jsonl')][0]; assert set(r) >= {'claimCertificateId','certificateId','certificatePem','templateArn','clientId','parameters'}; assert r['clientId']=='h6' and r['parameters']['SerialNumber']=='$(U 6)'\""
check "a hook that says no: AccessDenied, and the device stays unenrolled" in_shell \
  "C3 5 h7 flow hooked d7.csr '{\"SerialNumber\": \"$(U 7)\"}' d7.pem $(K 7) > h7.json && [ \"\$(field h7.json \"['register_error']\")\" = AccessDenied ] && event 'provisioning.register.*refuse.*provisioning_denied' && ! H registry devices | grep $(U 7) | grep -q enrolled"
check "a hook that takes longer than 5 s: AccessDenied" in_shell \
  "C3 5 h8 flow hooked d8.csr '{\"SerialNumber\": \"$(U 8)\"}' d8.pem $(K 8) > h8.json && [ \"\$(field h8.json \"['register_error']\")\" = AccessDenied ] && grep -q 'within' <(H registry events --limit 50)"
kill $HOOK_PID 2>/dev/null
check "the server never answered a client's mistake with an internal error" in_shell "! H registry events --limit 1000 | grep -q internal_error"
stop_server
finish provisioning 48
