# Shared by the MQTT e2e scripts: an absolute $HALLMARK, a fresh work directory (the current
# directory from here on; KEEP=1 keeps it), check counting, the event log. The sourcing script sets
# SERVER to the server's pid once it starts it.
HALLMARK="${HALLMARK:?set HALLMARK to the hallmark binary}"
HALLMARK="$(cd "$(dirname "$HALLMARK")" && pwd)/$(basename "$HALLMARK")"
WORK="$(mktemp -d)"
SERVER=""
# Safe under `set -e` too: a server already stopped is no failure of the script.
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
cd "$WORK"
DATA="$WORK/data"
passed=0; failed=0
check() { # name, command...
  local name="$1"; shift
  if "$@" >check.out 2>&1; then passed=$((passed+1)); echo "ok   $name"; else failed=$((failed+1)); echo "FAIL $name"; sed 's/^/     /' check.out | tail -15; fi
}
refused() { ! "$@"; }
# The event log, newest first, kept in events.txt for the checks that count in it.
events() { "$HALLMARK" registry events --data-dir "$DATA" --limit 1000 >events.txt; cat events.txt; }
event() { events >/dev/null; grep -q -- "$1" events.txt; }
