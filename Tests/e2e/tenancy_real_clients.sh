#!/usr/bin/env bash
# Genuine devices only, against real tools. A silicon vendor made with openssl signs a manifest
# (Microchip-shaped: one ES256 flattened JWS per chip, with its IDevID in x5c); two tenants claim,
# enrol (curl + openssl over EST), administer over the API (curl), program against a batch quota
# in parallel, and connect (mosquitto). Every cross-tenant attempt, every tampering, counterfeit
# chip, counterfeit OEM, over-production and clone is tried and must be refused with its event.
set -uo pipefail
source "$(dirname "$0")/checks.sh"
export HALLMARK_PASSPHRASE="tenancy-test-passphrase"

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# An ECDSA DER signature as JOSE wants it: r || s, 32 bytes each, base64url.
jose_signature() { python3 -c '
import sys, base64
der = sys.stdin.buffer.read()
def integer(b, i):
    assert b[i] == 2; n = b[i + 1]; return int.from_bytes(b[i + 2:i + 2 + n], "big"), i + 2 + n
r, i = integer(der, 2); s, _ = integer(der, i)
print(base64.urlsafe_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode().rstrip("="))'; }
newkey() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
# One signed entry: udid, key file, lot, signing key, [IDevID cert file].
entry() {
  local udid=$1 key=$2 lot=$3 signer=$4 idevid=${5:-} point x y x5c="" protected payload signature
  point=$(openssl ec -in "$key" -pubout -outform DER 2>/dev/null | tail -c 64 | base64 -w0)
  x=$(echo "$point" | base64 -d | head -c 32 | b64url); y=$(echo "$point" | base64 -d | tail -c 32 | b64url)
  [ -n "$idevid" ] && x5c=",\"x5c\":[\"$(openssl x509 -in "$idevid" -outform DER | base64 -w0)\"]"
  protected=$(printf '{"alg":"ES256","typ":"JWT"}' | b64url)
  payload=$(printf '{"version":1,"model":"ATECC608","uniqueId":"%s","groupId":"%s","publicKeySet":{"keys":[{"kid":"0","kty":"EC","crv":"P-256","x":"%s","y":"%s"%s}]}}' \
    "$udid" "$lot" "$x" "$y" "$x5c" | b64url)
  signature=$(printf '%s.%s' "$protected" "$payload" | openssl dgst -sha256 -sign "$signer" | jose_signature)
  printf '{"payload":"%s","protected":"%s","header":{"uniqueId":"%s"},"signature":"%s"}\n' "$payload" "$protected" "$udid" "$signature"
}
ca_cert() { # name, subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" -subj "$2" -days 3650 \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
printf "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n" > idevid.ext
idevid() { # chip key, udid, CA name, out
  openssl req -new -key "$1" -subj "/O=Vendor/CN=$2" -out "$4.csr" 2>/dev/null &&
  openssl x509 -req -in "$4.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 3650 -extfile idevid.ext -out "$4" 2>/dev/null
}
csr() { openssl req -new -key "$1" -subj "/CN=$2" -outform DER 2>/dev/null | base64 -w0; }

# --- The vendor, with openssl: a manifest-signing key and an attestation root ---
newkey vendor-sign.key; openssl ec -in vendor-sign.key -pubout -out vendor-sign.pub 2>/dev/null
newkey impostor-sign.key
ca_cert vendor-root "/O=Vendor/CN=Vendor Attestation Root"
ca_cert fake-root "/O=Vendor/CN=Vendor Attestation Root"   # same name, another key
for n in 1 2 3 4; do newkey chip$n.key; idevid chip$n.key CHIP-$n vendor-root chip$n-idevid.pem; done
idevid chip2.key CHIP-2 fake-root chip2-fake-idevid.pem
{ echo "["; for n in 1 2 3; do entry CHIP-$n chip$n.key LOT-1 vendor-sign.key chip$n-idevid.pem; [ $n -lt 3 ] && echo ","; done; echo "]"; } > manifest.json
{ echo "["; entry CHIP-4 chip4.key LOT-2 vendor-sign.key chip4-idevid.pem; echo "]"; } > manifest-lot2.json

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
ACME=$("$HALLMARK" tenant create --data-dir "$DATA" acme --name "Acme Meters" | awk '/credential:/ {print $2}')
KNOCK=$("$HALLMARK" tenant create --data-dir "$DATA" knockoff | awk '/credential:/ {print $2}')
check "each tenant gets its own credential" in_shell "[[ '$ACME' == hmk_admin_* && '$KNOCK' == hmk_admin_* && '$ACME' != '$KNOCK' ]]"
check "a tenant id that is not one is refused" in_shell "'$HALLMARK' tenant create --data-dir '$DATA' 'Bad Id' 2>&1 | grep -q tenant_invalid"

for t in acme knockoff; do
  "$HALLMARK" vendor register --data-dir "$DATA" --tenant $t silicon --manifest-key vendor-sign.pub --attestation-root vendor-root.pem >/dev/null
done

# --- Tampered manifests ---
python3 - <<'PY'
import json, base64
def unb64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def b64(b): return base64.urlsafe_b64encode(b).decode().rstrip("=")
m = json.load(open("manifest.json"))
# 1. A changed entry: CHIP-2's key swapped for CHIP-3's, the vendor's signature kept.
t = json.loads(json.dumps(m)); p2 = json.loads(unb64(t[1]["payload"])); p3 = json.loads(unb64(t[2]["payload"]))
p2["publicKeySet"]["keys"][0]["x"] = p3["publicKeySet"]["keys"][0]["x"]; t[1]["payload"] = b64(json.dumps(p2).encode())
json.dump(t, open("tampered-entry.json", "w"))
# 2. A stripped signature, and an entry that says it is unsigned.
t = json.loads(json.dumps(m)); t[0]["signature"] = ""; t[1]["protected"] = b64(b'{"alg":"none"}'); t[1]["signature"] = ""
json.dump(t, open("stripped.json", "w"))
PY
{ echo "["; entry CHIP-1 chip1.key LOT-1 impostor-sign.key chip1-idevid.pem; echo "]"; } > wrong-signer.json
{ echo "["; entry CHIP-1 chip1.key LOT-1 vendor-sign.key chip2-idevid.pem; echo "]"; } > wrong-chain.json
import() { "$HALLMARK" manifest import --data-dir "$DATA" --vendor silicon "$@" 2>&1; }
check "a manifest with a changed entry is refused, naming the entry; nothing claimed" in_shell \
  "out=\$(import --tenant acme tampered-entry.json); echo \"\$out\"; echo \"\$out\" | grep -q 'entry 2 (CHIP-2): \[manifest_signature_invalid\]' && echo \"\$out\" | grep -q 'error \[manifest_signature_invalid\]: Nothing was claimed'"
check "a manifest signed by another key is refused" in_shell \
  "import --tenant acme wrong-signer.json | grep -q 'does not verify with vendor silicon'"
check "a stripped signature and alg none are refused" in_shell \
  "out=\$(import --tenant acme stripped.json); echo \"\$out\" | grep -q 'entry 1 (CHIP-1): \[manifest_signature_invalid\]' && echo \"\$out\" | grep -q 'entry 2 (CHIP-2).*not signed ES256'"
check "an entry whose IDevID certifies another chip's key is refused" in_shell \
  "import --tenant acme wrong-chain.json | grep -q attestation_chain_invalid"
check "an unregistered vendor's manifest is refused" in_shell \
  "'$HALLMARK' manifest import --data-dir '$DATA' --tenant acme --vendor nobody manifest.json 2>&1 | grep -q vendor_invalid"
check "  ... and nothing of them is in the registry" in_shell "[ -z \"\$('$HALLMARK' registry devices --data-dir '$DATA')\" ]"
check "the genuine manifest (made with openssl) verifies and acme claims its 3 chips" in_shell \
  "import --tenant acme manifest.json | grep -q '3 entries, 3 claimed'"
check "acme claims only lot LOT-2 of the second manifest" in_shell \
  "import --tenant acme --lot LOT-2 manifest-lot2.json | grep -q '1 claimed'"
check "knockoff cannot claim acme's chips (ownership_conflict), and acme is told" in_shell \
  "import --tenant knockoff manifest.json | grep -q ownership_conflict &&
   '$HALLMARK' registry events --data-dir '$DATA' --tenant acme --code ownership_conflict | grep -q 'another tenant tried to claim'"
check "every device records its provenance (vendor and manifest)" in_shell \
  "[ \$('$HALLMARK' registry devices --data-dir '$DATA' --tenant acme | grep -c 'from manifest:silicon:') -eq 4 ]"

start_server
BASE="https://127.0.0.1:$HTTPS"
CURL=(curl -s --cacert "$DATA/ca/root.pem")
api() { "${CURL[@]}" -o api.json -w '%{http_code}' -H "Authorization: Bearer $1" "${@:2}"; }
est() { # tenant-path, csr file, [curl args] -> status; body in est.out
  "${CURL[@]}" -o est.out -w '%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @"$2" "${@:3}" "$BASE/.well-known/est/$1simpleenroll"; }

# --- Enrollment: counterfeit OEM, counterfeit chip, genuine, attested ---
csr chip1.key CHIP-1 > chip1.csr
check "a genuine chip enrolling with knockoff is refused: 403 counterfeit_oem" in_shell \
  "[ \$(est knockoff/ chip1.csr) = 403 ] && grep -q counterfeit_oem est.out && ! grep -qi acme est.out"
check "  ... an event for knockoff, and one for acme that does not name knockoff" in_shell \
  "'$HALLMARK' registry events --data-dir '$DATA' --tenant knockoff --code counterfeit_oem | grep -q CHIP-1 &&
   '$HALLMARK' registry events --data-dir '$DATA' --tenant acme --code counterfeit_oem | grep CHIP-1 | grep -vq knockoff"
check "an EST label that is no tenant is 404" in_shell \
  "[ \$(est nosuch/ chip1.csr) = 404 ]"
newkey counterfeit.key; csr counterfeit.key CHIP-999 > counterfeit.csr
check "a counterfeit chip (on no manifest) is refused: 403 unknown_device" in_shell \
  "[ \$(est acme/ counterfeit.csr) = 403 ] && grep -q unknown_device est.out"
# A tenant's cacerts as PEM (<tenant>-chain.pem) and the certificate in it that is not self-signed (<tenant>-ca.pem).
cacerts() {
  "${CURL[@]}" "$BASE/.well-known/est/$1/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs > "$1-chain.pem" &&
  awk -v t="$1" '/BEGIN CERT/ {n++} n {print > (t "-part" n ".pem")}' "$1-chain.pem" &&
  for part in "$1"-part*.pem; do
    [ "$(openssl x509 -in "$part" -noout -subject -nameopt compat | cut -d= -f2-)" != "$(openssl x509 -in "$part" -noout -issuer -nameopt compat | cut -d= -f2-)" ] && cp "$part" "$1-ca.pem"
  done; [ -s "$1-ca.pem" ]
}
check "each tenant's cacerts is its own issuing CA under Hallmark's root" in_shell \
  "cacerts acme && cacerts knockoff && openssl x509 -in acme-ca.pem -noout -subject | grep -q 'acme Issuing CA' &&
   openssl x509 -in knockoff-ca.pem -noout -subject | grep -q 'knockoff Issuing CA' &&
   openssl verify -CAfile '$DATA/ca/root.pem' acme-chain.pem && '$HALLMARK' tenant list --data-dir '$DATA' | grep acme | grep -q 'own CA'"
check "cacerts of an EST label that is no tenant is 404" in_shell \
  "[ \$(\"\${CURL[@]}\" -o /dev/null -w '%{http_code}' '$BASE/.well-known/est/nosuch/cacerts') = 404 ]"
check "the owner enrols its chip with its root-of-trust key; openssl verifies it against acme's chain only" in_shell \
  "[ \$(est acme/ chip1.csr) = 200 ] &&
   base64 -d est.out | openssl pkcs7 -inform DER -print_certs | openssl x509 -out chip1.pem &&
   openssl verify -CAfile '$DATA/ca/root.pem' -untrusted acme-chain.pem chip1.pem &&
   ! openssl verify -CAfile '$DATA/ca/root.pem' -untrusted knockoff-chain.pem chip1.pem 2>/dev/null &&
   ! openssl verify -CAfile '$DATA/ca/root.pem' -untrusted '$DATA/ca/issuing.pem' chip1.pem 2>/dev/null"
check "pkilint: acme's CA and its device certificate, each and as a chain, no finding at WARNING" in_shell \
  "lint_pkix_cert lint -s WARNING acme-ca.pem && lint_pkix_cert lint -s WARNING chip1.pem &&
   lint_pkix_signer_signee_cert_chain lint -s WARNING '$DATA/ca/root.pem' acme-ca.pem &&
   lint_pkix_signer_signee_cert_chain lint -s WARNING acme-ca.pem chip1.pem"
newkey op2.key; csr op2.key CHIP-2 > chip2-op.csr
check "a new operational key without attestation is refused (key_mismatch)" in_shell \
  "[ \$(est acme/ chip2-op.csr) = 403 ] && grep -q key_mismatch est.out"
check "an IDevID from a fake root with the same name is refused (attestation_chain_invalid)" in_shell \
  "[ \$(est acme/ chip2-op.csr --cert chip2-fake-idevid.pem --key chip2.key) = 403 ] && grep -q attestation_chain_invalid est.out"
check "another chip's genuine IDevID does not attest this chip" in_shell \
  "[ \$(est acme/ chip2-op.csr --cert chip3-idevid.pem --key chip3.key) = 403 ] && grep -q attestation_chain_invalid est.out"
check "with its IDevID as TLS client certificate, the chip enrols a new operational key" in_shell \
  "[ \$(est acme/ chip2-op.csr --cert chip2-idevid.pem --key chip2.key) = 200 ] &&
   base64 -d est.out | openssl pkcs7 -inform DER -print_certs | openssl x509 -out chip2.pem &&
   [ \"\$(openssl x509 -in chip2.pem -pubkey -noout)\" = \"\$(openssl ec -in op2.key -pubout 2>/dev/null)\" ]"

# --- The API: each tenant sees its own, and nothing else ---
SERIAL1=$(openssl x509 -in chip1.pem -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
check "no credential, or a wrong one, is 401 credential_invalid (and logged)" in_shell \
  "[ \$(\"\${CURL[@]}\" -o api.json -w '%{http_code}' $BASE/api/v1/devices) = 401 ] &&
   [ \$(api hmk_admin_0000 $BASE/api/v1/devices) = 401 ] && grep -q credential_invalid api.json &&
   '$HALLMARK' registry events --data-dir '$DATA' --code credential_invalid | grep -q api.auth"
check "acme lists its 4 devices" in_shell \
  "[ \$(api $ACME $BASE/api/v1/devices) = 200 ] && [ \$(grep -c '\"udid\"' api.json) -eq 4 ]"
check "knockoff lists none of them" in_shell \
  "[ \$(api $KNOCK $BASE/api/v1/devices) = 200 ] && ! grep -q CHIP api.json"
for path in devices/CHIP-1 things/CHIP-1 things/CHIP-1/telemetry; do
  check "knockoff GET /api/v1/$path: 404, as if it did not exist" in_shell \
    "[ \$(api $KNOCK $BASE/api/v1/$path) = 404 ] && ! grep -qi acme api.json"
done
check "knockoff cannot read acme's certificates or events" in_shell \
  "api $KNOCK '$BASE/api/v1/certificates?udid=CHIP-1' && ! grep -q CHIP api.json &&
   api $KNOCK $BASE/api/v1/events && grep -q counterfeit_oem api.json && ! grep -q '\"issued\"' api.json && ! grep -q 'another tenant tried' api.json"
check "knockoff cannot revoke acme's certificate, quarantine or transfer its device" in_shell \
  "[ \$(api $KNOCK -X POST $BASE/api/v1/certificates/$SERIAL1/revoke) = 404 ] &&
   [ \$(api $KNOCK -X POST -d '{\"status\":\"quarantined\"}' $BASE/api/v1/devices/CHIP-1/status) = 404 ] &&
   [ \$(api $KNOCK -X POST -d '{\"to\":\"knockoff\"}' $BASE/api/v1/devices/CHIP-1/transfer) = 404 ] &&
   api $ACME $BASE/api/v1/certificates?udid=CHIP-1 >/dev/null && grep -q '\"status\" : \"active\"' api.json &&
   api $ACME $BASE/api/v1/devices/CHIP-1 >/dev/null && grep -q '\"status\" : \"enrolled\"' api.json"
check "acme reads its own thing and certificate" in_shell \
  "[ \$(api $ACME $BASE/api/v1/things/CHIP-1) = 200 ] && grep -q default-thing-policy api.json &&
   [ \$(api $ACME '$BASE/api/v1/certificates?udid=CHIP-1') = 200 ] && grep -q $SERIAL1 api.json"
check "knockoff importing acme's manifest over the API: 409, ownership_conflict per entry, nothing claimed" in_shell \
  "[ \$(api $KNOCK -X POST --data-binary @manifest.json '$BASE/api/v1/manifests?vendor=silicon') = 409 ] &&
   [ \$(grep -c ownership_conflict api.json) -eq 3 ] && grep -q '\"committed\" : false' api.json && ! grep -qi acme api.json"
check "a tampered manifest over the API: 400 with the entry named" in_shell \
  "[ \$(api $ACME -X POST --data-binary @tampered-entry.json '$BASE/api/v1/manifests?vendor=silicon') = 400 ] &&
   grep -q '\"entry\" : 2' api.json && grep -q manifest_signature_invalid api.json"
check "acme re-importing its own manifest over the API: 200, already its own" in_shell \
  "[ \$(api $ACME -X POST --data-binary @manifest.json '$BASE/api/v1/manifests?vendor=silicon') = 200 ] && grep -q '\"alreadyOwned\" : 3' api.json"
check "acme creates a product over the API (201) and lists it with the default one" in_shell \
  "[ \$(api $ACME -X POST -d '{\"id\":\"meter-x\",\"name\":\"Meter X\",\"certificateValidityDays\":90,\"cloneResponse\":\"alarm\"}' $BASE/api/v1/products) = 201 ] &&
   grep -q '\"certificateValidityDays\" : 90' api.json &&
   [ \$(api $ACME $BASE/api/v1/products) = 200 ] && grep -q meter-x api.json && grep -q '\"id\" : \"default\"' api.json"
check "  ... a second of that id is 409 product_exists, a validity of 5000 days 400 product_invalid" in_shell \
  "[ \$(api $ACME -X POST -d '{\"id\":\"meter-x\"}' $BASE/api/v1/products) = 409 ] && grep -q product_exists api.json &&
   [ \$(api $ACME -X POST -d '{\"id\":\"meter-y\",\"certificateValidityDays\":5000}' $BASE/api/v1/products) = 400 ] && grep -q product_invalid api.json &&
   '$HALLMARK' registry events --data-dir '$DATA' --tenant acme --code product_invalid | grep -q 'meter-y not created'"
check "  ... knockoff sees none of acme's products, and its own GET of one is 404" in_shell \
  "api $KNOCK $BASE/api/v1/products && ! grep -q meter-x api.json && [ \$(api $KNOCK $BASE/api/v1/products/meter-x) = 404 ] &&
   [ \$(api $ACME $BASE/api/v1/products/meter-x) = 200 ] && grep -q '\"cloneResponse\" : \"alarm\"' api.json"
check "a malformed body is 400 body_encoding_invalid, not a 500" in_shell \
  "[ \$(api $ACME -X POST -d 'not json' $BASE/api/v1/batches) = 400 ] && grep -q body_encoding_invalid api.json"

# --- Production batch: quota 10, 25 registrations in parallel ---
api $ACME -X POST -d '{"quota": 10}' "$BASE/api/v1/batches" >/dev/null
BATCH=$(python3 -c 'import json; print(json.load(open("api.json"))["batch"]["id"])')
STATION=$(python3 -c 'import json; print(json.load(open("api.json"))["stationCredential"])')
check "knockoff cannot see acme's batch" in_shell "[ \$(api $KNOCK $BASE/api/v1/batches/$BATCH) = 404 ]"
check "a station credential is no admin credential" in_shell "[ \$(api $STATION $BASE/api/v1/devices) = 401 ]"
mkdir -p station
for n in $(seq 25); do newkey station/$n.key; done
for n in $(seq 25); do
  ( body=$(printf '{"udid":"FAB-%d","publicKey":"%s"}' $n "$(openssl ec -in station/$n.key -pubout -outform DER 2>/dev/null | base64 -w0)")
    "${CURL[@]}" -o station/$n.out -w '%{http_code}\n' -H "Authorization: Bearer $STATION" -H 'Content-Type: application/json' \
      -d "$body" "$BASE/api/v1/station/devices" > station/$n.status ) &
done
must "25 registrations answered" eventually 20 in_shell '[ "$(cat station/*.status 2>/dev/null | wc -w)" -eq 25 ]'
check "25 parallel registrations against quota 10: exactly 10 get in" in_shell "[ \$(cat station/*.status | grep -c 201) -eq 10 ]"
check "  ... the other 15 are 403 quota_exceeded" in_shell "[ \$(grep -l quota_exceeded station/*.out | wc -l) -eq 15 ]"
check "  ... one overproduction alarm for acme" in_shell \
  "[ \$('$HALLMARK' registry events --data-dir '$DATA' --tenant acme --code overproduction | grep -c alarm) -eq 1 ]"
check "  ... batch report: quota 10, programmed 10, refused 15" in_shell \
  "'$HALLMARK' batch report --data-dir '$DATA' --tenant acme $BATCH | grep -qP '^$BATCH\tdefault\t10\t10\t0\t15$'"
REGISTERED=$(grep -l '"remaining"' station/*.out | head -1 | xargs basename | cut -d. -f1)
csr station/$REGISTERED.key FAB-$REGISTERED > fab.csr
check "a programmed device enrols at acme; the batch counts it enrolled" in_shell \
  "[ \$(est acme/ fab.csr) = 200 ] &&
   '$HALLMARK' batch report --data-dir '$DATA' --tenant acme $BATCH | grep -qP '\t10\t10\t1\t15$'"
REFUSED=$(grep -l quota_exceeded station/*.out | head -1 | xargs basename | cut -d. -f1)
csr station/$REFUSED.key FAB-$REFUSED > overproduced.csr
check "an over-produced device cannot enrol (unknown_device)" in_shell \
  "[ \$(est acme/ overproduced.csr) = 403 ] && grep -q unknown_device est.out"

# --- MQTT: tenants' topic spaces are apart; a clone is caught ---
mq() { echo "-h localhost -p $MQTT --cafile $DATA/ca/root.pem --cert $1.pem --key $2 -V mqttv5"; }
cat > open.json <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe", "iot:Receive", "iot:Publish"], "Resource": "*"}]}
JSON
# A knockoff device of its own (its own batch), with a policy allowing everything in its tenant.
KB=$("$HALLMARK" batch create --data-dir "$DATA" --tenant knockoff --quota 1 | awk '/credential:/ {print $3}')
newkey ko.key
"${CURL[@]}" -s -o /dev/null -H "Authorization: Bearer $KB" -H 'Content-Type: application/json' \
  -d "{\"udid\":\"KO-1\",\"publicKey\":\"$(openssl ec -in ko.key -pubout -outform DER 2>/dev/null | base64 -w0)\"}" "$BASE/api/v1/station/devices"
csr ko.key KO-1 > ko.csr
est knockoff/ ko.csr >/dev/null; base64 -d est.out | openssl pkcs7 -inform DER -print_certs | openssl x509 -out ko.pem
"$HALLMARK" policy create --data-dir "$DATA" --tenant knockoff open open.json >/dev/null
"$HALLMARK" policy attach --data-dir "$DATA" --tenant knockoff open KO-1 >/dev/null
mosquitto_sub $(mq ko ko.key) -i KO-1 -t '#' -W 4 -d > ko-sub.out 2>&1 &
SUB=$!
must "knockoff's subscriber subscribed" wait_for_line ko-sub.out "received SUBACK"
mosquitto_pub $(mq chip1 chip1.key) -i CHIP-1 -t things/CHIP-1/temperature -m '{"t":21}' -q 1
check "a knockoff subscriber to '#' receives nothing of acme's traffic" in_shell "wait $SUB; ! grep -q temperature ko-sub.out && ! grep -q '21' ko-sub.out"
check "a knockoff device cannot publish into acme's thing topics (its topic space is its own)" in_shell \
  "mosquitto_sub $(mq chip1 chip1.key) -i CHIP-1 -t 'things/CHIP-1/#' -W 3 -d > acme-sub.out 2>&1 & s=\$!; wait_for_line acme-sub.out 'received SUBACK';
   mosquitto_pub $(mq ko ko.key) -i KO-1 -t things/CHIP-1/temperature -m intrusion -q 1; wait \$s; ! grep -q intrusion acme-sub.out"

"$HALLMARK" policy create --data-dir "$DATA" --tenant acme open open.json >/dev/null
"$HALLMARK" policy attach --data-dir "$DATA" --tenant acme open CHIP-1 >/dev/null
"$HALLMARK" policy attach --data-dir "$DATA" --tenant acme open CHIP-2 >/dev/null

# Retained messages and $aws/events stay within their tenant; in each case acme's own subscriber
# gets what knockoff's must not, so the check can tell a leak from silence.
mosquitto_pub $(mq chip1 chip1.key) -i CHIP-1 -t things/CHIP-1/state -m retained-acme-state -r -q 1
check "a retained message of acme's reaches acme's subscriber" in_shell \
  "timeout 5 mosquitto_sub $(mq chip2 op2.key) -i CHIP-2 -t things/CHIP-1/state -C 1 -W 4 | grep -q retained-acme-state"
check "  ... and not knockoff's subscriber to '#' or to the same topic" in_shell \
  "timeout 5 mosquitto_sub $(mq ko ko.key) -i KO-1 -t '#' -t things/CHIP-1/state -W 2 > ko-retained.out 2>&1;
   ! grep -q retained-acme-state ko-retained.out"
# acme's OEM CA, registered with acme's code, made with openssl; its devices join by JITR.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout oemca.key -out oemca.pem -subj "/O=Acme OEM/CN=Acme OEM CA" \
  -days 365 -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
oem_issue() { # out, subject
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null &&
  openssl x509 -req -in "$1.csr" -CA oemca.pem -CAkey oemca.key -CAcreateserial -days 30 -out "$1.pem" -extfile idevid.ext 2>/dev/null; }
ACME_CODE=$("$HALLMARK" ca registration-code --data-dir "$DATA" --tenant acme)
KNOCK_CODE=$("$HALLMARK" ca registration-code --data-dir "$DATA" --tenant knockoff)
oem_issue oem-verify "/CN=$ACME_CODE"; oem_issue oem-verify-ko "/CN=$KNOCK_CODE"
check "each tenant has its own registration code" in_shell "[ '$ACME_CODE' != '$KNOCK_CODE' ] && [ \${#ACME_CODE} -eq 64 ]"
check "knockoff cannot register a CA with acme's registration code" in_shell \
  "'$HALLMARK' ca register --data-dir '$DATA' --tenant knockoff --ca-certificate oemca.pem --verification-certificate oem-verify.pem 2>&1 | grep -q ca_registration_invalid"
"$HALLMARK" ca register --data-dir "$DATA" --tenant acme --ca-certificate oemca.pem --verification-certificate oem-verify.pem >/dev/null
check "acme registers its OEM CA; knockoff, even holding the CA key, cannot register it too" in_shell \
  "'$HALLMARK' ca registered --data-dir '$DATA' --tenant acme | grep -q 'Acme OEM CA' &&
   ! '$HALLMARK' ca registered --data-dir '$DATA' --tenant knockoff | grep -q 'Acme OEM CA' &&
   '$HALLMARK' ca register --data-dir '$DATA' --tenant knockoff --ca-certificate oemca.pem --verification-certificate oem-verify-ko.pem 2>&1 | grep -q 'already registered'"
oem_issue oem-dev "/O=Acme OEM/CN=oem-dev-1"
timeout 8 mosquitto_sub $(mq chip2 op2.key) -i CHIP-2 -t '$aws/events/#' -C 1 -W 7 -d > acme-events.out 2>&1 & AE=$!
timeout 8 mosquitto_sub $(mq ko ko.key) -i KO-1 -t '$aws/events/#' -W 4 -d > ko-events.out 2>&1 & KE=$!
must "acme's events subscriber subscribed" wait_for_line acme-events.out "received SUBACK"
must "knockoff's events subscriber subscribed" wait_for_line ko-events.out "received SUBACK"
# The broker learns of the registered CA from the registry's change feed: until then TLS refuses.
must "the OEM device's first connection reaches MQTT (pending activation)" eventually 3 in_shell \
  "mosquitto_pub -h localhost -p '$MQTT' --cafile '$DATA/ca/root.pem' --cert oem-dev.pem --key oem-dev.key -i oem-dev-1 -V mqttv5 \
     -t things/oem-dev-1/x -m 1 2>&1 | grep -qi 'not authori'"
check "JITR of acme's OEM device: announced on \$aws/events to acme's subscriber" in_shell \
  "wait $AE; grep -q certificateRegistered acme-events.out || grep -q PENDING_ACTIVATION acme-events.out"
check "  ... and not to knockoff's subscriber to '\$aws/events/#'" in_shell "wait $KE; ! grep -q oem-dev ko-events.out && ! grep -qi pending ko-events.out"
check "  ... the pending certificate is acme's: knockoff cannot activate it" in_shell \
  "FP=\$(openssl x509 -in oem-dev.pem -outform der | sha256sum | cut -c1-64);
   '$HALLMARK' cert activate --data-dir '$DATA' --tenant knockoff \$FP 2>&1 | grep -q not_found &&
   '$HALLMARK' registry certificates --data-dir '$DATA' --tenant acme | grep -q pending"

mosquitto_sub $(mq chip1 chip1.key) -i board-a -t things/CHIP-1/cmd -d > board-a.out 2>&1 &
A=$!
must "board A subscribed" wait_for_line board-a.out "received SUBACK"
mosquitto_sub $(mq chip1 chip1.key) -i board-b -t things/CHIP-1/cmd > board-b.out 2>&1 &
B=$!
check "one certificate in two live sessions: clone_suspected alarm, the device quarantined" in_shell \
  "eventually 3 in_shell \"'$HALLMARK' registry devices --data-dir '$DATA' --status quarantined | grep -q CHIP-1\" &&
   '$HALLMARK' registry devices --data-dir '$DATA' --status quarantined | grep -q CHIP-1 &&
   '$HALLMARK' registry events --data-dir '$DATA' --tenant acme --code clone_suspected | grep -q 'two live sessions'"
check "  ... both sessions are ended within a second" in_shell \
  "eventually 2 in_shell '! kill -0 $A 2>/dev/null && ! kill -0 $B 2>/dev/null'"
check "  ... a reconnect is refused" refused mosquitto_pub $(mq chip1 chip1.key) -i board-a -t things/CHIP-1/x -m x
check "  ... enrollment is refused (device_quarantined)" in_shell \
  "[ \$(est acme/ chip1.csr) = 403 ] && grep -q device_quarantined est.out"
check "an operator releases it; it connects again" in_shell \
  "'$HALLMARK' registry set-status --data-dir '$DATA' CHIP-1 enrolled >/dev/null &&
   eventually 3 mosquitto_pub $(mq chip1 chip1.key) -i CHIP-1 -t things/CHIP-1/x -m back -q 1"
kill $A $B 2>/dev/null

check "the server logged no internal error" in_shell "! grep -q internal_error server.log && ! \"$HALLMARK\" registry events --data-dir '$DATA' --limit 2000 | grep -q internal_error"
stop_server
finish tenancy 65
