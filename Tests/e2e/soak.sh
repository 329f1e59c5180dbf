#!/usr/bin/env bash
# The soak test with faults, on loopback, bounded in time (SOAK_SECONDS, 600 by default). Devices
# enrol, renew, connect and publish at a steady rate, a factory station registers against a batch
# quota, and one device floods its topic, while on a schedule: the server is killed with SIGKILL
# and restarted; bursts of silent, half-handshake and slowloris connections from 20 loopback
# addresses hit both listeners and exhaust the server's file descriptors (it runs with
# `ulimit -n 1024`); and, where a tmpfs can be mounted, the data directory's disk fills up.
# Afterwards: the server still serves, no certificate was answered that the registry lacks, none
# twice, the quota holds exactly, the event log verifies and has every enrollment, memory after a
# final burst returns near its idle level, and the faults are counted in GET /metrics.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="soak-test-passphrase"
SOAK_SECONDS=${SOAK_SECONDS:-600}
PERIODS=6
PERIOD=$((SOAK_SECONDS / PERIODS))
QUOTA=20

# The data directory on a small tmpfs of its own when this machine allows a mount, so that its
# disk can be filled without touching anyone else's.
DISK_FAULT=0
mkdir -p "$WORK/fs"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=256m tmpfs "$WORK/fs" 2>/dev/null; then
  DISK_FAULT=1
  DATA="$WORK/fs/data"
fi
GARBAGE=""
LOAD=""
trap 'kill -9 $SERVER $GARBAGE $LOAD 2>/dev/null; wait 2>/dev/null; [ "$DISK_FAULT" = 1 ] && umount -l "$WORK/fs"; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HTTPS=$(free_port); MQTT=$(free_port); REVOCATION=$(free_port); METRICS=$(free_port)
ROOT="$DATA/ca/root.pem"
DEVICES=$((SOAK_SECONDS * 12))
"$HALLMARK" ca init --data-dir "$DATA" --organization "Soak OEM" >/dev/null
must "the fleet's keys" in_shell "python3 '$HERE/soak_load.py' make $DEVICES fleet > allowlist.csv"
must "allowlist import" "$HALLMARK" allowlist import --data-dir "$DATA" allowlist.csv
"$HALLMARK" batch create --data-dir "$DATA" --quota $QUOTA > batch.txt
STATION=$(awk '/credential:/ {print $NF}' batch.txt)
BATCH=$(awk 'NR == 1 {sub(":", "", $2); print $2}' batch.txt)
must "a batch with quota $QUOTA and its station credential" test -n "$STATION" -a -n "$BATCH"

STARTS=0
serve() { # with fixed ports, so that clients find it again after a restart
  ( ulimit -n 1024; exec "$HALLMARK" serve --data-dir "$DATA" --https-host 127.0.0.1 --https-port "$HTTPS" --mqtt-host 127.0.0.1 \
      --mqtt-port "$MQTT" --revocation-port "$REVOCATION" --metrics-port "$METRICS" --log-level notice ) 2>>server.log &
  SERVER=$!
  STARTS=$((STARTS + 1))
  must "the server starts (start $STARTS)" eventually 30 in_shell "curl -sf --cacert '$ROOT' https://localhost:$HTTPS/healthz >/dev/null"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
fill_disk() { dd if=/dev/zero of="$WORK/fs/filler" bs=1M 2>/dev/null; sync; }

echo "# $SOAK_SECONDS s of load with faults: $DEVICES devices, quota $QUOTA, faults every $PERIOD s (disk fault: $DISK_FAULT)"
serve
python3 "$HERE/soak_load.py" run fleet "$HTTPS" "$MQTT" "$ROOT" "$SOAK_SECONDS" "$STATION" > load.json 2>load.err &
LOAD=$!
KILLS=0; BURSTS=0; DISK_FULLS=0
for period in $(seq 1 $PERIODS); do
  sleep $((PERIOD / 3))
  ( ulimit -n 20000; exec python3 "$HERE/soak_load.py" garbage "$HTTPS" "$MQTT" 20 20 >> garbage.json 2>>garbage.err ) &
  GARBAGE=$!
  BURSTS=$((BURSTS + 1))
  if [ "$period" = 3 ] && [ "$DISK_FAULT" = 1 ]; then
    fill_disk; DISK_FULLS=$((DISK_FULLS + 1)); echo "period $period: the data directory's disk is full"
    sleep 15; rm -f "$WORK/fs/filler"
  else
    sleep $((PERIOD / 3))
  fi
  wait "$GARBAGE" 2>/dev/null; GARBAGE=""
  if [ $((period % 2)) = 0 ]; then
    kill -KILL "$SERVER"; wait "$SERVER" 2>/dev/null; KILLS=$((KILLS + 1))
    echo "period $period: killed with SIGKILL ($(wc -l < fleet/issued.txt 2>/dev/null || echo 0) certificates answered so far)"
    serve
  fi
done
wait "$LOAD"; LOAD=""
echo "load: $(cat load.json)"

echo "# afterwards"
check "the server still serves after $KILLS kills, $BURSTS garbage bursts and $DISK_FULLS full disks" \
  in_shell "curl -sf --cacert '$ROOT' https://localhost:$HTTPS/healthz | grep -q ok"
check "the load went on throughout: enrollments, renewals, registrations, acknowledged publishes and a flood" in_shell \
  "python3 -c \"import json,sys; s=json.load(open('load.json')); print(s); sys.exit(not (s['enrolled'] > 100 and s['renewed'] > 5 and s['registered'] >= 1 and s['published'] > 100 and s['flooded'] > 1000))\""
"$HALLMARK" registry certificates --data-dir "$DATA" --limit 1000000 > certificates.txt
check "no certificate was answered that the registry lacks" in_shell \
  "comm -23 <(awk '{sub(/^0+/, \"\", \$2); print \$2}' fleet/issued.txt | sort -u) <(awk '{sub(/^0+/, \"\", \$1); print \$1}' certificates.txt | sort -u) > missing.txt; [ ! -s missing.txt ] || { head missing.txt; false; }"
check "none issued twice: at most one active certificate per device" in_shell \
  "[ -z \"\$(awk '\$2 == \"active\" {print \$3}' certificates.txt | sort | uniq -d | head -3)\" ]"
check "every device answered an enrollment has its active certificate" in_shell \
  "[ \$(awk '\$3 == \"enrol\" {print \$1}' fleet/issued.txt | sort -u | wc -l) -le \$(awk '\$2 == \"active\"' certificates.txt | wc -l) ]"
check "the quota holds exactly: $QUOTA registrations accepted, no more, the rest quota_exceeded" in_shell \
  "[ \$(grep -c ' 201 ' fleet/registered.txt) -eq $QUOTA ] && [ \$(grep -c quota_exceeded fleet/registered.txt) -ge 1 ] && '$HALLMARK' batch report --data-dir '$DATA' $BATCH | grep -qP '\t$QUOTA\t$QUOTA\t'"
check "the event log verifies (every event, every checkpoint)" "$HALLMARK" log verify --data-dir "$DATA"
"$HALLMARK" registry events --data-dir "$DATA" --limit 10000000 > events.txt
check "no event lost: every device answered a certificate has its enrollment event" in_shell \
  "comm -23 <(awk '\$3 == \"enrol\" {print \$1}' fleet/issued.txt | sort -u) <(awk -F'\t' '\$3 == \"enroll\" && \$4 == \"allow\" {print \$6}' events.txt | sort -u) > lost.txt; [ ! -s lost.txt ] || { head lost.txt; false; }"
if [ "$DISK_FAULT" = 1 ]; then
  check "the full disk was refused cleanly: 503 storage_unavailable, never a certificate without a record" in_shell \
    "grep -q '^enrol storage_unavailable 503$' fleet/refusals.txt && ! grep -q ' 500$' fleet/refusals.txt"
fi
check "no crash in the server log" refused grep -Eq "Fatal error|Segmentation|Illegal instruction" server.log

echo "# memory: two identical bursts on one server, then idle"
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null
serve
sleep 3; IDLE=$(rss)
burst() {
  python3 "$HERE/soak_load.py" run fleet "$HTTPS" "$MQTT" "$ROOT" 25 > final.json 2>>load.err &
  LOAD=$!
  ( ulimit -n 20000; exec python3 "$HERE/soak_load.py" garbage "$HTTPS" "$MQTT" 20 20 >> garbage.json 2>>garbage.err )
  wait "$LOAD"; LOAD=""
  sleep 12
}
burst; FIRST=$(rss)
burst; SECOND=$(rss)
echo "resident memory: idle $IDLE KB; after a burst and 12 s idle $FIRST KB; after a second burst $SECOND KB"
check "memory settles: a second identical burst leaves it where the first did ($SECOND KB against $FIRST KB: at most 10 % and 8 MB more)" \
  test "$SECOND" -le $((FIRST * 11 / 10 + 8192))
check "and within reach of idle ($FIRST KB against $IDLE KB idle: at most twice)" test "$FIRST" -le $((IDLE * 2))
curl -sf "http://127.0.0.1:$METRICS/metrics" > metrics.txt
check "the faults are counted: connections dropped at the handshake deadline and past the per-address limit" in_shell \
  "grep -q 'hallmark_connections_dropped_total{listener=\"mqtt\",reason=\"too_many_pending\"}' metrics.txt && grep -q 'hallmark_connections_dropped_total{listener=\"https\",reason=\"handshake_timeout\"}' metrics.txt"
check "the flood is counted: publish throttles" grep -q '^hallmark_mqtt_publish_throttles_total [1-9]' metrics.txt
stop_server
finish soak $((14 + DISK_FAULT))
