# The harness every e2e script sources: an absolute $HALLMARK, a fresh work directory (the current
# directory from here on; KEEP=1 keeps it), check counting, polls that time out, the server's start,
# the event log. A script ends with `finish NAME EXPECTED`: it exits non-zero when a check failed or
# when it ran another number of checks than it expects (a check skipped is a check that cannot fail).
#
# Checks are `check "what" command...`: the command's exit status decides, whatever `set -e` says.
# Setup that must hold for the rest to mean anything is `must "what" command...`: it stops the script.
HALLMARK="${HALLMARK:?set HALLMARK to the hallmark binary}"
HALLMARK="$(cd "$(dirname "$HALLMARK")" && pwd)/$(basename "$HALLMARK")"
E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d)"
SERVER=""
# Safe under `set -e` too: a server already stopped is no failure of the script.
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
cd "$WORK"
DATA="$WORK/data"
passed=0; failed=0

check() { # what, command...
  local name="$1"; shift
  if "$@" >check.out 2>&1; then passed=$((passed+1)); echo "ok   $name"
  else failed=$((failed+1)); echo "FAIL $name"; sed 's/^/     /' check.out | tail -15; fi
}
# A check of an effect the server applies on its own time (a change it reads from the registry's
# feed): the command is tried every 0.1 s until it holds or SECONDS pass.
eventually() { # seconds, command...
  local tries; tries=$(awk -v s="$1" 'BEGIN { print int(s * 10) }'); shift
  until "$@"; do tries=$((tries - 1)); [ "$tries" -gt 0 ] || return 1; sleep 0.1; done
}
must() { # what, command...: a step the rest depends on; the script stops when it fails
  local name="$1"; shift
  if ! "$@" >must.out 2>&1; then
    echo "FAIL $name (the rest of the script depends on it)"; sed 's/^/     /' must.out | tail -20
    [ -f server.log ] && { echo "     server.log:"; tail -20 server.log | sed 's/^/     /'; }
    exit 1
  fi
}
refused() { ! "$@"; }
# Runs a check's shell text in a subshell of this one (its functions and variables included).
in_shell() { ( set +o pipefail; eval "$1" ); }

# Starts `hallmark serve` on loopback with ephemeral ports, the given extra options and server.log;
# waits (up to 20 s) for its port files and sets SERVER, HTTPS, MQTT and REVOCATION.
start_server() { # extra serve options...
  rm -f port.txt mqtt-port.txt revocation-port.txt
  "$HALLMARK" serve --data-dir "$DATA" --https-host 127.0.0.1 --https-port 0 --mqtt-host 127.0.0.1 --mqtt-port 0 \
    --revocation-port 0 --revocation-port-file revocation-port.txt \
    --port-file port.txt --mqtt-port-file mqtt-port.txt "$@" 2>>server.log &
  SERVER=$!
  must "hallmark serve starts" eventually 20 test -s port.txt -a -s mqtt-port.txt
  HTTPS=$(cat port.txt); MQTT=$(cat mqtt-port.txt); REVOCATION=$(cat revocation-port.txt)
}
# Stops the server with SIGTERM and checks it exits 0 (a graceful shutdown).
stop_server() {
  local rc=0
  kill -TERM "$SERVER"; wait "$SERVER" || rc=$?
  SERVER=""
  check "SIGTERM stops the server cleanly" test "$rc" -eq 0
}

# Waits (up to 5 s) until a file holds a line matching the pattern: a subscriber's SUBACK, a
# background client's output.
wait_for_line() { # file, pattern
  eventually 5 grep -q -- "$2" "$1"
}

# mosquitto_sub with its output line-buffered (under `timeout` and `bash -c` too), so a poll of its
# file sees the SUBACK when it comes.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexec stdbuf -oL %s "$@"\n' "$(command -v mosquitto_sub || echo mosquitto_sub)" > "$WORK/bin/mosquitto_sub"
chmod +x "$WORK/bin/mosquitto_sub"
PATH="$WORK/bin:$PATH"

# The event log, newest first, kept in events.txt for the checks that count in it.
events() { "$HALLMARK" registry events --data-dir "$DATA" --limit 1000 >events.txt; cat events.txt; }
event() { events >/dev/null; grep -q -- "$1" events.txt; }

finish() { # suite name, expected number of checks
  local ran=$((passed + failed))
  echo "$1: $passed passed, $failed failed, $ran run of $2 expected"
  if [ "$ran" -ne "$2" ]; then echo "FAIL $1 ran $ran checks, expected $2"; exit 1; fi
  [ "$failed" -eq 0 ] || exit 1
  exit 0
}
