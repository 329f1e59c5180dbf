#!/usr/bin/env bash
# Bring-your-own CA against real tools: OEM CAs and device certificates made with openssl,
# registered with `hallmark ca register`, devices connecting with mosquitto_pub/mosquitto_sub.
# JITR (registered pending activation, AWS-shaped event, refused) and JITP (provisioned, same
# connection goes on), with the refusals around them.
set -uo pipefail
source "$(dirname "$0")/checks.sh"
export HALLMARK_PASSPHRASE="byoca-test-passphrase"

# An OEM CA (P-256, self-signed) and helpers to issue from it.
make_ca() { # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
    -subj "/O=$1 Devices/CN=$1 Device CA" -days 365 \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
issue() { # ca, out-name, subject, [extensions file]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2.key" -out "$2.csr" -subj "$3" 2>/dev/null &&
  openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -days 30 -out "$2.pem" ${4:+-extfile "$4"} 2>/dev/null
}
printf "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n" > device.ext
fingerprint() { openssl x509 -in "$1" -outform der | sha256sum | cut -d' ' -f1; }

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
"$HALLMARK" device factory --out devices --count 1 --trust "$DATA/ca/root.pem" >/dev/null
"$HALLMARK" allowlist import --data-dir "$DATA" devices/allowlist.csv >/dev/null
start_server
OPS=devices/device-00001
"$HALLMARK" device boot --state $OPS --server "https://127.0.0.1:$HTTPS" >/dev/null 2>&1
OPS_THING=$(cat $OPS/udid)
ops() { echo "-h localhost -p $MQTT --cafile $OPS/trust.pem --cert $OPS/certificate.pem --key $OPS/rot-key.pem -i $OPS_THING"; }
oem() { # cert/key name, client id
  echo "-h localhost -p $MQTT --cafile $DATA/ca/root.pem --cert $1.pem --key $1.key -i $2"; }

# The operations backend (an enrolled Hallmark device) may watch registrations and telemetry.
cat > ops.json <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": ["topicfilter/$aws/events/certificates/registered/*", "topicfilter/things/*"]},
  {"Effect": "Allow", "Action": "iot:Receive", "Resource": ["topic/$aws/events/certificates/registered/*", "topic/things/*"]}]}
JSON
"$HALLMARK" policy create --data-dir "$DATA" ops ops.json >/dev/null
"$HALLMARK" policy attach --data-dir "$DATA" ops "$OPS_THING" >/dev/null

CODE=$("$HALLMARK" ca registration-code --data-dir "$DATA")
check "the registration code is 64 hex digits and stable" bash -c "[[ '$CODE' =~ ^[0-9a-f]{64}$ ]] && [ \"\$('$HALLMARK' ca registration-code --data-dir '$DATA')\" = '$CODE' ]"

# --- Registration and its refusals ---
make_ca acme; make_ca rogue
issue acme acme-verify "/CN=$CODE"
issue rogue rogue-verify "/CN=$CODE"
issue acme acme-wrong-code "/CN=0000000000000000000000000000000000000000000000000000000000000000"
check "a verification certificate with the wrong code is refused" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate acme.pem --verification-certificate acme-wrong-code.pem 2>&1 | grep -q ca_registration_invalid"
check "a verification certificate signed by another CA is refused" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate acme.pem --verification-certificate rogue-verify.pem 2>&1 | grep -q 'not signed by the CA being registered'"
issue acme not-a-ca "/CN=not a ca" device.ext
check "a device certificate offered as a CA is refused" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate not-a-ca.pem --verification-certificate acme-verify.pem 2>&1 | grep -q 'not a CA certificate'"
events >/dev/null
check "  ... each refusal is an event" bash -c "[ \$(grep ca.status events.txt | grep -c ca_registration_invalid) -ge 3 ]"
issue rogue rogue-device "/CN=rogue-1" device.ext
check "an unregistered CA's device is refused at TLS" refused timeout 5 mosquitto_pub $(oem rogue-device rogue-1) -t things/rogue-1/x -m 1

check "ca register (JITR: no template)" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate acme.pem --verification-certificate acme-verify.pem | tee /dev/stderr | grep -q 'registered CA $(fingerprint acme.pem)'"
ACME=$(fingerprint acme.pem)
check "ca registered lists it" bash -c "'$HALLMARK' ca registered --data-dir '$DATA' | grep -q '$ACME  active    JITR'"

# --- JITR ---
issue acme acme-dev-1 "/O=acme Devices/CN=acme-dev-1" device.ext
timeout 8 mosquitto_sub $(ops) -V mqttv5 -t "\$aws/events/certificates/registered/+" -C 1 -d >jitr-sub.out 2>jitr-sub.err &
SUB=$!
must "the operations backend subscribed" wait_for_line jitr-sub.out "received SUBACK"
# The broker reloads its CAs from the registry's change feed: the first connection may come before.
check "JITR: the first connection is refused (pending activation)" eventually 3 in_shell \
  "mosquitto_pub $(oem acme-dev-1 acme-dev-1) -V mqttv5 -t things/acme-dev-1/temp -m 1 2>&1 | grep -qi 'not authori'"
wait $SUB
grep '^{' jitr-sub.out > jitr-event.json
DEV1=$(fingerprint acme-dev-1.pem)
check "  ... and announced on \$aws/events/certificates/registered/<caCertificateId> in AWS IoT's shape" python3 -c "
import json; e = json.load(open('jitr-event.json'))
assert e['certificateId'] == '$DEV1', e
assert e['caCertificateId'] == '$ACME', e
assert e['certificateStatus'] == 'PENDING_ACTIVATION', e
assert isinstance(e['timestamp'], int) and e['awsAccountId'] == 'default', e
print(e)"
check "  ... with a certificate_registered event" event "certificate_registered"
check "  ... a reconnect is still refused with the reason" bash -c \
  "mosquitto_pub $(oem acme-dev-1 acme-dev-1) -V mqttv5 -t things/acme-dev-1/temp -m 1 2>&1 | grep -qi 'not authori'"
events >/dev/null
check "  ... registered once however often it connects" bash -c "[ \$(grep -c \"certificate_registered.*acme-dev-1\" events.txt) -eq 1 ]"
check "cert activate of the pending certificate" "$HALLMARK" cert activate --data-dir "$DATA" "$DEV1"
check "  ... then the device connects and publishes in its own topics" eventually 3 mosquitto_pub $(oem acme-dev-1 acme-dev-1) -q 1 -t things/acme-dev-1/temp -m 21.5
check "  ... and not into another thing's" bash -c "mosquitto_pub $(oem acme-dev-1 acme-dev-1) -V mqttv5 -q 1 -t things/other/temp -m 1 -d 2>&1 | grep -q 'RC:135'"

issue acme acme-impostor "/CN=$OPS_THING" device.ext
check "JITR: a certificate named after an enrolled device's thing is refused" refused \
  mosquitto_pub $(oem acme-impostor "$OPS_THING") -t "things/$OPS_THING/temp" -m 1
events >/dev/null
check "  ... and registered under a thing of its own, never the enrolled device's" bash -c \
  "grep certificate_registered events.txt | grep -qP '\tcert-[0-9a-f]{16}\t' && ! grep certificate_registered events.txt | grep -q '$OPS_THING'"
must "activate the impostor" "$HALLMARK" cert activate --data-dir "$DATA" "$(fingerprint acme-impostor.pem)"
# Its activation must have reached the broker before the refusal means anything: a JITR device of the
# same CA connects once the broker knows it is active, the impostor still not.
issue acme acme-dev-2 "/O=acme Devices/CN=acme-dev-2" device.ext
mosquitto_pub $(oem acme-dev-2 acme-dev-2) -t things/acme-dev-2/temp -m 1 >/dev/null 2>&1
must "activate a second JITR device" "$HALLMARK" cert activate --data-dir "$DATA" "$(fingerprint acme-dev-2.pem)"
must "the second device connects" eventually 3 mosquitto_pub $(oem acme-dev-2 acme-dev-2) -t things/acme-dev-2/temp -m 1
check "  ... so even once activated it cannot connect as that thing" refused \
  mosquitto_pub $(oem acme-impostor "$OPS_THING") -t "things/$OPS_THING/temp" -m 1

# --- JITP ---
make_ca globex
issue globex globex-verify "/CN=$CODE"
echo '{"product": "default", "thingName": "globex-${iot:Certificate.Subject.CommonName}"}' > globex-template.json
echo '{"product": "default", "thingName": "x-${iot:Certificate.Subject.Nonsense}"}' > bad-template.json
check "a template with an unknown variable is refused" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate globex.pem --verification-certificate globex-verify.pem --template bad-template.json 2>&1 | grep -q provisioning_template_invalid"
echo '{"product": "default", "thingName": "g-${iot:Certificate.Subject.CommonName}", "policy": "missing"}' > missing-policy.json
check "a template naming a missing policy is refused" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate globex.pem --verification-certificate globex-verify.pem --template missing-policy.json 2>&1 | grep -q 'policy missing does not exist'"
check "ca register with a provisioning template (JITP)" bash -c \
  "'$HALLMARK' ca register --data-dir '$DATA' --ca-certificate globex.pem --verification-certificate globex-verify.pem --template globex-template.json | grep -q JITP"
GLOBEX=$(fingerprint globex.pem)
issue globex globex-s7 "/CN=sensor-7" device.ext
timeout 8 mosquitto_sub $(ops) -t "things/globex-sensor-7/#" -C 1 -v -d >jitp-sub.out 2>&1 &
SUB=$!
must "the operations backend subscribed" wait_for_line jitp-sub.out "received SUBACK"
check "JITP: the device's very first connection goes on and publishes (MQTT 5, QoS 1)" \
  eventually 3 mosquitto_pub $(oem globex-s7 globex-sensor-7) -V mqttv5 -q 1 -t things/globex-sensor-7/temp -m first-try
wait $SUB
check "  ... the message reached a subscriber" grep -q "things/globex-sensor-7/temp first-try" jitp-sub.out
check "  ... with a certificate_provisioned event" event "certificate_provisioned"
check "  ... the default policy applies: another thing's topic is refused" bash -c \
  "mosquitto_pub $(oem globex-s7 globex-sensor-7) -V mqttv5 -q 1 -t things/acme-dev-1/temp -m 1 -d 2>&1 | grep -q 'RC:135'"
issue globex globex-s8 "/CN=sensor-8" device.ext
RACE=()
for i in 1 2 3 4 5 6; do
  timeout 10 mosquitto_pub $(oem globex-s8 globex-sensor-8) -V mqttv311 -q 1 -t things/globex-sensor-8/temp -m "$i" >race-$i.out 2>&1 &
  RACE+=($!)
done
wait "${RACE[@]}"
events >/dev/null
check "JITP: six simultaneous first connections of one certificate provision it once" bash -c \
  "[ \$(grep certificate_provisioned events.txt | grep -c globex-sensor-8) -eq 1 ] && [ \$(grep -c 'client id globex-sensor-8, MQTT 3.1.1' events.txt) -eq 6 ]"
issue globex globex-bad "/CN=bad name!" device.ext
check "JITP: a certificate the template cannot name a thing from is refused" refused \
  mosquitto_pub $(oem globex-bad globex-bad) -t things/x/temp -m 1
check "  ... with a provisioning_failed event" event "provisioning_failed"

# --- A registered CA deactivated: its devices' sessions end, reconnects fail at TLS ---
(mosquitto_sub $(oem globex-s7 globex-sensor-7) -V mqttv5 -t "things/globex-sensor-7/#" -d >ca-live.out 2>&1; date +%s.%N >ca-live.end) &
must "a globex device subscribed" wait_for_line ca-live.out "received SUBACK"
date +%s.%N >ca-live.start
must "ca set-status inactive" "$HALLMARK" ca set-status --data-dir "$DATA" "$GLOBEX" inactive
eventually 3 test -s ca-live.end
check "ca set-status inactive ends the CA's live sessions within 1 s" bash -c \
  "[ -s ca-live.end ] && awk -v a=\$(cat ca-live.start) -v b=\$(cat ca-live.end) 'BEGIN { d = b - a; print \"cut after \" d \" s\"; exit !(d < 1.0) }'"
check "  ... and its devices are refused at TLS" refused timeout 5 mosquitto_pub $(oem globex-s7 globex-sensor-7) -t things/globex-sensor-7/temp -m 1
check "  ... other CAs' devices are unaffected" mosquitto_pub $(oem acme-dev-1 acme-dev-1) -t things/acme-dev-1/temp -m 2
must "ca set-status active" "$HALLMARK" ca set-status --data-dir "$DATA" "$GLOBEX" active
check "ca set-status active lets them back" eventually 3 mosquitto_pub $(oem globex-s7 globex-sensor-7) -t things/globex-sensor-7/temp -m 3

check "the server is still healthy" curl -sf --cacert "$DATA/ca/root.pem" "https://localhost:$HTTPS/healthz"
check "no crash or internal error in the server log" bash -c "! grep -Ei 'fatal|internal_error|crash' server.log"
stop_server
finish byoca 36
