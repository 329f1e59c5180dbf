#!/usr/bin/env bash
# End-to-end: `hallmark serve` driven by real clients only — curl for EST, openssl for keys,
# CSRs, PKCS#7 and chain verification, pkilint for the RFC 5280 profile.
# Every bad input must get its 4xx with the right code and leave the server healthy.
set -uo pipefail
source "$(dirname "$0")/checks.sh"
export HALLMARK_PASSPHRASE="e2e-passphrase-$$"
# The serial of the first certificate in a base64 certs-only PKCS#7 file.
p7_serial() { base64 -d "$1" | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -serial; }

echo "# CA and allowlist"
must "ca init" "$HALLMARK" ca init --data-dir "$DATA" --organization "E2E OEM"
ROOT="$DATA/ca/root.pem"
openssl x509 -in "$DATA/ca/issuing.pem" -out issuing.pem
check "second ca init refused (ca_already_initialised)" in_shell \
  "! '$HALLMARK' ca init --data-dir '$DATA' 2>err.txt && grep -q ca_already_initialised err.txt"
check "wrong passphrase refused (passphrase_wrong)" in_shell \
  "! HALLMARK_PASSPHRASE=wrong-passphrase '$HALLMARK' serve --data-dir '$DATA' 2>err.txt && grep -q passphrase_wrong err.txt"
check "no private key in clear in the data directory" refused grep -rq "PRIVATE KEY" "$DATA/ca"
check "the hallmark binary has no benchmark command, and no registry-free signer" in_shell \
  "'$HALLMARK' --help > help.txt && ! grep -qi 'bench\|registry-free' help.txt &&
   ! '$HALLMARK' bench enroll 2>err.txt && grep -q \"unexpected arguments: 'bench'\" err.txt &&
   ! '$HALLMARK' bench registry-free-est --data-dir '$DATA' --port-file p.txt 2>/dev/null &&
   ! '$HALLMARK' registry-free-est --data-dir '$DATA' --port-file p.txt 2>/dev/null && [ ! -e p.txt ]"

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
check "invalid allowlist rows reported by line, nothing imported" in_shell \
  "! '$HALLMARK' allowlist import --data-dir '$DATA' bad.csv >out.txt 2>&1 && grep -q 'line 2' out.txt && grep -q 'line 3' out.txt"
must "allowlist import" in_shell "'$HALLMARK' allowlist import --data-dir '$DATA' allowlist.csv >out.txt 2>&1; cat out.txt"
check "allowlist imported (PEM and base64 DER keys)" grep -q "Imported 4 device" out.txt

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
must "big.csv spans several read chunks" test "$(stat -c %s big.csv)" -gt 1048576
must "ca init (big)" "$HALLMARK" ca init --data-dir big
check "12,003-row CSV: duplicate and conflicts reported by line, nothing imported" in_shell \
  "! '$HALLMARK' allowlist import --data-dir big big.csv >out.txt 2>&1; cat out.txt;
   grep -q 'Nothing imported: 2 invalid row(s) in 12003' out.txt &&
   grep -q 'line 12003 (BIG-00020): allowlist_conflict: UDID already listed on line 22' out.txt &&
   grep -q 'line 12004 (BIG-EXTRA): allowlist_conflict: Key already listed on line 32' out.txt &&
   grep -q 'line 12002 (BIG-00010): duplicate: Repeats line 12' out.txt"
check "the refused import is an event" in_shell \
  "'$HALLMARK' registry events --data-dir big --code allowlist_invalid | grep -q 'nothing imported: 2 invalid of 12003 rows'"
check "--skip-invalid imports the 12,000 valid rows" in_shell \
  "'$HALLMARK' allowlist import --data-dir big big.csv --skip-invalid 2>&1 | tee /dev/stderr |
   grep -q 'Imported 12000 device(s) in .* 0 already present, 1 duplicate row(s), 2 invalid skipped'"
check "a second import of the file changes nothing" in_shell \
  "'$HALLMARK' allowlist import --data-dir big big.csv --skip-invalid 2>&1 | tee /dev/stderr | grep -q 'Imported 0 device(s) in .* 12000 already present'"
printf '[{"udid": "JSON-1", "public_key": "%s"}]\n' "$(openssl pkey -pubin -in dev1.pub -outform DER | base64 -w0)" > one.json
check "JSON allowlist imported" in_shell "'$HALLMARK' allowlist import --data-dir big one.json 2>&1 | grep -q 'Imported 1 device'"
check "a directory given as the allowlist is refused (not_found)" in_shell \
  "! '$HALLMARK' allowlist import --data-dir big '$WORK' >out.txt 2>&1 && grep -q not_found out.txt"

echo "# serve"
start_server
URL="https://localhost:$HTTPS"
check "healthz over TLS, server certificate verified for localhost" in_shell "curl -sf --cacert '$ROOT' '$URL/healthz' | grep -q ok"
check "server certificate valid for 127.0.0.1" curl -sf --cacert "$ROOT" "https://127.0.0.1:$HTTPS/healthz"

echo "# EST with curl + openssl"
curl -sf --cacert "$ROOT" "$URL/.well-known/est/cacerts" -D headers.txt | base64 -d | openssl pkcs7 -inform DER -print_certs -out cacerts.pem
check "cacerts: certs-only PKCS#7 with issuing CA and root" test "$(grep -c 'BEGIN CERTIFICATE' cacerts.pem)" = 2
check "cacerts content type and transfer encoding per RFC 7030" in_shell \
  "grep -qi 'content-type: application/pkcs7-mime' headers.txt && grep -qi 'content-transfer-encoding: base64' headers.txt"
check "csrattrs asks for ecdsa-with-SHA256" in_shell \
  "curl -sf --cacert '$ROOT' '$URL/.well-known/est/csrattrs' | base64 -d | openssl asn1parse -inform DER | grep -q ecdsa-with-SHA256"

csr() { openssl req -new -key "$1" -subj "$2" -outform DER 2>/dev/null | base64; }
enroll() { # $1 body file, $2 extra curl args...; prints status, body to resp.txt
  local body=$1; shift
  curl -s --cacert "$ROOT" -o resp.txt -w '%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @"$body" "$@"
}
answered() { # status, enroll arguments...: the enrollment is answered with that status
  local want=$1; shift
  local got; got=$(enroll "$@"); [ "$got" = "$want" ] || { echo "expected $want, got $got: $(cat resp.txt)"; return 1; }
}
SE="$URL/.well-known/est/simpleenroll"
csr dev1.key "/CN=E2E-DEV-1" > dev1.csr
must "enroll dev1" answered 200 dev1.csr "$SE"
base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 -out dev1.pem
check "issued certificate passes openssl verify against the chain" in_shell "openssl verify -CAfile '$ROOT' -untrusted issuing.pem dev1.pem | grep -q ': OK'"
check "subject CN is the thing name" in_shell "openssl x509 -in dev1.pem -noout -subject | grep -q 'CN *= *E2E-DEV-1'"
openssl x509 -in dev1.pem -noout -text > dev1.txt
check "profile: clientAuth, CA:FALSE, digitalSignature" in_shell \
  "grep -q 'TLS Web Client Authentication' dev1.txt && grep -q CA:FALSE dev1.txt && grep -q 'Digital Signature' dev1.txt"
SERIAL1=$(openssl x509 -in dev1.pem -noout -serial)
check "serial has at least 64 bits ($SERIAL1)" test ${#SERIAL1} -ge 23
check "certificate certifies the root-of-trust key" test \
  "$(openssl x509 -in dev1.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" = "$(openssl pkey -pubin -in dev1.pub -outform DER | sha256sum)"

echo "# pkilint"
openssl x509 -in "$DATA/ca/tls-server.pem" -out server.pem
for cert in dev1.pem issuing.pem "$ROOT"; do
  check "pkilint: no finding at WARNING or above in $(basename "$cert")" lint_pkix_cert lint -s WARNING "$cert"
done
# The TLS server certificate names "localhost" on purpose (clients connect to it by that name);
# pkilint's domain-name syntax check rejects single-label names, and that must be its only finding.
check "pkilint: TLS server certificate clean but for the deliberate 'localhost' SAN" in_shell \
  "! lint_pkix_cert lint -s WARNING server.pem > lint.txt; cat lint.txt; [ \"\$(grep -c '(ERROR)\|(WARNING)\|(FATAL)' lint.txt)\" = 1 ] &&
   grep -q 'invalid_domain_name_syntax (ERROR): Invalid domain name syntax: \"localhost\"' lint.txt"
check "pkilint chain: issuing CA -> device clean" lint_pkix_signer_signee_cert_chain lint -s WARNING issuing.pem dev1.pem
check "pkilint chain: root -> issuing CA clean" lint_pkix_signer_signee_cert_chain lint -s WARNING "$ROOT" issuing.pem

echo "# retry is idempotent"
csr dev1.key "/CN=E2E-DEV-1" > dev1-again.csr
check "retry with a fresh CSR for the same key returns the same certificate" in_shell \
  "answered 200 dev1-again.csr '$SE' && [ \"\$(p7_serial resp.txt)\" = '$SERIAL1' ]"

echo "# refusals"
expect_refusal() { # status code body-file [curl args...]
  local status=$1 code=$2 body=$3; shift 3
  local got
  got=$(curl -s --cacert "$ROOT" -o resp.txt -w '%{http_code}' --data-binary @"$body" "$@")
  cat resp.txt; echo
  [ "$got" = "$status" ] || { echo "expected $status, got $got"; return 1; }
  grep -q "\"code\":\"$code\"" resp.txt && grep -q '"remedy"' resp.txt
}
refusal() { # status code what body-file [curl args...]
  local status=$1 code=$2 what=$3; shift 3
  check "$what -> $status $code" expect_refusal "$status" "$code" "$@"
}
CT=(-H 'Content-Type: application/pkcs10')
refusal 415 unsupported_media_type "wrong content type" dev1.csr -H 'Content-Type: text/plain' "$SE"
echo '!!!not base64!!!' > garbage.txt
refusal 400 body_encoding_invalid "malformed base64" garbage.txt "${CT[@]}" "$SE"
head -c 300 /dev/urandom | base64 > randomder.txt
refusal 400 csr_malformed "garbage DER" randomder.txt "${CT[@]}" "$SE"
head -c 1200000 /dev/zero | base64 > huge.txt
refusal 413 body_too_large "a 1.6 MB body" huge.txt "${CT[@]}" "$SE"
: > empty.txt
refusal 400 body_encoding_invalid "empty body" empty.txt "${CT[@]}" "$SE"
openssl ecparam -name prime256v1 -genkey -noout -out stranger.key 2>/dev/null
csr stranger.key "/CN=COUNTERFEIT-1" > stranger.csr
refusal 403 unknown_device "counterfeit UDID" stranger.csr "${CT[@]}" "$SE"
csr stranger.key "/CN=E2E-DEV-2" > mismatch.csr
refusal 403 key_mismatch "CSR key is not the root-of-trust key" mismatch.csr "${CT[@]}" "$SE"
csr stranger.key "/CN=E2E-DEV-1" > clone.csr
refusal 403 clone_suspected "enrolled UDID with another key" clone.csr "${CT[@]}" "$SE"
check "the suspected clone's device is quarantined (the product's default response)" in_shell \
  "'$HALLMARK' registry devices --data-dir '$DATA' --status quarantined | grep -q E2E-DEV-1"
check "an operator releases it" "$HALLMARK" registry set-status --data-dir "$DATA" E2E-DEV-1 enrolled --reason "e2e: inspected, genuine"
csr dev3.key "/O=No UDID here" > nocn.csr
refusal 400 udid_missing "CSR without CN" nocn.csr "${CT[@]}" "$SE"
openssl genrsa -out rsa.key 2048 2>/dev/null
csr rsa.key "/CN=E2E-DEV-3" > rsa.csr
refusal 400 key_algorithm_not_allowed "RSA key" rsa.csr "${CT[@]}" "$SE"
# Tamper with the last byte of the signature: the CSR still parses, its signature no longer verifies.
openssl req -new -key dev3.key -subj "/CN=E2E-DEV-3" -outform DER -out dev3.der 2>/dev/null
python3 - <<'PY'
import base64, sys
der = bytearray(open("dev3.der", "rb").read())
der[-1] ^= 0x01
open("tampered.csr", "w").write(base64.b64encode(bytes(der)).decode())
PY
refusal 400 csr_signature_invalid "tampered CSR signature" tampered.csr "${CT[@]}" "$SE"
check "server healthy after every bad input" curl -sf --cacert "$ROOT" "$URL/healthz"

echo "# simplereenroll over mutual TLS"
SRE="$URL/.well-known/est/simplereenroll"
refusal 403 client_certificate_required "reenroll without client certificate" dev1.csr "${CT[@]}" "$SRE"
openssl req -x509 -new -key stranger.key -subj "/CN=E2E-DEV-1" -days 2 -out fake.pem 2>/dev/null
refusal 403 client_certificate_invalid "reenroll with a certificate from another CA" dev1.csr "${CT[@]}" --cert fake.pem --key stranger.key "$SRE"
must "reenroll dev1" answered 200 dev1.csr "$SRE" --cert dev1.pem --key dev1.key
base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs -out dev1-renewed.pem
SERIAL2=$(openssl x509 -in dev1-renewed.pem -noout -serial)
check "renewal issued a new valid certificate" in_shell \
  "[ '$SERIAL2' != '$SERIAL1' ] && openssl verify -CAfile '$ROOT' -untrusted issuing.pem dev1-renewed.pem"
check "repeating the renewal with the old certificate returns the same renewal" in_shell \
  "answered 200 dev1.csr '$SRE' --cert dev1.pem --key dev1.key && [ \"\$(p7_serial resp.txt)\" = '$SERIAL2' ]"
# A client that resumes its TLS session presents no certificate in the new handshake: the server
# must still know the one the session was established with.
cat > resume.py <<'PY'
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
check "renewal over a resumed TLS session: the session's client certificate still counts" \
  python3 resume.py "$HTTPS" "$ROOT" dev1.pem dev1.key dev1.csr
openssl ecparam -name prime256v1 -genkey -noout -out dev1-new.key 2>/dev/null
csr dev1-new.key "/CN=E2E-DEV-1" > dev1-newkey.csr
check "renewal with a new key accepted" answered 200 dev1-newkey.csr "$SRE" --cert dev1-renewed.pem --key dev1.key
csr dev1.key "/CN=E2E-DEV-2" > other.csr
refusal 403 subject_mismatch "renewal naming another device" other.csr "${CT[@]}" --cert dev1-renewed.pem --key dev1.key "$SRE"

echo "# event log"
events >/dev/null
for code in issued returned_existing renewed unknown_device key_mismatch clone_suspected csr_signature_invalid body_too_large unsupported_media_type client_certificate_invalid; do
  check "the event log holds a $code decision" grep -q "$code" events.txt
done
check "no secret in the server log" refused grep -qi "passphrase\|BEGIN EC PRIVATE\|$HALLMARK_PASSPHRASE" server.log

echo "# quarantine and decommission"
must "quarantine E2E-DEV-4" "$HALLMARK" registry set-status --data-dir "$DATA" E2E-DEV-4 quarantined
csr dev4.key "/CN=E2E-DEV-4" > dev4.csr
refusal 403 device_quarantined "quarantined device" dev4.csr "${CT[@]}" "$SE"
must "decommission E2E-DEV-4" "$HALLMARK" registry set-status --data-dir "$DATA" E2E-DEV-4 decommissioned
refusal 403 device_decommissioned "decommissioned device" dev4.csr "${CT[@]}" "$SE"

echo "# an import beside the running server"
openssl ecparam -name prime256v1 -genkey -noout -out dev5.key 2>/dev/null
printf 'udid,public_key\nE2E-DEV-5,%s\n' "$(openssl pkey -in dev5.key -pubout -outform DER | base64 -w0)" > late.csv
csr dev5.key "/CN=E2E-DEV-5" > dev5.csr
refusal 403 unknown_device "a device not yet imported" dev5.csr "${CT[@]}" "$SE"
must "late import" "$HALLMARK" allowlist import --data-dir "$DATA" late.csv
check "a device imported while the server runs enrols at once" answered 200 dev5.csr "$SE"

echo "# products"
check "product create: a product whose certificates last 2 days" in_shell \
  "'$HALLMARK' product create --data-dir '$DATA' short-lived --name 'Short-lived sensor' --validity-days 2 | grep -q 'certificates 2 days'"
check "product list shows it beside the default product" in_shell \
  "'$HALLMARK' product list --data-dir '$DATA' | grep -q '^default' && '$HALLMARK' product list --data-dir '$DATA' | grep -q '^short-lived'"
check "a second product of that id is refused (product_exists)" in_shell \
  "! '$HALLMARK' product create --data-dir '$DATA' short-lived 2>err.txt && grep -q product_exists err.txt"
check "a validity of 0 days, or a policy that does not exist, is refused (product_invalid)" in_shell \
  "! '$HALLMARK' product create --data-dir '$DATA' p0 --validity-days 0 2>err.txt && grep -q product_invalid err.txt &&
   ! '$HALLMARK' product create --data-dir '$DATA' p1 --policy no-such-policy 2>err.txt && grep -q product_invalid err.txt"
openssl ecparam -name prime256v1 -genkey -noout -out dev6.key 2>/dev/null
printf 'udid,public_key\nE2E-DEV-6,%s\n' "$(openssl pkey -in dev6.key -pubout -outform DER | base64 -w0)" > product.csv
check "an allowlist import into a product that does not exist is refused (not_found)" in_shell \
  "! '$HALLMARK' allowlist import --data-dir '$DATA' --product no-such-product product.csv 2>err.txt && grep -q not_found err.txt"
must "import into short-lived" "$HALLMARK" allowlist import --data-dir "$DATA" --product short-lived product.csv
csr dev6.key "/CN=E2E-DEV-6" > dev6.csr
check "a device of the product gets a certificate for the product's 2 days (and the 5 minutes backdated)" in_shell \
  "answered 200 dev6.csr '$SE' && p7_cert() { base64 -d resp.txt | openssl pkcs7 -inform DER -print_certs | openssl x509 \"\$@\"; } &&
   start=\$(date -d \"\$(p7_cert -noout -startdate | cut -d= -f2)\" +%s) && end=\$(date -d \"\$(p7_cert -noout -enddate | cut -d= -f2)\" +%s) &&
   [ \$((end - start)) -eq \$((2 * 86400 + 300)) ]"

echo "# graceful shutdown and persistence"
stop_server
start_server
URL="https://localhost:$HTTPS"
csr dev2.key "/CN=E2E-DEV-2" > dev2.csr
must "enroll dev2 after restart" answered 200 dev2.csr "$URL/.well-known/est/simpleenroll"
p7_serial resp.txt > dev2.serial
kill -KILL "$SERVER"; wait "$SERVER" 2>/dev/null || true
start_server
URL="https://localhost:$HTTPS"
check "after SIGKILL and restart the retry returns the certificate issued before: nothing lost, nothing issued twice" in_shell \
  "answered 200 dev2.csr '$URL/.well-known/est/simpleenroll' && [ \"\$(p7_serial resp.txt)\" = '$(cat dev2.serial)' ]"
stop_server

finish est 74
