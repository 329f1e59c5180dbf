#!/usr/bin/env bash
# The listeners' limits against hostile clients: connections that never speak, TLS handshakes cut
# off halfway, request heads and bodies trickled a byte at a time (slowloris), keep-alive
# connections left idle, more half-open connections from one address than it may hold, and
# oversized headers. Each is ended on time, counted in GET /metrics, and the server keeps serving
# the clients that behave (established connections never count against the limit).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="limits-test-passphrase"
"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
PLAIN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_server --handshake-timeout 2 --http-idle-timeout 3 --http-request-timeout 2 --max-pending-per-address 4 --max-connections 16 \
  --metrics-port 0 --metrics-port-file metrics-port.txt --mqtt-plain-port "$PLAIN" --mqtt-max-publish-rate 100
must "the metrics listener is up" eventually 5 test -s metrics-port.txt
L() { python3 "$HERE/limits_client.py" "$1" 127.0.0.1 "${@:2}"; }
within() { # file, low, high: the closed_after in the file is a number in [low, high]
  python3 -c "import json,sys; v=json.load(open('$1'))['closed_after']; sys.exit(not (v is not None and $2 <= v <= $3))" || { cat "$1"; return 1; }; }
healthy() { curl -sf --cacert "$DATA/ca/root.pem" "https://localhost:$HTTPS/healthz" | grep -q ok; }
metric() { # pattern, minimum: a sample of GET /metrics matching the pattern is at least the minimum
  curl -sf "http://127.0.0.1:$(cat metrics-port.txt)/metrics" > metrics.txt &&
    awk -v p="$1" -v m="$2" 'index($0, p) == 1 { found = 1; if ($NF + 0 >= m) ok = 1 } END { exit !(found && ok) }' metrics.txt; }

echo "# connections that never finish their handshake (handshake timeout 2 s)"
check "an HTTPS connection that never speaks is closed after 2 s" in_shell "L silent $HTTPS > o.json && within o.json 1.5 4"
check "an MQTT connection that never speaks is closed after 2 s" in_shell "L silent $MQTT > o.json && within o.json 1.5 4"
check "an HTTPS TLS handshake cut off halfway is closed after 2 s" in_shell "L half-tls $HTTPS > o.json && within o.json 1.5 4"
check "an MQTT TLS handshake cut off halfway is closed after 2 s" in_shell "L half-tls $MQTT > o.json && within o.json 1.5 4"
check "a request head trickled a byte at a time (slowloris) is closed after 2 s, whatever it sends" in_shell \
  "L slowloris $HTTPS > o.json && within o.json 1.5 4"

echo "# requests and keep-alive (request timeout 2 s, idle timeout 3 s)"
check "a body trickled after its head is closed 2 s after the head" in_shell "L slow-body $HTTPS > o.json && within o.json 1.5 4"
check "a keep-alive connection left idle is closed 3 s after its response, not before" in_shell \
  "L keepalive $HTTPS 1 > o.json && python3 -c \"import json,sys; c=json.load(open('o.json'))['connections'][0]; sys.exit(not (c['status'] == 200 and 2.5 <= c['closed_after'] <= 5))\" || { cat o.json; false; }"

echo "# half-open connections from one address (at most 4 at once)"
check "6 silent MQTT connections at once: the 2 past the limit are closed at once" in_shell \
  "L hold $MQTT 6 1 > o.json && python3 -c \"import json,sys; sys.exit(json.load(open('o.json'))['closed_at_once'] != 2)\" || { cat o.json; false; }"
check "6 silent HTTPS connections at once: the 2 past the limit are closed at once" in_shell \
  "L hold $HTTPS 6 1 > o.json && python3 -c \"import json,sys; sys.exit(json.load(open('o.json'))['closed_at_once'] != 2)\" || { cat o.json; false; }"
check "once they time out, the address is served again (HTTPS)" eventually 5 healthy
check "once they time out, the address is served again (MQTT: the TLS handshake is answered)" eventually 5 in_shell \
  "openssl s_client -connect 127.0.0.1:$MQTT -servername localhost </dev/null 2>/dev/null | grep -q 'Server certificate'"
check "20 silent connections from 20 addresses (at most 16 connections in all): those past the budget are closed at once" in_shell \
  "L spread $MQTT 20 1 > o.json && python3 -c \"import json,sys; c=json.load(open('o.json'))['closed_at_once']; sys.exit(not 4 <= c < 20)\" || { cat o.json; false; }"
check "once they are gone, connections are admitted again" eventually 5 healthy
check "established connections do not count: 6 keep-alive connections from one address are all answered" in_shell \
  "L keepalive $HTTPS 6 > o.json && python3 -c \"import json,sys; c=json.load(open('o.json'))['connections']; sys.exit(not (len(c) == 6 and all(x['status'] == 200 for x in c)))\" || { cat o.json; false; }"

echo "# a flooding publisher (at most 100 PUBLISH a second)"
seq 1 300 > lines.txt
check "300 messages published at once are slowed to 100 a second (the last acknowledged after 1.5 s or more), and all 300 arrive" in_shell \
  "mosquitto_sub -h 127.0.0.1 -p $PLAIN -t flood -q 1 -C 300 -W 20 > got.txt & sleep 0.5; start=\$(date +%s.%N); mosquitto_pub -h 127.0.0.1 -p $PLAIN -t flood -q 1 -l < lines.txt; end=\$(date +%s.%N); wait; python3 -c \"import sys; e=\$end-\$start; n=len(open('got.txt').read().split()); print(e, n); sys.exit(not (e >= 1.5 and n == 300))\""
check "a well-behaved client is not held back meanwhile" in_shell "mosquitto_pub -h 127.0.0.1 -p $PLAIN -t calm -m 1 -q 1"

echo "# sizes"
check "a 20 KiB header field (limit 16 KiB) is not answered 200" in_shell \
  "L big-header $HTTPS 20000 > o.json && ! grep -q '\"status\": 200' o.json || { cat o.json; false; }"
check "a 4 KiB header field is answered 200" in_shell "L big-header $HTTPS 4000 > o.json && grep -q '\"status\": 200' o.json || { cat o.json; false; }"
check "the server still serves" healthy

echo "# every drop is counted"
check "GET /metrics counts HTTPS handshake timeouts" metric 'hallmark_connections_dropped_total{listener="https",reason="handshake_timeout"}' 3
check "GET /metrics counts MQTT handshake timeouts" metric 'hallmark_connections_dropped_total{listener="mqtt",reason="handshake_timeout"}' 2
check "GET /metrics counts HTTPS request and idle timeouts" in_shell \
  "metric 'hallmark_connections_dropped_total{listener=\"https\",reason=\"request_timeout\"}' 1 && metric 'hallmark_connections_dropped_total{listener=\"https\",reason=\"idle_timeout\"}' 1"
check "GET /metrics counts connections refused past the budget" metric 'hallmark_connections_dropped_total{listener="mqtt",reason="too_many_connections"}' 4
check "GET /metrics counts connections refused past the per-address limit" in_shell \
  "metric 'hallmark_connections_dropped_total{listener=\"https\",reason=\"too_many_pending\"}' 2 && metric 'hallmark_connections_dropped_total{listener=\"mqtt\",reason=\"too_many_pending\"}' 2"
check "GET /metrics counts the flooding publisher's pauses" metric 'hallmark_mqtt_publish_throttles_total' 1
check "promtool accepts the exposition" in_shell "curl -sf http://127.0.0.1:\$(cat metrics-port.txt)/metrics | promtool check metrics"
check "a limit given out of range is refused (config_invalid)" in_shell \
  "! '$HALLMARK' serve --data-dir '$DATA' --handshake-timeout 0 2>err.txt && grep -q config_invalid err.txt"
stop_server
finish limits 28
