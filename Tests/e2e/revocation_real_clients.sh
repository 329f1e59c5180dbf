#!/usr/bin/env bash
# Revocation the world can check, against real clients only: `openssl ocsp` (good, revoked,
# unknown, nonce, -no_nonce, SHA-256 CertIDs, the GET form), `openssl verify -crl_check
# -crl_download` from the certificate's own distribution point, `openssl crl -text`, pkilint's CRL
# and OCSP linters, Python `cryptography`'s parsers; malformed requests; decommissioning a device
# while it is connected; a CA-signed responder; a CRL re-signed before its nextUpdate.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="revocation-test-passphrase"

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
ROOT="$DATA/ca/root.pem"
ISSUER="$DATA/ca/issuing.pem"
"$HALLMARK" tenant create --data-dir "$DATA" acme --name "Acme Meters" >/dev/null
for d in DEV-1 DEV-2 DEV-3 ACME-1; do openssl ecparam -name prime256v1 -genkey -noout -out $d.key; done
allow() { for d in "$@"; do printf '%s,%s\n' $d "$(openssl pkey -in $d.key -pubout -outform DER | base64 -w0)"; done; }
{ echo udid,public_key; allow DEV-1 DEV-2 DEV-3; } > allow.csv
{ echo udid,public_key; allow ACME-1; } > acme.csv
"$HALLMARK" allowlist import --data-dir "$DATA" allow.csv >/dev/null 2>&1
"$HALLMARK" allowlist import --data-dir "$DATA" --tenant acme acme.csv >/dev/null 2>&1
start_server --crl-validity 10
R="http://127.0.0.1:$REVOCATION"

enroll() { # udid [tenant] -> udid.pem
  openssl req -new -key $1.key -subj /CN=$1 -outform DER | base64 > $1.csr &&
  curl -sf --cacert "$ROOT" -H 'Content-Type: application/pkcs10' --data-binary @$1.csr \
    "https://localhost:$HTTPS/.well-known/est/${2:+$2/}simpleenroll" | base64 -d |
    openssl pkcs7 -inform DER -print_certs | openssl x509 -out $1.pem
}
for d in DEV-1 DEV-2 DEV-3; do must "$d enrols" enroll $d; done
must "ACME-1 enrols with its tenant" enroll ACME-1 acme
openssl x509 -in "$ROOT" > root.pem
ocsp() { # cert, issuer, [openssl ocsp options...]: prints what openssl says
  local cert=$1 issuer=$2; shift 2
  openssl ocsp -issuer "$issuer" -cert "$cert" -url "$R/ocsp" -CAfile root.pem "$@" 2>&1
}
says() { # pattern, command...: the command's output (stdout and stderr) matches
  local pattern=$1; shift
  local out; out=$("$@" 2>&1); echo "$out"; grep -qE -- "$pattern" <<<"$out"
}
crl_verify() { openssl verify -crl_check -crl_download -CAfile root.pem -untrusted "$2" "$1" 2>&1; }

echo "# what certificates carry"
check "a device certificate names its OCSP responder and CRL (AIA, CDP)" says \
  "OCSP - URI:$R/ocsp" openssl x509 -in DEV-1.pem -noout -ext authorityInfoAccess,crlDistributionPoints
check "  ... the CRL distribution point is its CA's CRL" says "URI:$R/crl/hallmark.crl" openssl x509 -in DEV-1.pem -noout -ext crlDistributionPoints
# The tenant's issuing CA, as EST's cacerts gives it (the certificate whose subject names it).
curl -sf --cacert "$ROOT" "https://localhost:$HTTPS/.well-known/est/acme/cacerts" | base64 -d |
  openssl pkcs7 -inform DER -print_certs | awk '/BEGIN/ {n++} {print > ("acme-ca-" n ".pem")}'
ACME_CA=$(for f in acme-ca-*.pem; do openssl x509 -in $f -noout -subject 2>/dev/null | grep -q 'acme Issuing CA' && echo $f; done | head -1)
check "a tenant's device names the tenant CA's own CRL" says "URI:$R/crl/tenants/acme.crl" openssl x509 -in ACME-1.pem -noout -ext crlDistributionPoints

echo "# good, unknown, unauthorized"
check "openssl ocsp: good, the nonce echoed, the response verified" in_shell \
  "out=\$(ocsp DEV-1.pem '$ISSUER'); echo \"\$out\"; grep -q 'DEV-1.pem: good' <<<\"\$out\" && grep -q 'Response verify OK' <<<\"\$out\" && ! grep -q 'no nonce' <<<\"\$out\""
check "openssl ocsp -no_nonce: good" says "DEV-1.pem: good" ocsp DEV-1.pem "$ISSUER" -no_nonce
check "openssl ocsp with a SHA-256 CertID: good" says "DEV-1.pem: good" \
  openssl ocsp -issuer "$ISSUER" -sha256 -cert DEV-1.pem -url "$R/ocsp" -CAfile root.pem
check "  ... and nextUpdate is set" says "Next Update: " ocsp DEV-1.pem "$ISSUER"
openssl ocsp -issuer "$ISSUER" -cert DEV-1.pem -no_nonce -reqout get.req >/dev/null 2>&1
GETPATH=$(base64 -w0 get.req | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=""))')
check "the GET form (RFC 6960 A.1): good" in_shell \
  "curl -sf -o get.resp '$R/ocsp/$GETPATH' && openssl ocsp -respin get.resp -issuer '$ISSUER' -cert DEV-1.pem -CAfile root.pem 2>&1 | tee /dev/stderr | grep -q 'DEV-1.pem: good'"
check "a tenant CA's certificate is answered by its own CA: good" says "ACME-1.pem: good" \
  openssl ocsp -issuer "$ACME_CA" -cert ACME-1.pem -url "$R/ocsp" -CAfile root.pem
check "a serial the CA never issued: unknown" says ": unknown" \
  openssl ocsp -issuer "$ISSUER" -serial 0x0123456789 -url "$R/ocsp" -CAfile root.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout stranger.key -out stranger.pem -subj /CN=Stranger -days 2 2>/dev/null
check "a CA Hallmark does not run: unauthorized" says "unauthorized" \
  openssl ocsp -issuer stranger.pem -serial 0x01 -url "$R/ocsp" -CAfile root.pem

echo "# malformed requests"
malformed() { # body file: the answer is exactly OCSPResponse { malformedRequest }
  curl -s -o bad.resp -H 'Content-Type: application/ocsp-request' --data-binary @"$1" "$R/ocsp" &&
    [ "$(od -An -tx1 bad.resp | tr -d ' \n')" = "30030a0101" ]
}
printf 'GET / HTTP/1.1\r\n\r\n' > garbage.bin
head -c 100000 /dev/urandom > huge.bin
openssl ocsp -issuer "$ISSUER" -cert DEV-1.pem -sha512 -no_nonce -reqout sha512.req >/dev/null 2>&1
check "garbage is answered malformedRequest" malformed garbage.bin
check "a 100 KB body is answered malformedRequest" malformed huge.bin
check "an unknown hash algorithm (SHA-512 CertID) is answered malformedRequest" malformed sha512.req
for i in $(seq 1 40); do curl -s -o /dev/null --data-binary @garbage.bin "$R/ocsp"; done
check "a flood of malformed requests is counted, not logged one by one" in_shell \
  "n=\$('$HALLMARK' registry events --data-dir '$DATA' --limit 1000 | grep -c ocsp_malformed_request); echo \"\$n events\"; [ \"\$n\" -ge 1 ] && [ \"\$n\" -le 3 ]"
check "the responder still answers" says "DEV-1.pem: good" ocsp DEV-1.pem "$ISSUER"

echo "# CRLs"
check "openssl verify -crl_check -crl_download: OK while nothing is revoked" says "DEV-1.pem: OK" crl_verify DEV-1.pem "$ISSUER"
curl -sf -o before.crl "$R/crl/hallmark.crl"
check "the CRL's number, AKI and critical issuing distribution point" in_shell \
  "openssl crl -inform DER -in before.crl -noout -text | tee crl.txt | grep -q 'X509v3 CRL Number' && grep -q 'Issuing Distribution Point: critical' crl.txt && grep -q 'Authority Key Identifier' crl.txt && grep -q 'Next Update' crl.txt"
check "a tenant CA's CRL is signed by that CA" in_shell \
  "curl -sf -o acme.crl '$R/crl/tenants/acme.crl' && openssl crl -inform DER -in acme.crl -CAfile '$ACME_CA' -noout 2>&1 | grep -q 'verify OK'"
check "an unknown CRL is 404" in_shell "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$R/crl/nobody.crl')\" = 404 ]"

echo "# a revocation, seen by the world within a second"
SERIAL2=$(openssl x509 -in DEV-2.pem -noout -serial | cut -d= -f2)
must "cert revoke --code keyCompromise" "$HALLMARK" cert revoke --data-dir "$DATA" "$SERIAL2" --code keyCompromise
check "openssl ocsp says revoked (keyCompromise) within a second" eventually 1 says "Reason: keyCompromise" ocsp DEV-2.pem "$ISSUER"
check "  ... with -no_nonce too (no stale cached answer)" says "DEV-2.pem: revoked" ocsp DEV-2.pem "$ISSUER" -no_nonce
check "openssl verify -crl_check -crl_download: certificate revoked, within a second" eventually 1 says "error 23 at 0 depth lookup: certificate revoked" crl_verify DEV-2.pem "$ISSUER"
check "  ... and the other device still verifies" says "DEV-1.pem: OK" crl_verify DEV-1.pem "$ISSUER"
check "openssl crl -text lists the serial with its reason" in_shell \
  "curl -sf -o after.crl '$R/crl/hallmark.crl' && openssl crl -inform DER -in after.crl -noout -text | tee crl.txt | grep -q 'Serial Number: $SERIAL2' && grep -q 'Key Compromise' crl.txt"
check "the CRL number went up" in_shell \
  "a=\$(openssl crl -inform DER -in before.crl -noout -crlnumber | cut -d= -f2); b=\$(openssl crl -inform DER -in after.crl -noout -crlnumber | cut -d= -f2); echo \"\$a -> \$b\"; python3 -c \"import sys; sys.exit(0 if int('\$b', 16) > int('\$a', 16) else 1)\""
ocsp DEV-2.pem "$ISSUER" -respout revoked.resp >/dev/null
ocsp DEV-1.pem "$ISSUER" -respout good.resp >/dev/null
check "pkilint: the CRL has no finding at WARNING or above" in_shell \
  "out=\$(lint_crl lint -t CRL -p PKIX -s WARNING after.crl); echo \"\$out\"; [ -z \"\$out\" ]"
check "pkilint: the OCSP answers have no finding at WARNING or above" in_shell \
  "out=\$(lint_ocsp_response lint -s WARNING good.resp; lint_ocsp_response lint -s WARNING revoked.resp); echo \"\$out\"; [ -z \"\$out\" ]"
check "Python cryptography parses the CRL and the OCSP answers and checks their signatures" \
  python3 "$HERE/revocation_parse.py" after.crl "$ISSUER" "$SERIAL2" good.resp revoked.resp DEV-1.pem DEV-2.pem

echo "# decommissioning"
DEV3=(-h localhost -p "$MQTT" --cafile "$ROOT" --cert DEV-3.pem --key DEV-3.key -i DEV-3)
mosquitto_sub "${DEV3[@]}" -t 'things/DEV-3/#' -V mqttv5 >dev3.out 2>&1 &
SUB=$!
check "DEV-3 is connected" eventually 5 in_shell "grep -q 'connected' server.log || kill -0 $SUB"
sleep 0.5
must "registry decommission DEV-3" "$HALLMARK" registry decommission --data-dir "$DATA" DEV-3 --reason "end of life"
check "its live session ends within a second" eventually 1 in_shell "! kill -0 $SUB 2>/dev/null"
check "openssl ocsp: revoked, cessationOfOperation" eventually 1 says "Reason: cessationOfOperation" ocsp DEV-3.pem "$ISSUER"
check "EST refuses it: device_decommissioned" in_shell \
  "curl -s --cacert '$ROOT' -H 'Content-Type: application/pkcs10' --data-binary @DEV-3.csr 'https://localhost:$HTTPS/.well-known/est/simpleenroll' | grep -q device_decommissioned"
check "MQTT refuses it" refused mosquitto_pub "${DEV3[@]}" -t things/DEV-3/t -m x
check "set-status cannot quietly bring it back" in_shell \
  "'$HALLMARK' registry set-status --data-dir '$DATA' DEV-3 allowed 2>&1 | grep -q device_decommissioned"
check "its record and history stay" in_shell "'$HALLMARK' registry devices --data-dir '$DATA' | grep DEV-3 | grep -q decommissioned && event status_decommissioned"
must "registry recommission DEV-3" "$HALLMARK" registry recommission --data-dir "$DATA" DEV-3 --reason "refurbished"
check "after recommissioning it enrols afresh (a new certificate)" in_shell "mv DEV-3.pem DEV-3.old.pem && enroll DEV-3 && ! cmp -s DEV-3.pem DEV-3.old.pem"
check "  ... its old certificate stays revoked" says "DEV-3.old.pem: revoked" ocsp DEV-3.old.pem "$ISSUER"
check "  ... and the recommissioning is logged" event status_recommissioned

echo "# a renewal's old certificate retires once the new one is used"
openssl req -new -key DEV-1.key -subj /CN=DEV-1 -outform DER | base64 > DEV-1.renew.csr
must "DEV-1 renews over mutual TLS (simplereenroll)" in_shell \
  "curl -sf --cacert '$ROOT' --cert DEV-1.pem --key DEV-1.key -H 'Content-Type: application/pkcs10' --data-binary @DEV-1.renew.csr \
     'https://localhost:$HTTPS/.well-known/est/simplereenroll' | base64 -d | openssl pkcs7 -inform DER -print_certs | openssl x509 -out DEV-1.new.pem"
check "the superseded certificate stays good until the new one is used" says "DEV-1.pem: good" ocsp DEV-1.pem "$ISSUER"
must "DEV-1 connects with its new certificate" mosquitto_pub -h localhost -p "$MQTT" --cafile "$ROOT" --cert DEV-1.new.pem --key DEV-1.key -i DEV-1 -t things/DEV-1/t -m 1
check "then the old one is revoked (superseded), in OCSP within 3 s" eventually 3 says "Reason: superseded" ocsp DEV-1.pem "$ISSUER"
check "  ... and in the CRL" eventually 2 says "certificate revoked" crl_verify DEV-1.pem "$ISSUER"
check "  ... while the new one is good" says "DEV-1.new.pem: good" ocsp DEV-1.new.pem "$ISSUER"

echo "# the CRL is re-signed before its nextUpdate, with nothing changed"
curl -sf -o first.crl "$R/crl/hallmark.crl"
sleep 6
curl -sf -o second.crl "$R/crl/hallmark.crl"
check "a later CRL with a later thisUpdate and number (crlValidity 10 s)" in_shell \
  "a=\$(openssl crl -inform DER -in first.crl -noout -crlnumber); b=\$(openssl crl -inform DER -in second.crl -noout -crlnumber); echo \"\$a \$b\"; [ \"\$a\" != \"\$b\" ] && openssl crl -inform DER -in second.crl -noout -nextupdate"
check "the server is still healthy" curl -sf --cacert "$ROOT" "https://localhost:$HTTPS/healthz"
check "no crash or internal error in the server log" bash -c "! grep -Ei 'fatal|internal_error|crash|not signed' server.log"
stop_server

echo "# a CA-signed responder"
start_server --ocsp-signer ca
R="http://127.0.0.1:$REVOCATION"
check "--ocsp-signer ca: the issuing CA signs the answer, which verifies" in_shell \
  "out=\$(ocsp DEV-1.new.pem '$ISSUER' -resp_text); echo \"\$out\" | grep -E 'Responder Id|good|verify'; grep -q 'Response verify OK' <<<\"\$out\" && ! grep -q 'OCSP responder for' <<<\"\$out\""
stop_server
finish revocation 49
