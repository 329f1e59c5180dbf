#!/usr/bin/env bash
# End-to-end: `hallmark serve` is killed with SIGKILL while devices enrol, at a random moment, and
# restarted, several times over; registry checkpoints run meanwhile. Then every device sends its CSR
# again. Nothing issued may be lost (each certificate a device received comes back to it) and
# nothing issued twice (one certificate per device in the registry). The devices are Python's ssl
# and http.client over keep-alive connections, with keys and CSRs from the `cryptography` package.
set -uo pipefail
source "$(dirname "$0")/checks.sh"
export HALLMARK_PASSPHRASE="crash-passphrase-$$"
DEVICES=${DEVICES:-1500}
CYCLES=${CYCLES:-4}

must "ca init" "$HALLMARK" ca init --data-dir "$DATA" --organization "Crash OEM"
ROOT="$DATA/ca/root.pem"
must "the fleet's keys" in_shell "python3 '$E2E/crash_load.py' make '$DEVICES' fleet > allowlist.csv"
must "allowlist import" "$HALLMARK" allowlist import --data-dir "$DATA" allowlist.csv

interrupted=0
for cycle in $(seq 1 "$CYCLES"); do
  start_server
  python3 "$E2E/crash_load.py" enrol fleet "$(cat port.txt)" "$ROOT" 2>>load.err &
  LOAD=$!
  sleep "0.$((RANDOM % 7 + 3))"  # a random moment of the load, not a wait for a condition
  kill -KILL "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=""
  status=0; wait "$LOAD" || status=$?
  if [ "$status" = 1 ]; then echo "FAIL an enrollment was answered with something other than a certificate:"; cat load.err; exit 1; fi
  if [ "$status" = 2 ]; then interrupted=$((interrupted + 1)); fi
  echo "cycle $cycle: killed with $(wc -l < fleet/issued.txt) certificates answered so far"
done
check "SIGKILL while devices were enrolling, $interrupted of $CYCLES times ($(wc -l < fleet/issued.txt) of $DEVICES devices answered)" \
  test "$interrupted" -ge 1

start_server
check "the remaining devices enrol after the last restart" python3 "$E2E/crash_load.py" enrol fleet "$(cat port.txt)" "$ROOT"
check "every device has its certificate" test "$(wc -l < fleet/issued.txt)" -eq "$DEVICES"
python3 "$E2E/crash_load.py" retry fleet "$(cat port.txt)" "$ROOT" > retried.txt
check "nothing lost: every device's CSR, sent again, returns the certificate it was given" \
  diff <(sort fleet/issued.txt) <(sort retried.txt)
"$HALLMARK" registry certificates --data-dir "$DATA" --limit $((DEVICES * 2)) > certificates.txt
check "nothing issued twice: $DEVICES certificates in the registry for $DEVICES devices" \
  test "$(grep -c CRASH- certificates.txt)" -eq "$DEVICES"
"$HALLMARK" registry status --data-dir "$DATA" > status.txt
check "the registry counts $DEVICES things" grep -Eq "things:? +$DEVICES\b" status.txt
check "no crash or internal error in the server log" refused grep -Eq "Fatal error|internal_error" server.log
stop_server
finish crash 8
