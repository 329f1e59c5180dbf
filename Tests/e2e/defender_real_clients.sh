#!/usr/bin/env bash
# Device Defender against real clients: what AWS's own collector (AWSIoTDeviceDefenderAgentSDK)
# produces, sent with paho-mqtt and with the AWS IoT Device SDK (awsiotsdk), in JSON, CBOR, long
# and short names; COSE_Sign1 reports and events signed by pycose, and Hallmark's device agent's
# signatures verified by pycose; malformed, oversized, replayed, throttled, tampered and
# foreign-signed reports refused; security profiles whose alarms quarantine a device within a
# second, revoke a certificate (OCSP says so), clear, and compare with the fleet; alarms on MQTT
# and to an HMAC-signed webhook; a device that falls silent noticed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="defender-test-passphrase"
H() { "$HALLMARK" "$@" --data-dir "$DATA"; }
ROOT="$DATA/ca/root.pem"

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
for p in sensor meter fleet; do H product create $p >/dev/null; done
must "four sensors, two meters, ten fleet devices manufactured" in_shell \
  "'$HALLMARK' device factory --out s --count 4 --trust '$ROOT' --allowlist s.csv >/dev/null && '$HALLMARK' device factory --out m --count 2 --trust '$ROOT' --allowlist m.csv >/dev/null && '$HALLMARK' device factory --out f --count 10 --trust '$ROOT' --allowlist f.csv >/dev/null"
must "allowlists imported" in_shell "H allowlist import --product sensor s.csv && H allowlist import --product meter m.csv && H allowlist import --product fleet f.csv"

# The OEM's alarm receiver: HTTPS, checks each request's HMAC with the key it shares with Hallmark.
head -c 32 /dev/urandom > webhook.key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout hook.key -out hook.pem -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
cat > receiver.py <<'PY'
import hashlib, hmac, http.server, json, ssl
key = open("webhook.key", "rb").read()
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(key, self.headers["X-Hallmark-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, self.headers.get("X-Hallmark-Signature", ""))
        open("webhook.jsonl", "a").write(json.dumps({"valid": valid, "alarm": json.loads(body)}) + "\n")
        self.send_response(204 if valid else 401); self.end_headers()
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); context.load_cert_chain("hook.pem", "hook.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
open("receiver-port.txt", "w").write(str(server.server_address[1]))
server.serve_forever()
PY
python3 receiver.py 2>receiver.log &
RECEIVER=$!
CLONE_SUB=""
trap 'kill $SERVER $RECEIVER $BACKEND $CLONE_SUB 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
must "the alarm receiver listens" eventually 5 test -s receiver-port.txt
start_server --alarm-webhook "https://localhost:$(cat receiver-port.txt)/alarms" --alarm-webhook-key-file webhook.key --alarm-webhook-ca hook.pem \
  --metrics-port 0 --metrics-port-file metrics-port.txt
B="https://localhost:$HTTPS"
D() { printf '%s/device-%05d' "$1" "$2"; }
U() { cat "$(D $1 $2)/udid"; }
must "every device enrols" in_shell "for i in 1 2 3 4; do '$HALLMARK' device boot --state \$(D s \$i) --server $B >/dev/null || exit 1; done; for i in 1 2; do '$HALLMARK' device boot --state \$(D m \$i) --server $B >/dev/null || exit 1; done; for i in \$(seq 1 10); do '$HALLMARK' device boot --state \$(D f \$i) --server $B >/dev/null || exit 1; done"
for p in sensor meter fleet; do must "$p takes a report a second" H product defender $p --report-interval 1; done
C() { # product index mode args...: the client on the device's own connection and topics
  python3 "$HERE/defender_client.py" localhost "$MQTT" "$ROOT" "$(D $1 $2)/certificate.pem" "$(D $1 $2)/rot-key.pem" "$(U $1 $2)" "$(U $1 $2)" "${@:3}"; }
CT() { # product index thing mode args...: the same, on another thing's topics
  python3 "$HERE/defender_client.py" localhost "$MQTT" "$ROOT" "$(D $1 $2)/certificate.pem" "$(D $1 $2)/rot-key.pem" "$(U $1 $2)" "$3" "${@:4}"; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval('d' + sys.argv[1]))" "$2"; }
agent() { "$HALLMARK" device defender --state "$(D $1 $2)" --mqtt "localhost:$MQTT" "${@:3}"; }

# The OEM's backend: a thing allowed to subscribe to the tenant's alarms.
cat > backend.json <<'POLICY'
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:hallmark:iot:::topicfilter/$hallmark/alarms/*"},
 {"Effect": "Allow", "Action": "iot:Receive", "Resource": "arn:hallmark:iot:::topic/$hallmark/alarms/*"}]}
POLICY
must "the backend's policy" in_shell "H policy create oem-backend backend.json >/dev/null && H policy attach oem-backend $(U s 4) >/dev/null"
mosquitto_sub -h localhost -p "$MQTT" --cafile "$ROOT" --cert "$(D s 4)/certificate.pem" --key "$(D s 4)/rot-key.pem" -i "$(U s 4)" \
  -t '$hallmark/alarms/#' -v -V mqttv5 -q 1 > alarms.out 2>backend.err &
BACKEND=$!

echo "# AWS's reports, from AWS's collector"
check "the collector's JSON report (long names) is ACCEPTED for the thing" in_shell \
  "C s 1 collector json > a.json && [ \"\$(field a.json \"['answer']\")\" = accepted ] && [ \"\$(field a.json \"['payload']['status']\")\" = ACCEPTED ] && [ \"\$(field a.json \"['payload']['thingName']\")\" = $(U s 1) ]"
sleep 1.1
check "its CBOR report is ACCEPTED (answered in JSON, as AWS does)" in_shell "C s 1 collector cbor > b.json && [ \"\$(field b.json \"['answer']\")\" = accepted ]"
sleep 1.1
check "its short-name report is ACCEPTED" in_shell "C s 1 collector short > c.json && [ \"\$(field c.json \"['answer']\")\" = accepted ]"
sleep 1.1
check "the AWS IoT Device SDK (MQTT 5) sends the collector's report: ACCEPTED" in_shell \
  "C s 1 sdk > sdk.json && [ \"\$(field sdk.json \"['answer']\")\" = accepted ] && [ \"\$(field sdk.json \"['payload']['status']\")\" = ACCEPTED ]"
check "the reports are recorded unsigned, by AWS metric id" in_shell \
  "H thing reports $(U s 1) > r.txt && [ \$(grep -c unsigned r.txt) -ge 4 ] && grep -q 'aws:listening-tcp-ports' r.txt && grep -q 'aws:all-bytes-in' r.txt"
sleep 1.1
check "the same report again is a replay: REJECTED report_replayed" in_shell \
  "C s 1 twice > t.json && [ \"\$(field t.json \"['first']['answer']\")\" = accepted ] && [ \"\$(field t.json \"['second']['payload']['hallmarkCode']\")\" = report_replayed ]"
must "sensor takes a report every 30 s" H product defender sensor --report-interval 30
sleep 1.1
check "a report sooner than the product's interval: REJECTED Throttled (report_throttled)" in_shell \
  "C s 1 collector json > th.json && [ \"\$(field th.json \"['payload']['statusDetails']['ErrorCode']\")\" = Throttled ] && [ \"\$(field th.json \"['payload']['hallmarkCode']\")\" = report_throttled ]"
must "sensor back to a report a second" H product defender sensor --report-interval 1
printf '{"header":{"report_id":1}}' > bad.json
check "a malformed report: REJECTED InvalidPayload (report_invalid), and logged" in_shell \
  "C s 1 raw json bad.json > bad.out && [ \"\$(field bad.out \"['payload']['statusDetails']['ErrorCode']\")\" = InvalidPayload ] && [ \"\$(field bad.out \"['payload']['hallmarkCode']\")\" = report_invalid ] && event 'defender.report.*refuse.*report_invalid'"
python3 -c "print('{\"header\":{\"report_id\":9,\"version\":\"1.0\"},\"custom_metrics\":{\"s\":[{\"string_list\":[\"' + 'x' * 70000 + '\"]}]}}')" > big.json
check "an oversized report: REJECTED (body_too_large)" in_shell "C s 1 raw json big.json > big.out && [ \"\$(field big.out \"['payload']['hallmarkCode']\")\" = body_too_large ]"
printf '\xa1\x61' > trunc.cbor
check "truncated CBOR: REJECTED InvalidPayload" in_shell "C s 1 raw cbor trunc.cbor > tr.out && [ \"\$(field tr.out \"['payload']['statusDetails']['ErrorCode']\")\" = InvalidPayload ]"
check "a report on another thing's topic: the default policy refuses the publish, and it is logged" in_shell \
  "CT s 1 $(U s 2) collector json > o.json; grep -q 'Not authorized' o.json && event 'mqtt.\(publish\|subscribe\).*refuse.*not_authorized.*$(U s 2)/defender'"
check "clients cannot publish Hallmark's answers" in_shell \
  "! mosquitto_pub -h localhost -p $MQTT --cafile '$ROOT' --cert $(D s 1)/certificate.pem --key $(D s 1)/rot-key.pem -i $(U s 1) -V mqttv5 -q 1 -t '\$aws/things/$(U s 1)/defender/metrics/json/accepted' -m '{}' 2>pub.err; grep -qi 'not authori' pub.err"

echo "# signed reports and events (COSE_Sign1, ES256)"
sleep 1.1
check "a report signed by pycose with the thing's key is ACCEPTED and recorded signed" in_shell \
  "C s 1 pycose > p.json && [ \"\$(field p.json \"['answer']\")\" = accepted ] && H thing reports $(U s 1) --limit 1 | grep -q '	signed	'"
sleep 1.1
check "a signed report changed after signing: REJECTED report_signature_invalid, logged" in_shell \
  "C s 1 pycose tamper > pt.json && [ \"\$(field pt.json \"['payload']['hallmarkCode']\")\" = report_signature_invalid ] && event 'defender.report.*refuse.*report_signature_invalid'"
check "a report signed with another thing's key: REJECTED report_signature_invalid" in_shell \
  "C s 1 pycose $(D s 2)/rot-key.pem > po.json && [ \"\$(field po.json \"['payload']['hallmarkCode']\")\" = report_signature_invalid ]"
sleep 1.1
check "Hallmark's device agent measures, signs and reports: accepted" in_shell "agent s 1 --custom cpu_usage=12 | grep -q 'report: accepted'"
check "pycose verifies the agent's signature with the key of the thing's certificate" in_shell \
  "C s 1 verify $(D s 1)/defender-last.cose $(D s 1)/certificate.pem > v.json && [ \"\$(field v.json \"['valid']\")\" = True ] && field v.json \"['payload_keys']\" | grep -q custom_metrics"
check "and refuses it with another device's certificate" in_shell \
  "C s 1 verify $(D s 1)/defender-last.cose $(D s 2)/certificate.pem > v2.json && [ \"\$(field v2.json \"['valid']\")\" = False ]"
must "sensor takes signed reports only" H product defender sensor --signed-only on
sleep 1.1
check "with signatures required, an unsigned report: REJECTED report_signature_required; a signed one is accepted" in_shell \
  "C s 1 collector json > sr.json && [ \"\$(field sr.json \"['payload']['hallmarkCode']\")\" = report_signature_required ] && sleep 1.1 && agent s 1 | grep -q 'report: accepted'"
must "sensor takes unsigned reports again" H product defender sensor --signed-only off
sleep 1.1
check "the agent raises a signed tamper event: accepted and in the log as an alarm" in_shell \
  "agent s 1 --event tamper --detail 'enclosure opened' --count 0 | grep -q 'event tamper: accepted' && event 'defender.event.*alarm.*tamper.*enclosure opened'"
check "the OEM's backend hears of it on \$hallmark/alarms/events/<thing>" in_shell \
  "wait_for_line alarms.out 'alarms/events/$(U s 1) .*\"type\":\"tamper\"'"
check "an event replayed with an old id: REJECTED report_replayed" in_shell \
  "C s 1 pycose-event failover-boot 5 > e.json && [ \"\$(field e.json \"['payload']['hallmarkCode']\")\" = report_replayed ]"
check "a fail-over boot signed by pycose with a new id: accepted" in_shell \
  "C s 1 pycose-event failover-boot 9999999999 > e2.json && [ \"\$(field e2.json \"['answer']\")\" = accepted ] && event 'defender.event.*failover-boot'"
check "an unknown event type: REJECTED report_invalid" in_shell \
  "C s 1 pycose-event coffee-spilled 99999999999 > e3.json && [ \"\$(field e3.json \"['payload']['hallmarkCode']\")\" = report_invalid ]"

echo "# security profiles, alarms that act"
cat > ml.json <<'JSON'
{"behaviors": [{"name": "ml", "metric": "aws:num-messages-sent", "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}}]}
JSON
check "a profile with what Hallmark does not evaluate (ML Detect) is refused, and logged" in_shell \
  "! H security-profile create ml ml.json --product sensor 2>err.txt && grep -q security_profile_invalid err.txt && event 'security-profile.put.*refuse.*security_profile_invalid'"
cat > guard.json <<'JSON'
{"securityProfileDescription": "sensors stay in their lane",
 "behaviors": [
  {"name": "few-denials", "metric": "aws:num-authorization-failures",
   "criteria": {"comparisonOperator": "less-than", "value": {"count": 3}, "durationSeconds": 300, "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1}},
  {"name": "cpu", "metric": "cpu_usage", "criteria": {"comparisonOperator": "less-than-equals", "value": {"number": 50}}}],
 "mitigationActions": [{"quarantineDeviceParams": {}}]}
JSON
check "a profile in AWS's behaviour shape with a quarantine" in_shell "H security-profile create guard guard.json --product sensor | grep -q 'few-denials,cpu.*quarantine-device'"
sleep 2.5  # the profiles are read again every second
check "a sensor publishing where it may not: refused each time, then its session ends within a second of the alarm" in_shell \
  "C s 2 offend things/elsewhere/x 3 > off.json && field off.json \"['acks']\" | grep -q 'Not authorized' && python3 -c \"import json; d=json.load(open('off.json')); assert d['disconnected_after'] is not None and d['disconnected_after'] < 1.5, d\""
check "the violation is active: in-alarm, few-denials, quarantine-device" in_shell \
  "H alarms list --json > al.json && python3 -c \"import json; v=[x for x in json.load(open('al.json')) if x['thingName']=='$(U s 2)']; assert v and v[0]['state']=='in-alarm' and v[0]['behavior']['name']=='few-denials' and v[0]['mitigations']==['quarantine-device'], v\""
check "the device is quarantined and cannot connect again (device_quarantined)" in_shell \
  "H registry devices | grep $(U s 2) | grep -q quarantined && ! mosquitto_pub -h localhost -p $MQTT --cafile '$ROOT' --cert $(D s 2)/certificate.pem --key $(D s 2)/rot-key.pem -i $(U s 2) -V mqttv5 -t things/$(U s 2)/t -m 1 2>/dev/null && event 'mqtt.connect.*refuse.*device_quarantined'"
check "the backend got the violation (AWS's ViolationEvent fields)" in_shell \
  "wait_for_line alarms.out 'alarms/guard/$(U s 2) .*\"violationEventType\":\"in-alarm\".*\"mitigations\":\\[\"quarantine-device\"\\]'"
check "the webhook got it, with a valid HMAC signature" in_shell \
  "eventually 5 grep -q '\"valid\": true.*$(U s 2)' webhook.jsonl && ! grep -q '\"valid\": false' webhook.jsonl"
check "the webhook's key is nowhere in the server's log" in_shell "! grep -qF \"\$(od -An -tx1 webhook.key | tr -d ' \\n')\" server.log && ! grep -qaF \"\$(base64 -w0 webhook.key)\" server.log"
sleep 1.1
check "a custom metric out of bounds (cpu_usage 90 > 50): in alarm, quarantined, its session ended" in_shell \
  "agent s 3 --custom cpu_usage=90 | grep -q 'report: accepted' && eventually 2 in_shell \"H alarms list | grep -q 'in-alarm.$(U s 3).guard/cpu'\" && eventually 2 in_shell \"H registry devices | grep $(U s 3) | grep -q quarantined\""

cat > watch.json <<'JSON'
{"behaviors": [{"name": "cpu", "metric": "cpu_usage", "criteria": {"comparisonOperator": "less-than-equals", "value": {"number": 50}, "consecutiveDatapointsToClear": 1}}]}
JSON
cat > door.json <<'JSON'
{"behaviors": [{"name": "door", "metric": "door_open", "criteria": {"comparisonOperator": "less-than", "value": {"number": 1}}}],
 "mitigationActions": [{"updateDeviceCertificateParams": {"action": "REVOKE"}}]}
JSON
must "a watching profile and a revoking one for meters" in_shell "H security-profile create watch watch.json --product meter && H security-profile create door door.json --product meter"
sleep 2.5
check "a meter's cpu_usage 90: in alarm, no mitigation" in_shell \
  "agent m 1 --custom cpu_usage=90 | grep -q accepted && eventually 2 in_shell \"H alarms list | grep -q 'in-alarm.$(U m 1).watch/cpu'\" && H registry devices | grep $(U m 1) | grep -qv quarantined"
sleep 1.1
check "back to 10: alarm-cleared, announced" in_shell \
  "agent m 1 --custom cpu_usage=10 | grep -q accepted && eventually 2 in_shell \"H alarms list --all | grep -q 'alarm-cleared.$(U m 1).watch/cpu'\" && ! H alarms list | grep -q '$(U m 1)' && wait_for_line alarms.out 'alarms/watch/$(U m 1) .*alarm-cleared'"
check "a meter's door opened: its certificate revoked (keyCompromise), OCSP says so" in_shell \
  "agent m 2 --custom door_open=1 | grep -q accepted && eventually 3 in_shell \"event 'certificate.status.*certificate_revoked.*$(U m 2)'\" && openssl ocsp -issuer $DATA/ca/issuing.pem -cert $(D m 2)/certificate.pem -url http://127.0.0.1:$REVOCATION/ocsp -CAfile '$ROOT' 2>&1 | grep -q 'revoked'"

echo "# a statistical threshold over the fleet"
cat > load.json <<'JSON'
{"behaviors": [{"name": "load", "metric": "load", "criteria": {"comparisonOperator": "less-than-equals", "statisticalThreshold": {"statistic": "p90"}}}]}
JSON
must "a fleet profile: load at most the fleet's p90" H security-profile create fleet-load load.json --product fleet
sleep 2.5
load_round() { for i in $(seq 1 10); do v=$i; [ $i = 10 ] && v=100; agent f $i --custom load=$v | grep -q accepted || return 1; done; }
check "ten devices report their load twice (1…9, and one at 100)" in_shell "load_round && sleep 1.5 && load_round"
check "only the outlier is in alarm against the fleet's p90" in_shell \
  "eventually 3 in_shell \"H alarms list | grep -q 'fleet-load/load'\" && [ \$(H alarms list | grep -c 'fleet-load/load') = 1 ] && H alarms list | grep -q 'in-alarm.$(U f 10).fleet-load'"

echo "# a device that falls silent"
check "a thing that stopped reporting is noticed: reports_missing, and announced" in_shell \
  "eventually 8 in_shell \"event 'defender.report.*alarm.*reports_missing.*$(U m 1)'\" && wait_for_line alarms.out 'alarms/reports-missing/$(U m 1) '"

echo "# audits of the fleet's configuration"
cat > open.json <<'POLICY'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
POLICY
must "an over-broad policy attached to sensor 1" in_shell "H policy create open open.json >/dev/null && H policy attach open $(U s 1) >/dev/null"
mosquitto_sub -h localhost -p "$MQTT" --cafile "$ROOT" --cert "$(D s 1)/certificate.pem" --key "$(D s 1)/rot-key.pem" -i "$(U s 1)" -t "things/$(U s 1)/#" -V mqttv5 > clone-sub.out 2>&1 &
CLONE_SUB=$!
sleep 1
check "sensor 1's certificate in a second session under another client id: a clone (quarantined)" in_shell \
  "mosquitto_pub -h localhost -p $MQTT --cafile '$ROOT' --cert $(D s 1)/certificate.pem --key $(D s 1)/rot-key.pem -i clone-of-s1 -V mqttv5 -t things/$(U s 1)/t -m 1; eventually 3 in_shell \"H registry devices | grep $(U s 1) | grep -q quarantined\""
kill $CLONE_SUB 2>/dev/null
check "the audit finds the shared certificate (critical) and the over-broad policy, with AWS's ids and reason codes" in_shell \
  "H audit run --json > audit.json && python3 -c \"import json; f={(x['checkName'], x['nonCompliantResource']['resourceIdentifier']): x for x in json.load(open('audit.json'))}; s=f[('DEVICE_CERTIFICATE_SHARED_CHECK', '$(openssl x509 -in $(D s 1)/certificate.pem -noout -serial | cut -d= -f2 | tr A-F a-f)')]; assert s['severity']=='CRITICAL' and s['reasonForNonComplianceCode']=='CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES', s; p=f[('IOT_POLICY_OVERLY_PERMISSIVE_CHECK', 'open')]; assert p['reasonForNonComplianceCode']=='ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS' and p['mitigation'], p\""
check "a suppressed finding is kept but marked, and --strict still fails on the shared certificate" in_shell \
  "H audit suppress IOT_POLICY_OVERLY_PERMISSIVE_CHECK open --days 7 --reason 'lab policy' >/dev/null && H audit run | grep -q 'IOT_POLICY_OVERLY_PERMISSIVE_CHECK.*(suppressed)' && ! H audit run --strict >/dev/null && event 'audit.*finding_suppressed'"

echo "# Prometheus"
metric() { awk -v name="$1" '$1 == name { print $2 }' metrics.txt; }
check "GET /metrics passes promtool check metrics" in_shell \
  "curl -sf http://127.0.0.1:\$(cat metrics-port.txt)/metrics > metrics.txt && promtool check metrics < metrics.txt > promtool.out 2>&1 && [ ! -s promtool.out ]"
check "it counts what happened: enrollments, reports both ways, denials, refused connections, violations, certificates by status" in_shell \
  "[ \$(metric hallmark_est_enrollments_total) -ge 16 ] && [ \$(metric 'hallmark_defender_reports_total{outcome=\"accepted\"}') -ge 10 ] && [ \$(metric 'hallmark_defender_reports_total{outcome=\"rejected\"}') -ge 10 ] && [ \$(metric hallmark_mqtt_authorization_denials_total) -ge 3 ] && [ \$(metric 'hallmark_mqtt_connections_refused_total{code=\"device_quarantined\"}') -ge 1 ] && awk '\$1 == \"hallmark_defender_violations_active\" && \$2 >= 3 { ok=1 } END { exit !ok }' metrics.txt && grep -q '^hallmark_certificates{status=\"revoked\"} 1' metrics.txt"
check "no thing name or serial is a label" in_shell "! grep -q 'HM-' metrics.txt"

echo "# across a restart"
stop_server
start_server --alarm-webhook "https://localhost:$(cat receiver-port.txt)/alarms" --alarm-webhook-key-file webhook.key --alarm-webhook-ca hook.pem \
  --metrics-port 0 --metrics-port-file metrics-port.txt
check "the open violations are still in alarm" in_shell "H alarms list | grep -q 'in-alarm.$(U s 2).guard/few-denials' && H alarms list | grep -q 'in-alarm.$(U f 10)'"
check "and the report ids still only go up: an old report id is a replay" in_shell \
  "C m 1 raw json <(python3 -c \"import json; print(json.dumps({'header':{'report_id':5,'version':'1.0'},'custom_metrics':{'x':[{'number':1}]}}))\") > old.json && [ \"\$(field old.json \"['payload']['hallmarkCode']\")\" = report_replayed ]"
stop_server
finish defender 49
