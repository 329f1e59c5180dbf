#!/usr/bin/env bash
# End-to-end: `hallmark serve` is killed with SIGKILL while devices enrol, at a random moment, and
# restarted, several times over; registry checkpoints run meanwhile. Then every device sends its CSR
# again. Nothing issued may be lost (each certificate a device received comes back to it) and
# nothing issued twice (one certificate per device in the registry). The devices are Python's ssl
# and http.client over keep-alive connections, with keys and CSRs from the `cryptography` package.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="crash-passphrase-$$"
DEVICES=${DEVICES:-1500}
CYCLES=${CYCLES:-4}

"$HALLMARK" ca init --data-dir "$DATA" --organization "Crash OEM" >/dev/null
ROOT="$DATA/ca/root.pem"
python3 "$HERE/crash_load.py" make "$DEVICES" fleet > allowlist.csv
"$HALLMARK" allowlist import --data-dir "$DATA" allowlist.csv >import.txt 2>&1 || { cat import.txt; exit 1; }

start() {
  rm -f port.txt
  "$HALLMARK" serve --data-dir "$DATA" --https-host 127.0.0.1 --https-port 0 --mqtt-host 127.0.0.1 --mqtt-port 0 \
    --port-file port.txt 2>>server.log &
  SERVER=$!
  for _ in $(seq 1 200); do [ -s port.txt ] && break; sleep 0.05; done
  [ -s port.txt ] || { echo "server did not start"; tail -20 server.log; exit 1; }
}

interrupted=0
for cycle in $(seq 1 "$CYCLES"); do
  start
  python3 "$HERE/crash_load.py" enrol fleet "$(cat port.txt)" "$ROOT" 2>>load.err &
  LOAD=$!
  sleep "0.$((RANDOM % 7 + 3))"
  kill -KILL "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=""
  status=0; wait "$LOAD" || status=$?
  [ "$status" = 1 ] && { echo "an enrollment was answered with something other than a certificate:"; cat load.err; exit 1; }
  [ "$status" = 2 ] && interrupted=$((interrupted + 1))
  echo "cycle $cycle: killed with $(wc -l < fleet/issued.txt) certificates answered so far"
done
check "SIGKILL while devices were enrolling, $interrupted of $CYCLES times ($(wc -l < fleet/issued.txt) of $DEVICES devices answered)" \
  test "$interrupted" -ge 1

start
check "the remaining devices enrol after the last restart" python3 "$HERE/crash_load.py" enrol fleet "$(cat port.txt)" "$ROOT"
check "every device has its certificate" test "$(wc -l < fleet/issued.txt)" -eq "$DEVICES"
python3 "$HERE/crash_load.py" retry fleet "$(cat port.txt)" "$ROOT" > retried.txt
check "nothing lost: every device's CSR, sent again, returns the certificate it was given" \
  diff <(sort fleet/issued.txt) <(sort retried.txt)
"$HALLMARK" registry certificates --data-dir "$DATA" --limit $((DEVICES * 2)) > certificates.txt
check "nothing issued twice: $DEVICES certificates in the registry for $DEVICES devices" \
  test "$(grep -c CRASH- certificates.txt)" -eq "$DEVICES"
"$HALLMARK" registry status --data-dir "$DATA" > status.txt
check "the registry counts $DEVICES things" grep -Eq "things:? +$DEVICES\b" status.txt
check "no crash or internal error in the server log" refused grep -Eq "Fatal error|internal_error" server.log
kill -TERM "$SERVER"; rc=0; wait "$SERVER" || rc=$?
check "SIGTERM stops the server cleanly" test "$rc" -eq 0
echo "crash: $passed passed, $failed failed"
[ "$failed" = 0 ]
