#!/usr/bin/env bash
# End-to-end: `hallmark serve` driven by real clients only — curl for EST, openssl for keys,
# CSRs, PKCS#7 and chain verification, pkilint for the RFC 5280 profile.
# Every bad input must get its 4xx with the right code and leave the server healthy.
set -euo pipefail
HALLMARK=${HALLMARK:-$(pwd)/.build/debug/hallmark}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"
export HALLMARK_PASSPHRASE="e2e-passphrase-$$"
DATA="$WORK/data"
PASS=0
ok() { PASS=$((PASS + 1)); echo "  ok - $*"; }
die() { echo "  FAIL - $*" >&2; [ -f server.log ] && tail -20 server.log >&2; exit 1; }

echo "# CA and allowlist"
"$HALLMARK" ca init --data-dir "$DATA" --organization "E2E OEM" >/dev/null
ROOT="$DATA/ca/root.pem"; CHAIN="$DATA/ca/chain.pem"
openssl x509 -in "$DATA/ca/issuing.pem" -out issuing.pem
"$HALLMARK" ca init --data-dir "$DATA" 2>err.txt && die "second ca init succeeded"
grep -q ca_already_initialised err.txt && ok "second ca init refused (ca_already_initialised)"
HALLMARK_PASSPHRASE=wrong-passphrase "$HALLMARK" serve --data-dir "$DATA" 2>err.txt && die "serve with wrong passphrase started"
grep -q passphrase_wrong err.txt && ok "wrong passphrase refused (passphrase_wrong)"
grep -rq "PRIVATE KEY" "$DATA/ca" && die "a private key is stored in clear"
ok "no private key in clear in the data directory"

for d in dev1 dev2 dev3 dev4; do
  openssl ecparam -name prime256v1 -genkey -noout -out $d.key 2>/dev/null
  openssl pkey -in $d.key -pubout -out $d.pub
done
{
  echo "udid,public_key"
  printf 'E2E-DEV-1,"%s"\n' "$(cat dev1.pub)"                                    # PEM, quoted over lines
  echo "E2E-DEV-2,$(openssl pkey -pubin -in dev2.pub -outform DER | base64 -w0)"   # base64 DER
  echo "E2E-DEV-3,$(openssl pkey -pubin -in dev3.pub -outform DER | base64 -w0)"
  echo "E2E-DEV-4,$(openssl pkey -pubin -in dev4.pub -outform DER | base64 -w0)"
} > allowlist.csv
printf 'udid,public_key\nBAD ROW,xyz\nE2E-DEV-9,not-a-key\n' > bad.csv
"$HALLMARK" allowlist import --data-dir "$DATA" bad.csv >out.txt 2>&1 && die "bad allowlist imported"
grep -q "line 2" out.txt && grep -q "line 3" out.txt && ok "invalid allowlist rows reported by line, nothing imported"
"$HALLMARK" allowlist import --data-dir "$DATA" allowlist.csv >out.txt 2>&1 || die "import failed: $(cat out.txt)"
grep -q "Imported 4 device" out.txt && ok "allowlist imported (PEM and base64 DER keys)"

echo "# a large allowlist, read a megabyte at a time"
python3 - > big.csv <<'PY'
import base64
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
def spki():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return base64.b64encode(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
rows = [("BIG-%05d" % i, spki()) for i in range(12000)]
print("udid,public_key")
for i, row in enumerate(rows):
    print("%s,%s" % row)
print("%s,%s" % rows[10])            # line 12002: repeats line 12
print("%s,%s" % (rows[20][0], spki()))  # line 12003: line 22's UDID, another key
print("BIG-EXTRA,%s" % rows[30][1])  # line 12004: line 32's key, another UDID
PY
[ "$(stat -c %s big.csv)" -gt 1048576 ] || die "big.csv should span several read chunks"
"$HALLMARK" ca init --data-dir big >/dev/null
"$HALLMARK" allowlist import --data-dir big big.csv >out.txt 2>&1 && die "an allowlist with conflicting rows imported"
grep -q "Nothing imported: 2 invalid row(s) in 12003" out.txt && grep -q "line 12003 (BIG-00020): allowlist_conflict: UDID already listed on line 22" out.txt \
  && grep -q "line 12004 (BIG-EXTRA): allowlist_conflict: Key already listed on line 32" out.txt \
  && grep -q "line 12002 (BIG-00010): duplicate: Repeats line 12" out.txt && ok "12,003-row CSV: duplicate and conflicts reported by line, nothing imported" \
  || die "large import report: $(cat out.txt)"
"$HALLMARK" registry events --data-dir big --code allowlist_invalid >out.txt 2>&1
grep -q "nothing imported: 2 invalid of 12003 rows" out.txt && ok "the refused import is an event" || die "refused import event: $(cat out.txt)"
"$HALLMARK" allowlist import --data-dir big big.csv --skip-invalid >out.txt 2>&1 || die "skip-invalid import failed: $(cat out.txt)"
grep -q "Imported 12000 device(s) in .* 0 already present, 1 duplicate row(s), 2 invalid skipped" out.txt \
  && ok "--skip-invalid imports the 12,000 valid rows" || die "$(cat out.txt)"
"$HALLMARK" allowlist import --data-dir big big.csv --skip-invalid >out.txt 2>&1 || die "re-import failed: $(cat out.txt)"
grep -q "Imported 0 device(s) in .* 12000 already present" out.txt && ok "a second import of the file changes nothing" || die "$(cat out.txt)"
printf '[{"udid": "JSON-1", "public_key": "%s"}]\n' "$(openssl pkey -pubin -in dev1.pub -outform DER | base64 -w0)" > one.json
"$HALLMARK" allowlist import --data-dir big one.json >out.txt 2>&1 && grep -q "Imported 1 device" out.txt \
  && ok "JSON allowlist imported" || die "JSON import: $(cat out.txt)"
"$HALLMARK" allowlist import --data-dir big "$WORK" >out.txt 2>&1 && die "a directory imported as an allowlist"
grep -q "not_found" out.txt && ok "a directory given as the allowlist is refused (not_found)" || die "$(cat out.txt)"

echo "# serve"
"$HALLMARK" serve --data-dir "$DATA" --https-host 127.0.0.1 --https-port 0 --mqtt-host 127.0.0.1 --mqtt-port 0 --port-file port.txt 2>server.log &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s port.txt ] && break; sleep 0.1; done
PORT=$(cat port.txt); URL="https://localhost:$PORT"
curl -sf --cacert "$ROOT" "$URL/healthz" | grep -q ok && ok "healthz over TLS, server certificate verified for localhost"
curl -sf --cacert "$ROOT" "https://127.0.0.1:$PORT/healthz" >/dev/null && ok "server certificate valid for 127.0.0.1"

echo "# EST with curl + openssl"
curl -sf --cacert "$ROOT" "$URL/.well-known/est/cacerts" -D headers.txt | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem
[ "$(grep -c 'BEGIN CERTIFICATE' cacerts.pem)" = 2 ] && ok "cacerts: certs-only PKCS#7 with issuing CA and root"
grep -qi "content-type: application/pkcs7-mime" headers.txt && grep -qi "content-transfer-encoding: base64" headers.txt && ok "cacerts content type and transfer encoding per RFC 7030"
curl -sf --cacert "$ROOT" "$URL/.well-known/est/csrattrs" | base64 -d | openssl asn1parse -inform DER | grep -q "ecdsa-with-SHA256" && ok "csrattrs asks for ecdsa-with-SHA256"

csr() { openssl req -new -key "$1" -subj "$2" -outform DER 2>/dev/null | base64; }
enroll() { # $1 body file, $2 extra curl args...; prints status, body to resp.txt
  local body=$1; shift
  curl -s --cacert "$ROOT" -o resp.txt -w '%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @"$body" "$@"
}
csr dev1.key "/CN=E2E-DEV-1" > dev1.csr
[ "$(enroll dev1.csr "$URL/.well-known/est/simpleenroll")" = 200 ] || die "enroll dev1: $(cat resp.txt)"
base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 -out dev1.pem
openssl verify -CAfile "$ROOT" -untrusted issuing.pem dev1.pem | grep -q ": OK" && ok "issued certificate passes openssl verify against the chain"
openssl x509 -in dev1.pem -noout -subject | grep -q "CN *= *E2E-DEV-1" && ok "subject CN is the thing name"
TEXT=$(openssl x509 -in dev1.pem -noout -text)
echo "$TEXT" | grep -q "TLS Web Client Authentication" && echo "$TEXT" | grep -q "CA:FALSE" && echo "$TEXT" | grep -q "Digital Signature" && ok "profile: clientAuth, CA:FALSE, digitalSignature"
SERIAL1=$(openssl x509 -in dev1.pem -noout -serial)
[ ${#SERIAL1} -ge 23 ] && ok "serial has at least 64 bits ($SERIAL1)"
[ "$(openssl x509 -in dev1.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" = "$(openssl pkey -pubin -in dev1.pub -outform DER | sha256sum)" ] && ok "certificate certifies the root-of-trust key"

echo "# pkilint"
openssl x509 -in "$DATA/ca/tls-server.pem" -out server.pem
for cert in dev1.pem issuing.pem "$ROOT"; do
  lint_pkix_cert lint -s WARNING "$cert" > lint.txt || die "pkilint findings on $cert: $(cat lint.txt)"
done
ok "pkilint: no finding at WARNING or above (device, issuing CA, root)"
# The TLS server certificate names "localhost" on purpose (clients connect to it by that name);
# pkilint's domain-name syntax check rejects single-label names, and that must be its only finding.
lint_pkix_cert lint -s WARNING server.pem > lint.txt && die "expected the localhost finding"
[ "$(grep -c '(ERROR)\|(WARNING)\|(FATAL)' lint.txt)" = 1 ] && grep -q 'invalid_domain_name_syntax (ERROR): Invalid domain name syntax: "localhost"' lint.txt \
  && ok "pkilint: TLS server certificate clean but for the deliberate 'localhost' SAN"
lint_pkix_signer_signee_cert_chain lint -s WARNING issuing.pem dev1.pem > lint.txt || die "chain lint: $(cat lint.txt)"
lint_pkix_signer_signee_cert_chain lint -s WARNING "$ROOT" issuing.pem > lint.txt || die "chain lint: $(cat lint.txt)"
ok "pkilint chain: issuing CA -> device, root -> issuing CA clean"

echo "# retry is idempotent"
csr dev1.key "/CN=E2E-DEV-1" > dev1-again.csr
[ "$(enroll dev1-again.csr "$URL/.well-known/est/simpleenroll")" = 200 ] || die "retry: $(cat resp.txt)"
[ "$(base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -serial)" = "$SERIAL1" ] && ok "retry with a fresh CSR for the same key returns the same certificate"

echo "# refusals"
expect_refusal() { # status code description body-file [curl args...]
  local status=$1 code=$2 what=$3 body=$4; shift 4
  local got
  got=$(curl -s --cacert "$ROOT" -o resp.txt -w '%{http_code}' --data-binary @"$body" "$@")
  [ "$got" = "$status" ] || die "$what: expected $status, got $got: $(cat resp.txt)"
  grep -q "\"code\":\"$code\"" resp.txt || die "$what: expected code $code: $(cat resp.txt)"
  grep -q '"remedy"' resp.txt || die "$what: no remedy in $(cat resp.txt)"
  ok "$what -> $status $code"
}
SE="$URL/.well-known/est/simpleenroll"; CT=(-H 'Content-Type: application/pkcs10')
expect_refusal 415 unsupported_media_type "wrong content type" dev1.csr -H 'Content-Type: text/plain' "$SE"
echo '!!!not base64!!!' > garbage.txt
expect_refusal 400 body_encoding_invalid "malformed base64" garbage.txt "${CT[@]}" "$SE"
head -c 300 /dev/urandom | base64 > randomder.txt
expect_refusal 400 csr_malformed "garbage DER" randomder.txt "${CT[@]}" "$SE"
head -c 1200000 /dev/zero | base64 > huge.txt
expect_refusal 413 body_too_large "a 1.6 MB body" huge.txt "${CT[@]}" "$SE"
: > empty.txt
expect_refusal 400 body_encoding_invalid "empty body" empty.txt "${CT[@]}" "$SE"
openssl ecparam -name prime256v1 -genkey -noout -out stranger.key 2>/dev/null
csr stranger.key "/CN=COUNTERFEIT-1" > stranger.csr
expect_refusal 403 unknown_device "counterfeit UDID" stranger.csr "${CT[@]}" "$SE"
csr stranger.key "/CN=E2E-DEV-2" > mismatch.csr
expect_refusal 403 key_mismatch "CSR key is not the root-of-trust key" mismatch.csr "${CT[@]}" "$SE"
csr stranger.key "/CN=E2E-DEV-1" > clone.csr
expect_refusal 403 clone_suspected "enrolled UDID with another key" clone.csr "${CT[@]}" "$SE"
"$HALLMARK" registry devices --data-dir "$DATA" --status quarantined > quarantined.txt
grep -q E2E-DEV-1 quarantined.txt || die "the suspected clone's device was not quarantined"
ok "the suspected clone's device is quarantined (the product's default response)"
"$HALLMARK" registry set-status --data-dir "$DATA" E2E-DEV-1 enrolled --reason "e2e: inspected, genuine" >/dev/null
ok "an operator releases it"
csr dev3.key "/O=No UDID here" > nocn.csr
expect_refusal 400 udid_missing "CSR without CN" nocn.csr "${CT[@]}" "$SE"
openssl genrsa -out rsa.key 2048 2>/dev/null
csr rsa.key "/CN=E2E-DEV-3" > rsa.csr
expect_refusal 400 key_algorithm_not_allowed "RSA key" rsa.csr "${CT[@]}" "$SE"
# Tamper with the last byte of the signature: the CSR still parses, its signature no longer verifies.
openssl req -new -key dev3.key -subj "/CN=E2E-DEV-3" -outform DER -out dev3.der 2>/dev/null
python3 - <<'PY'
import base64, sys
der = bytearray(open("dev3.der", "rb").read())
der[-1] ^= 0x01
open("tampered.csr", "w").write(base64.b64encode(bytes(der)).decode())
PY
expect_refusal 400 csr_signature_invalid "tampered CSR signature" tampered.csr "${CT[@]}" "$SE"
curl -sf --cacert "$ROOT" "$URL/healthz" >/dev/null && ok "server healthy after every bad input"

echo "# simplereenroll over mutual TLS"
SRE="$URL/.well-known/est/simplereenroll"
expect_refusal 403 client_certificate_required "reenroll without client certificate" dev1.csr "${CT[@]}" "$SRE"
openssl req -x509 -new -key stranger.key -subj "/CN=E2E-DEV-1" -days 2 -out fake.pem 2>/dev/null
expect_refusal 403 client_certificate_invalid "reenroll with a certificate from another CA" dev1.csr "${CT[@]}" --cert fake.pem --key stranger.key "$SRE"
[ "$(enroll dev1.csr "$SRE" --cert dev1.pem --key dev1.key)" = 200 ] || die "reenroll: $(cat resp.txt)"
base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs -out dev1-renewed.pem
SERIAL2=$(openssl x509 -in dev1-renewed.pem -noout -serial)
[ "$SERIAL2" != "$SERIAL1" ] && openssl verify -CAfile "$ROOT" -untrusted issuing.pem dev1-renewed.pem >/dev/null && ok "renewal issued a new valid certificate"
[ "$(enroll dev1.csr "$SRE" --cert dev1.pem --key dev1.key)" = 200 ] || die "repeat reenroll: $(cat resp.txt)"
[ "$(base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -serial)" = "$SERIAL2" ] && ok "repeating the renewal with the old certificate returns the same renewal"
# A client that resumes its TLS session presents no certificate in the new handshake: the server
# must still know the one the session was established with.
python3 - "$PORT" "$ROOT" dev1.pem dev1.key dev1.csr > resumed.txt <<'PY' || die "renewal over a resumed TLS session: $(cat resumed.txt)"
import socket, ssl, sys
port, root, cert, key, body = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], open(sys.argv[5], "rb").read()
context = ssl.create_default_context(cafile=root)
context.load_cert_chain(cert, key)
request = (f"POST /.well-known/est/simplereenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
def renew(session=None):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            return answer.split(b"\r\n", 1)[0].decode(), tls.session, tls.session_reused
status, session, _ = renew()
assert status.endswith("200 OK"), f"first connection: {status}"
status, _, reused = renew(session)
assert reused, "the second connection did not resume the TLS session"
assert status.endswith("200 OK"), f"resumed connection: {status}"
print("ok")
PY
ok "renewal over a resumed TLS session: the session's client certificate still counts"
openssl ecparam -name prime256v1 -genkey -noout -out dev1-new.key 2>/dev/null
csr dev1-new.key "/CN=E2E-DEV-1" > dev1-newkey.csr
[ "$(enroll dev1-newkey.csr "$SRE" --cert dev1-renewed.pem --key dev1.key)" = 200 ] && ok "renewal with a new key accepted"
csr dev1.key "/CN=E2E-DEV-2" > other.csr
expect_refusal 403 subject_mismatch "renewal naming another device" other.csr "${CT[@]}" --cert dev1-renewed.pem --key dev1.key "$SRE"

echo "# event log"
"$HALLMARK" registry events --data-dir "$DATA" --limit 200 > events.txt
for code in issued returned_existing renewed unknown_device key_mismatch clone_suspected csr_signature_invalid body_too_large unsupported_media_type client_certificate_invalid; do
  grep -q "$code" events.txt || die "no $code event"
done
ok "every decision above is in the event log"
grep -qi "passphrase\|BEGIN EC PRIVATE\|$HALLMARK_PASSPHRASE" server.log && die "secret in server log"
ok "no secret in the server log"

echo "# quarantine and decommission"
"$HALLMARK" registry set-status --data-dir "$DATA" E2E-DEV-4 quarantined >/dev/null
csr dev4.key "/CN=E2E-DEV-4" > dev4.csr
expect_refusal 403 device_quarantined "quarantined device" dev4.csr "${CT[@]}" "$SE"
"$HALLMARK" registry set-status --data-dir "$DATA" E2E-DEV-4 decommissioned >/dev/null
expect_refusal 403 device_decommissioned "decommissioned device" dev4.csr "${CT[@]}" "$SE"

echo "# an import beside the running server"
openssl ecparam -name prime256v1 -genkey -noout -out dev5.key 2>/dev/null
printf 'udid,public_key\nE2E-DEV-5,%s\n' "$(openssl pkey -in dev5.key -pubout -outform DER | base64 -w0)" > late.csv
csr dev5.key "/CN=E2E-DEV-5" > dev5.csr
expect_refusal 403 unknown_device "a device not yet imported" dev5.csr "${CT[@]}" "$SE"
"$HALLMARK" allowlist import --data-dir "$DATA" late.csv >out.txt 2>&1 || die "late import failed: $(cat out.txt)"
[ "$(enroll dev5.csr "$SE")" = 200 ] && ok "a device imported while the server runs enrols at once"

echo "# graceful shutdown and persistence"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" && ok "SIGTERM: graceful shutdown, exit 0"
SERVER_PID=""
rm -f port.txt
"$HALLMARK" serve --data-dir "$DATA" --https-host 127.0.0.1 --https-port 0 --mqtt-host 127.0.0.1 --mqtt-port 0 --port-file port.txt 2>>server.log &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s port.txt ] && break; sleep 0.1; done
URL="https://localhost:$(cat port.txt)"
csr dev2.key "/CN=E2E-DEV-2" > dev2.csr
[ "$(enroll dev2.csr "$URL/.well-known/est/simpleenroll")" = 200 ] || die "enroll dev2 after restart"
base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -serial > dev2.serial
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
rm -f port.txt
"$HALLMARK" serve --data-dir "$DATA" --https-host 127.0.0.1 --https-port 0 --mqtt-host 127.0.0.1 --mqtt-port 0 --port-file port.txt 2>>server.log &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s port.txt ] && break; sleep 0.1; done
URL="https://localhost:$(cat port.txt)"
[ "$(enroll dev2.csr "$URL/.well-known/est/simpleenroll")" = 200 ] || die "retry after kill"
[ "$(base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -serial)" = "$(cat dev2.serial)" ] && ok "after SIGKILL and restart the retry returns the certificate issued before: nothing lost, nothing issued twice"

echo "passed: $PASS checks"
