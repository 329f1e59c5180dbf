#!/usr/bin/env bash
# The MQTT broker against real clients: mosquitto_pub/mosquitto_sub and paho-mqtt, over mutual TLS
# with certificates Hallmark issued, and over the loopback plain listener for protocol details.
set -uo pipefail
source "$(dirname "$0")/checks.sh"
export HALLMARK_PASSPHRASE="mqtt-test-passphrase"

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
"$HALLMARK" device factory --out devices --count 4 --trust "$DATA/ca/root.pem" >/dev/null
"$HALLMARK" allowlist import --data-dir "$DATA" devices/allowlist.csv >/dev/null
# The plain listener's policy, as a conformance run sets it: everything but reserved topics and
# test/nosubscribe (which the Eclipse Paho suite expects to be refused).
cat > plain-policy.json <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
  {"Effect": "Deny", "Action": "iot:Subscribe", "Resource": "topicfilter/test/nosubscribe"},
  {"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"], "Resource": ["topic/$aws/*", "topic/$SYS/*", "topic/$hallmark/*"]},
  {"Effect": "Deny", "Action": "iot:Subscribe", "Resource": ["topicfilter/$aws/*", "topicfilter/$SYS/*", "topicfilter/$hallmark/*"]}]}
JSON
echo '{"Statement": [{"Effect": "Allow", "Action": "iot:Connect"}]}' > bad-plain-policy.json
check "serve refuses a plain policy that does not parse (config_invalid), and an unknown log level" in_shell \
  "! '$HALLMARK' serve --data-dir '$DATA' --mqtt-plain-port 0 --mqtt-plain-policy bad-plain-policy.json 2>err.txt && grep -q config_invalid err.txt &&
   ! '$HALLMARK' serve --data-dir '$DATA' --log-level loud 2>err.txt && grep -q 'config_invalid.*loud' err.txt"
start_server --mqtt-plain-port 0 --mqtt-plain-policy plain-policy.json
must "the plain listener is announced" wait_for_line server.log 'plain MQTT on 127.0.0.1:[0-9]'
PLAIN=$(grep -o 'plain MQTT on 127.0.0.1:[0-9]*' server.log | grep -o '[0-9]*$')
for d in devices/device-*; do "$HALLMARK" device boot --state "$d" --server "https://127.0.0.1:$HTTPS" >/dev/null 2>&1; done

D1=devices/device-00001; D2=devices/device-00002; D3=devices/device-00003; D4=devices/device-00004
T1=$(cat $D1/udid); T2=$(cat $D2/udid); T3=$(cat $D3/udid); T4=$(cat $D4/udid)
tls() { echo "-h localhost -p $MQTT --cafile $1/trust.pem --cert $1/certificate.pem --key $1/rot-key.pem -i $(cat $1/udid)"; }
serial() { openssl x509 -in "$1/certificate.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

# A reader policy for device 2: it may watch every thing's telemetry.
cat > reader.json <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "topicfilter/things/*"},
  {"Effect": "Allow", "Action": "iot:Receive", "Resource": "topic/things/*"},
  {"Effect": "Deny", "Action": "iot:Receive", "Resource": "topic/things/*/secret"}]}
JSON
check "policy create and attach" bash -c "'$HALLMARK' policy create --data-dir '$DATA' fleet-reader reader.json && '$HALLMARK' policy attach --data-dir '$DATA' fleet-reader $T2"
echo '{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{}}]}' > bad.json
check "a malformed policy is refused with policy_invalid" in_shell "! '$HALLMARK' policy create --data-dir '$DATA' bad bad.json 2>err.txt && grep -q policy_invalid err.txt"

for V in mqttv311 mqttv5; do
  timeout 6 mosquitto_sub $(tls $D2) -V $V -t "things/+/temp" -t "things/+/secret" -C 3 -v -d >sub-$V.out 2>&1 &
  SUB=$!
  must "mosquitto_sub $V subscribed" wait_for_line sub-$V.out "received SUBACK"
  for Q in 0 1 2; do mosquitto_pub $(tls $D1) -V $V -q $Q -t "things/$T1/temp" -m "$V-q$Q"; done
  mosquitto_pub $(tls $D1) -V $V -q 1 -t "things/$T1/secret" -m "hidden"
  wait $SUB
  check "mosquitto $V: QoS 0/1/2 from one thing reach a reader, denied receive is filtered" \
    bash -c "grep -c \"^things/$T1/temp $V-q\" sub-$V.out | grep -qx 3 && ! grep -q hidden sub-$V.out"
done
# Telemetry is written once a second.
check "telemetry keeps the last value per topic" eventually 5 in_shell "'$HALLMARK' telemetry --data-dir '$DATA' $T1 | grep -q 'things/$T1/secret'"
check "telemetry history of a topic" eventually 5 in_shell "'$HALLMARK' telemetry --data-dir '$DATA' $T1 --topic things/$T1/temp | grep -c mqttv | grep -qx 6"
timeout 8 mosquitto_sub $(tls $D2) -t "things/$T1/temperature" -C 3 -d >agent-sub.out 2>&1 &
SUB=$!
must "mosquitto_sub subscribed" wait_for_line agent-sub.out "received SUBACK"
check "the device agent publishes thermometer readings over mutual TLS" bash -c \
  "'$HALLMARK' device telemetry --state $D1 --mqtt localhost:$MQTT --interval 0.2 --count 3 | grep -q '3 readings acknowledged'"
wait $SUB
check "  ... and a subscriber receives them as JSON" bash -c "[ \$(grep -c '\"temperature\":[0-9.]*,\"unit\":\"C\"' agent-sub.out) -eq 3 ]"
check "mosquitto: wrong client id refused (CONNACK not authorised)" refused mosquitto_pub $(tls $D1 | sed "s/-i $T1/-i intruder/") -t "things/$T1/x" -m 1
check "  ... with an event" event "may not connect with client id \"intruder\""
check "mosquitto v5: publish into another thing's topic gets PUBACK 0x87" bash -c "mosquitto_pub $(tls $D1) -V mqttv5 -q 1 -t things/$T3/cmd -m x -d 2>&1 | grep -q 'RC:135'"
check "  ... counted as an authorisation failure event" event "publish things/$T3/cmd denied by policy"
check "mosquitto: no client certificate is refused at TLS" refused timeout 5 mosquitto_pub -h localhost -p $MQTT --cafile $D1/trust.pem -i $T1 -t "things/$T1/x" -m 1
check "mosquitto: a certificate of a fake CA with Hallmark's CA name is refused" bash -c '
  subj=$(openssl x509 -in "'$DATA'/ca/issuing.pem" -noout -subject -nameopt RFC2253 | sed "s/^subject=//")
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout fakeca.key -out fakeca.pem -subj "/$(echo "$subj" | tr "," "\n" | tac | tr "\n" "/" | sed "s:/$::")" -days 30 \
     -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout fake.key -out fake.csr -subj "/CN='$T1'" 2>/dev/null &&
  printf "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n" > ext.cnf &&
  openssl x509 -req -in fake.csr -CA fakeca.pem -CAkey fakeca.key -CAcreateserial -days 10 -out fake.pem -extfile ext.cnf 2>/dev/null &&
  [ "$(openssl x509 -in fake.pem -noout -issuer -nameopt RFC2253)" = "issuer=$subj" ] &&
  ! timeout 5 mosquitto_pub -h localhost -p '$MQTT' --cafile '$D1'/trust.pem --cert fake.pem --key fake.key -i '$T1' -t "things/'$T1'/x" -m 1'
check "  ... with a certificate_untrusted event" event "certificate_untrusted"

# Live revocation: a subscribed device is cut off within a second of `hallmark cert revoke`.
live_cut() { # device, command...
  local d=$1; shift
  rm -f live.out live.end
  (mosquitto_sub $(tls $d) -V mqttv5 -t "things/$(cat $d/udid)/#" -d >live.out 2>&1; date +%s.%N >live.end) &
  wait_for_line live.out "received SUBACK" || { echo "no SUBACK"; cat live.out; return 1; }
  date +%s.%N > live.start
  "$@" >/dev/null
  eventually 3 test -s live.end && grep -q "DISCONNECT (152)" live.out && awk -v a="$(cat live.start)" -v b="$(cat live.end)" 'BEGIN { d = b - a; print "cut after " d " s"; exit !(d < 1.0) }'
  local r=$?; rm -f live.end; return $r
}
check "cert revoke ends the live session within 1 s (MQTT 5 DISCONNECT 0x98)" live_cut $D3 "$HALLMARK" cert revoke --data-dir "$DATA" "$(serial $D3)" --reason stolen
check "  ... and the revoked certificate cannot reconnect" refused mosquitto_pub $(tls $D3) -t "things/$T3/x" -m 1
check "  ... with certificate_revoked events" event "live session of client id $T3 ended: Certificate"
check "cert deactivate ends the live session within 1 s" live_cut $D4 "$HALLMARK" cert deactivate --data-dir "$DATA" "$(serial $D4)"
check "  ... refused while inactive" refused mosquitto_pub $(tls $D4) -t "things/$T4/x" -m 1
check "cert activate" "$HALLMARK" cert activate --data-dir "$DATA" "$(serial $D4)"
check "  ... lets it back in" eventually 3 mosquitto_pub $(tls $D4) -t things/$T4/x -m 1
check "revocation is final: activate refused" bash -c "'$HALLMARK' cert activate --data-dir '$DATA' $(serial $D3) 2>&1 | grep -q certificate_revoked"
check "thing deactivate ends the live session within 1 s" live_cut $D4 "$HALLMARK" thing deactivate --data-dir "$DATA" "$T4"
check "  ... refused while the thing is inactive" refused mosquitto_pub $(tls $D4) -t "things/$T4/x" -m 1
check "device quarantine ends the live session within 1 s" live_cut $D1 "$HALLMARK" registry set-status --data-dir "$DATA" "$T1" quarantined
must "release device 1" "$HALLMARK" registry set-status --data-dir "$DATA" "$T1" enrolled

check "paho-mqtt suite (MQTT 3.1.1 and 5, plain and mutual TLS)" env MQTT_PLAIN_PORT="$PLAIN" MQTT_TLS_PORT="$MQTT" DEVICES="$WORK/devices" \
  FAKE_CERT="$WORK/fake.pem" FAKE_KEY="$WORK/fake.key" python3 "$E2E/mqtt_paho.py"
cat check.out | grep -E "^(ok|FAIL)|passed" | sed 's/^/     /'

check "the server is still healthy" curl -sf --cacert "$DATA/ca/root.pem" "https://localhost:$HTTPS/healthz"
check "no crash or internal error in the server log" bash -c "! grep -Ei 'fatal|internal_error|crash' server.log"
stop_server
finish mqtt 31
