#!/usr/bin/env bash
# The tamper-evident event log against outside code: its checkpoints' signatures checked with
# Python `cryptography`, its root recomputed from exported leaves with `pymerkle`, its proofs
# checked by RFC 9162's algorithms written in Python; tenants' entries kept apart; and rows of
# the SQLite file edited, deleted and reordered, each caught by `hallmark log verify`.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="log-test-passphrase"

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
ROOT="$DATA/ca/root.pem"
ACME=$("$HALLMARK" tenant create --data-dir "$DATA" acme --name "Acme Meters" | awk '/credential:/ {print $2}')
OPERATOR=$("$HALLMARK" tenant credential --data-dir "$DATA" default)
for d in DEV-1 DEV-2 DEV-3 ACME-1; do openssl ecparam -name prime256v1 -genkey -noout -out $d.key; done
allow() { for d in "$@"; do printf '%s,%s\n' $d "$(openssl pkey -in $d.key -pubout -outform DER | base64 -w0)"; done; }
{ echo udid,public_key; allow DEV-1 DEV-2 DEV-3; } > allow.csv
{ echo udid,public_key; allow ACME-1; } > acme.csv
"$HALLMARK" allowlist import --data-dir "$DATA" allow.csv >/dev/null 2>&1
"$HALLMARK" allowlist import --data-dir "$DATA" --tenant acme acme.csv >/dev/null 2>&1
start_server
B="https://localhost:$HTTPS"
enroll() { # udid [tenant]
  openssl req -new -key $1.key -subj /CN=$1 -outform DER | base64 > $1.csr &&
  curl -sf --cacert "$ROOT" -H 'Content-Type: application/pkcs10' --data-binary @$1.csr "$B/.well-known/est/${2:+$2/}simpleenroll" >/dev/null
}
for d in DEV-1 DEV-2 DEV-3; do must "$d enrols" enroll $d; done
must "ACME-1 enrols" enroll ACME-1 acme
curl -s --cacert "$ROOT" -H 'Content-Type: application/pkcs10' --data-binary @DEV-1.key "$B/.well-known/est/simpleenroll" >/dev/null  # a refusal: an event too
size() { curl -sf --cacert "$ROOT" "$B/log/v1/checkpoint" | sed -n 2p; }
events_count() { python3 -c "import sqlite3; print(sqlite3.connect('$DATA/registry.sqlite').execute('select count(*) from events').fetchone()[0])"; }

echo "# every event is a leaf, under a signed checkpoint"
check "the checkpoint covers every event within two seconds" eventually 2 in_shell "[ \"\$(size)\" = \"\$(events_count)\" ]"
check "the checkpoint is a C2SP note: origin, size, base64 root, blank line, em-dash signature" in_shell \
  "curl -sf --cacert '$ROOT' '$B/log/v1/checkpoint' | tee cp.txt | head -1 | grep -qx 'hallmark.local/log' && sed -n 4p cp.txt | grep -qx '' && sed -n 5p cp.txt | grep -q '^— hallmark.local/log '"
curl -sf --cacert "$ROOT" "$B/log/v1/key" > log.pub
check "GET /log/v1/key is the key kept beside the CA" cmp -s log.pub "$DATA/ca/log.pub"
check "the signature, pymerkle's root and RFC 9162 proofs (Python, written from the RFC)" \
  python3 "$HERE/log_check.py" server "$B" "$ROOT" "$OPERATOR" log.pub
check "entries need a credential (credential_invalid, logged as an event)" in_shell \
  "curl -s --cacert '$ROOT' '$B/log/v1/entries?start=0&end=2' | grep -q credential_invalid && sleep 0.5 && '$HALLMARK' registry events --data-dir '$DATA' --limit 5 | grep -q 'api.auth.*credential_invalid.*log/v1/entries'"
check "a tenant's credential reads its own entries only" in_shell \
  "curl -sf --cacert '$ROOT' -H 'Authorization: Bearer $ACME' \"$B/log/v1/entries?start=0&end=\$(size)\" | python3 -c 'import json,sys; e=json.load(sys.stdin)[\"entries\"]; t={x[\"event\"][\"tenant\"] for x in e}; print(len(e), t); sys.exit(0 if e and t == {\"acme\"} else 1)'"
check "a proof outside the signed tree is refused (400), not a 500" in_shell \
  "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert '$ROOT' '$B/log/v1/proof?index=999999&size=1000000')\" = 400 ]"
check "hallmark log verify --server checks the served log" "$HALLMARK" log verify --data-dir "$DATA" --server "$B" --credential "$OPERATOR"
check "hallmark log proof DEV-1 prints a proof an auditor checks alone" in_shell \
  "'$HALLMARK' log proof --data-dir '$DATA' DEV-1 > proof.json && python3 '$HERE/log_check.py' proof proof.json"
head -c 300 /dev/urandom | base64 > garbage.csr
for i in $(seq 1 80); do
  curl -s -o /dev/null --cacert "$ROOT" -H 'Content-Type: application/pkcs10' --data-binary @garbage.csr "$B/.well-known/est/simpleenroll"
done
check "a flood of 80 malformed CSRs from one host writes 60 events; the rest are counted" in_shell \
  "sleep 0.5; n=\$('$HALLMARK' registry events --data-dir '$DATA' --limit 1000 | grep -c csr_malformed); echo \"\$n events\"; [ \"\$n\" -eq 60 ]"
FIRST=$(size)
stop_server

echo "# the log survives a restart, consistent with what it signed before"
start_server
B="https://localhost:$HTTPS"
enroll DEV-1 >/dev/null
check "after a restart the tree grows, consistent with the earlier checkpoint" eventually 3 in_shell \
  "[ \"\$(size)\" -gt $FIRST ] && python3 '$HERE/log_check.py' server '$B' '$ROOT' '$OPERATOR' log.pub"
stop_server
check "hallmark log verify: the untouched data directory verifies" "$HALLMARK" log verify --data-dir "$DATA"

echo "# rows of the SQLite file rewritten behind Hallmark's back"
tamper() { # name, SQL: a copy of the data directory with the statements applied, triggers dropped
  rm -rf "$1" && cp -r "$DATA" "$1" && python3 - "$1/registry.sqlite" "$2" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for t in ["events_are_append_only_update", "events_are_append_only_delete", "log_leaves_are_append_only_update"]:
    c.execute(f"DROP TRIGGER IF EXISTS {t}")
c.executescript(sys.argv[2])
c.commit()
PY
}
caught() { # data directory, pattern: log verify fails (log_inconsistent) and names the finding
  local out; out=$("$HALLMARK" log verify --data-dir "$1" 2>&1); echo "$out"
  grep -q log_inconsistent <<<"$out" && grep -qE -- "$2" <<<"$out"
}
tamper edited "UPDATE events SET detail = 'nothing happened' WHERE id = 3"
check "an edited event row is caught" caught edited "leaf 2: event 3 was edited"
tamper deleted "DELETE FROM events WHERE id = 4"
check "a deleted event row is caught" caught deleted "event 4 was deleted"
tamper reordered "UPDATE events SET detail = (SELECT detail FROM events WHERE id = 6), code = (SELECT code FROM events WHERE id = 6) WHERE id = 5"
check "an event moved over another is caught" caught reordered "event 5 was edited"
tamper rehashed "UPDATE events SET detail = 'forged' WHERE id = 3;
  UPDATE log_leaves SET hash = (SELECT hash FROM log_leaves WHERE idx = 0) WHERE idx = 2"
check "an edit with its leaf hash rewritten too is caught by the signed root" caught rehashed "does not have the root its signed checkpoint gives"
tamper inserted "INSERT INTO events (id, at, tenant_id, action, decision, code, detail) VALUES (2, 0, 'default', 'enroll', 'allow', 'issued', 'backdated') ON CONFLICT DO NOTHING;
  DELETE FROM events WHERE id = 2; INSERT INTO events (id, at, tenant_id, action, decision, code, detail) VALUES (2, 0, 'default', 'enroll', 'allow', 'issued', 'backdated')"
check "an event replaced by a backdated one is caught" caught inserted "event 2 was edited"
finish log 19
