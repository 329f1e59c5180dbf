#!/usr/bin/env bash
# Firmware in MCUboot's format against MCUboot's own tool: images Hallmark masters are read by
# `imgtool dumpinfo` and, once a device's copy is decrypted (by Tests/e2e/firmware_decrypt.py,
# written from the format with Python `cryptography`), pass `imgtool verify`; images an OEM signed
# and encrypted with `imgtool sign -E` are imported without Hallmark holding the OEM's key. Then
# the attacks: an altered payload or ENC_EC256 key, another device's copy, an unregistered signer,
# a lower security counter, a downgrade, a truncated image, another product's image; and the A/B
# device: a trial boot confirmed, a failed trial reverted, a tamper failed over, recovery.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="firmware-test-passphrase"
H() { "$HALLMARK" "$@" --data-dir "$DATA"; }
# A device's copy decrypted with its key, then imgtool's verdict with a signing key.
verify_copy() { # copy, device dir, signing key
  python3 "$HERE/firmware_decrypt.py" "$1" "$2/firmware-key.pem" "$1.plain" && imgtool verify -k "$3" "$1.plain"
}
last_event() { H registry events --limit 1; }

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
H product create sensor >/dev/null
H product create gateway >/dev/null
must "firmware keys for product sensor" H firmware key create --product sensor --out keys
must "firmware keys for product gateway" H firmware key create --product gateway --out gwkeys
imgtool keygen -k oem.pem -t ecdsa-p256
imgtool keygen -k rogue.pem -t ecdsa-p256
imgtool getpub -k oem.pem -e pem > oem.pub.pem
must "two sensors manufactured trusting the product's and the OEM's signing keys" \
  "$HALLMARK" device factory --out devs --count 2 --boot-key keys/signing.pub.pem --boot-key oem.pub.pem --product sensor --allowlist devs.csv
must "a gateway manufactured" "$HALLMARK" device factory --out gws --count 1 --boot-key gwkeys/signing.pub.pem --product gateway --allowlist gws.csv
must "the sensors' allowlist (with firmware_key) imported" H allowlist import --product sensor devs.csv
must "the gateway's allowlist imported" H allowlist import --product gateway gws.csv
S1=devs/device-00001; S2=devs/device-00002; G1=gws/device-00001
U1=$(cat $S1/udid); U2=$(cat $S2/udid); UG=$(cat $G1/udid)
head -c 100000 /dev/urandom > app-1.0.bin; head -c 90000 /dev/urandom > app-1.1.bin; head -c 80000 /dev/urandom > app-2.0.bin

echo "# mastering, and each device's copy"
must "1.0.0 mastered (security counter 1)" in_shell "H firmware master --product sensor --version 1.0.0 --security-counter 1 app-1.0.bin > m1.out"
R1=$(tail -1 m1.out)
check "the release id is the image's SHA256 TLV (64 hex digits) on the last line" in_shell "echo '$R1' | grep -qxE '[0-9a-f]{64}'"
check "the key file's public halves are PEM that imgtool reads" in_shell "imgtool getpubhash -k keys/signing.pub.pem -e raw >/dev/null 2>&1 || imgtool getpubhash -k keys/signing.pub.pem >/dev/null"
must "S1's copy" H firmware image "$R1" --udid "$U1" --out s1-r1.img
must "S2's copy" H firmware image "$R1" --udid "$U2" --out s2-r1.img
check "imgtool dumpinfo reads a copy: ENCRYPTED_AES128, SEC_CNT, ENC_EC256" in_shell \
  "imgtool dumpinfo s1-r1.img > dump.txt && grep -q 'ENCRYPTED_AES128 (0x4)' dump.txt && grep -q 'SEC_CNT (0x50)' dump.txt && grep -q 'ENCEC256 (0x32)' dump.txt && grep -q 'version:            1.0.0' dump.txt"
check "imgtool verify refuses the encrypted copy as it stands (its hash is over the plaintext)" in_shell "! imgtool verify -k keys/signing.pub.pem s1-r1.img"
check "S1's copy decrypted with S1's key: imgtool verify validates it, digest = the release id" in_shell \
  "verify_copy s1-r1.img $S1 keys/signing.pub.pem | tee v.txt | grep -q 'Image was correctly validated' && grep -q 'Image digest: $R1' v.txt"
check "S2's copy decrypted with S2's key validates to the same digest" in_shell "verify_copy s2-r1.img $S2 keys/signing.pub.pem | grep -q 'Image digest: $R1'"
check "the decrypted payload is the binary" in_shell "tail -c +513 s1-r1.img.plain | head -c 100000 | cmp -s - app-1.0.bin"
check "the two copies differ only inside the ENC_EC256 value (113 bytes from its offset)" python3 -c "
import struct,sys
a,b=open('s1-r1.img','rb').read(),open('s2-r1.img','rb').read()
assert len(a)==len(b)
h,p,i=struct.unpack_from('<HHI',a,8); off=h+i+p; tot=struct.unpack_from('<H',a,off+2)[0]; o=off+4; enc=None
while o<off+tot:
  t,l=struct.unpack_from('<HH',a,o)
  if t==0x32: enc=(o+4,o+4+l)
  o+=4+l
d=[k for k in range(len(a)) if a[k]!=b[k]]
sys.exit(0 if enc and enc[1]-enc[0]==113 and d and all(enc[0]<=k<enc[1] for k in d) else 1)"
check "S2's key does not open S1's copy (the tag fails)" in_shell "python3 '$HERE/firmware_decrypt.py' s1-r1.img $S2/firmware-key.pem x.img; [ \$? -eq 3 ]"
check "the plain image is not stored: the registry holds no run of the binary" python3 -c "
import sqlite3; b=open('app-1.0.bin','rb').read()[1000:1064]
rows=sqlite3.connect('$DATA/registry.sqlite').execute('select image from firmware_releases').fetchall()
raise SystemExit(1 if any(b in r[0] for r in rows) else 0)"
check "the product's keys are sealed: no PEM private key in the registry" in_shell "! grep -aq 'BEGIN PRIVATE KEY' '$DATA/registry.sqlite'"
check "mastering the same version again is refused (firmware_release_exists)" in_shell \
  "! H firmware master --product sensor --version 1.0.0 app-1.0.bin 2>err.txt && grep -q firmware_release_exists err.txt"
check "a copy for another product's device is refused (firmware_wrong_product) and logged" in_shell \
  "! H firmware image $R1 --udid $UG --out x.img 2>err.txt && grep -q firmware_wrong_product err.txt && last_event | grep -q 'firmware.image.*firmware_wrong_product'"

echo "# an OEM's own signature, imported"
must "the OEM signs and encrypts 1.1.0 with imgtool" imgtool sign -k oem.pem -E keys/mastering.pub.pem -s 1 --vid default --cid sensor \
  -v 1.1.0 -H 0x200 --pad-header -S 0x100000 app-1.1.bin oem-1.1.img
check "an image by an unregistered signer is refused (firmware_signer_unknown) and logged" in_shell \
  "! H firmware import --product sensor oem-1.1.img 2>err.txt && grep -q firmware_signer_unknown err.txt && last_event | grep -q 'firmware.release.*refuse.*firmware_signer_unknown'"
must "the OEM's public key registered" H firmware signer add --product sensor oem.pub.pem
check "the OEM's image is imported" in_shell "H firmware import --product sensor oem-1.1.img > i.out"
R2=$(tail -1 i.out)
check "its copy for S1 validates with the OEM's key" in_shell "H firmware image $R2 --udid $U1 --out s1-r2.img && verify_copy s1-r2.img $S1 oem.pem | grep -q 'Image digest: $R2'"
must "an image signed by a rogue key" imgtool sign -k rogue.pem -E keys/mastering.pub.pem -s 1 -v 1.1.1 -H 0x200 --pad-header -S 0x100000 app-1.1.bin rogue.img
check "a rogue signer's image is refused" in_shell "! H firmware import --product sensor rogue.img 2>err.txt && grep -q firmware_signer_unknown err.txt"
must "an image encrypted for another product's mastering key" imgtool sign -k oem.pem -E gwkeys/mastering.pub.pem -s 1 -v 1.1.2 -H 0x200 --pad-header -S 0x100000 app-1.1.bin wrongkey.img
check "an image not encrypted for the product's mastering key is refused (firmware_not_for_device)" in_shell \
  "! H firmware import --product sensor wrongkey.img 2>err.txt && grep -q firmware_not_for_device err.txt"
must "an image naming another product's class id" imgtool sign -k oem.pem -E keys/mastering.pub.pem -s 1 --vid default --cid gateway -v 1.1.3 -H 0x200 --pad-header -S 0x100000 app-1.1.bin wrongcid.img
check "an image naming another product (UUID_CID) is refused (firmware_wrong_product)" in_shell \
  "! H firmware import --product sensor wrongcid.img 2>err.txt && grep -q firmware_wrong_product err.txt"
must "an image without a security counter" imgtool sign -k oem.pem -E keys/mastering.pub.pem -v 1.1.4 -H 0x200 --pad-header -S 0x100000 app-1.1.bin nocounter.img
check "an image without a security counter is refused (firmware_image_invalid)" in_shell \
  "! H firmware import --product sensor nocounter.img 2>err.txt && grep -q firmware_image_invalid err.txt"
check "a truncated image is refused (firmware_image_invalid)" in_shell \
  "head -c 50000 oem-1.1.img > short.img && ! H firmware import --product sensor short.img 2>err.txt && grep -q firmware_image_invalid err.txt"
check "firmware list shows both releases, mastered and imported" in_shell \
  "H firmware list --product sensor > list.txt && grep -q \"1.0.0.*mastered.*$R1\" list.txt && grep -q \"1.1.0.*imported.*$R2\" list.txt"

echo "# the A/B device"
slots() { "$HALLMARK" device slots --state "$1"; }
check "a new device has two empty slots" in_shell "slots $S1 | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if [x[\"state\"] for x in s[\"slots\"]]==[\"empty\",\"empty\"] else 1)'"
check "the factory image installs permanent in slot A and boots" in_shell \
  "'$HALLMARK' device install --state $S1 --permanent s1-r1.img && '$HALLMARK' device reboot --state $S1 | grep -q '\"event\":\"booted\".*\"slot\":\"A\"'"
check "another device's copy is refused by the device (firmware_not_for_device)" in_shell \
  "! '$HALLMARK' device install --state $S1 s2-r1.img 2>err.txt && grep -q firmware_not_for_device err.txt"
python3 - <<'PY'
d=bytearray(open('s1-r2.img','rb').read()); d[0x200+10]^=1; open('s1-r2-payload.img','wb').write(d)
import struct
h,p,i=struct.unpack_from('<HHI',d,8); o=h+i+p+4
d=bytearray(open('s1-r2.img','rb').read())
while True:
  t,l=struct.unpack_from('<HH',d,o)
  if t==0x32: d[o+4+70]^=1; break
  o+=4+l
open('s1-r2-enc.img','wb').write(d)
PY
check "an altered payload is refused (firmware_signature_invalid)" in_shell \
  "! '$HALLMARK' device install --state $S1 s1-r2-payload.img 2>err.txt && grep -q firmware_signature_invalid err.txt"
check "an altered ENC_EC256 key is refused (firmware_not_for_device)" in_shell \
  "! '$HALLMARK' device install --state $S1 s1-r2-enc.img 2>err.txt && grep -q firmware_not_for_device err.txt"
check "a truncated download is refused (firmware_image_invalid)" in_shell \
  "head -c 60000 s1-r2.img > s1-short.img && ! '$HALLMARK' device install --state $S1 s1-short.img 2>err.txt && grep -q firmware_image_invalid err.txt"
check "an image signed by a key the bootloader does not trust is refused (firmware_signer_unknown)" in_shell \
  "imgtool sign -k rogue.pem -E $S1/firmware-key.pem -s 1 -v 1.2.0 -H 0x200 --pad-header -S 0x100000 app-1.1.bin rogue-s1.img >/dev/null && ! '$HALLMARK' device install --state $S1 rogue-s1.img 2>err.txt && grep -q firmware_signer_unknown err.txt"
check "1.1.0 boots on trial, passes its self-test, is confirmed" in_shell \
  "'$HALLMARK' device install --state $S1 s1-r2.img >/dev/null && '$HALLMARK' device reboot --state $S1 > boot.txt && grep -q '\"trial\":\"true\"' boot.txt && grep -q '\"event\":\"confirmed\"' boot.txt"
check "slots: A 1.0.0 confirmed, B 1.1.0 confirmed and running" in_shell "slots $S1 | python3 -c '
import json,sys; s=json.load(sys.stdin); a,b=s[\"slots\"]
sys.exit(0 if s[\"running\"]==\"B\" and (a[\"version\"],a[\"state\"],b[\"version\"],b[\"state\"])==(\"1.0.0\",\"confirmed\",\"1.1.0\",\"confirmed\") else 1)'"
check "a downgrade to 1.0.0 is refused (firmware_downgrade)" in_shell \
  "! '$HALLMARK' device install --state $S1 s1-r1.img 2>err.txt && grep -q firmware_downgrade err.txt"
check "a tamper of the running slot: the next boot detects it and fails over to slot A" in_shell \
  "'$HALLMARK' device tamper --state $S1 >/dev/null && '$HALLMARK' device reboot --state $S1 > boot.txt && grep -q '\"event\":\"tamper_detected\",\"slot\":\"B\"' boot.txt && grep -q '\"event\":\"booted\".*\"slot\":\"A\"' boot.txt"
must "2.0.0 mastered with security counter 5" in_shell "H firmware master --product sensor --version 2.0.0 --security-counter 5 app-2.0.bin > m3.out"
R3=$(tail -1 m3.out)
must "S1's copy of 2.0.0" H firmware image "$R3" --udid "$U1" --out s1-r3.img
check "2.0.0 fails on its trial boot (slot B), and the next reset reverts to 1.0.0 in slot A" in_shell \
  "'$HALLMARK' device install --state $S1 s1-r3.img >/dev/null && '$HALLMARK' device reboot --state $S1 --fail | grep -q boot_failed && '$HALLMARK' device reboot --state $S1 > boot.txt && grep -q '\"event\":\"reverted\".*2.0.0' boot.txt && grep -q '\"event\":\"booted\".*\"slot\":\"A\".*1.0.0' boot.txt"
check "the reverted trial never raised the counter (still 1)" in_shell "slots $S1 | grep -q '\"securityCounter\" : 1,'"
check "2.0.0 confirmed raises the counter to 5; 1.1.0 (counter 1) is refused as a rollback" in_shell \
  "'$HALLMARK' device install --state $S1 s1-r3.img >/dev/null && '$HALLMARK' device reboot --state $S1 | grep -q counter_raised && ! '$HALLMARK' device install --state $S1 s1-r2.img 2>err.txt && grep -q firmware_rollback err.txt"
check "a confirmed image failing --boot-limit 2 boots in a row leaves no bootable slot (A's counter is below 5): recovery needed" in_shell \
  "'$HALLMARK' device reboot --state $S1 --fail --boot-limit 2 >/dev/null && '$HALLMARK' device reboot --state $S1 --fail >/dev/null && '$HALLMARK' device reboot --state $S1 | grep -q recovery_needed"
check "the last good release restored from Hallmark's copy boots" in_shell \
  "'$HALLMARK' device restore --state $S1 s1-r3.img >/dev/null && '$HALLMARK' device reboot --state $S1 | grep -q '\"event\":\"booted\".*2.0.0'"
check "every refusal above is an event with its code" in_shell \
  "events >/dev/null && grep -q 'firmware.release.*firmware_release_exists' events.txt && grep -q 'firmware.release.*firmware_not_for_device' events.txt && grep -q 'firmware.release.*firmware_image_invalid' events.txt"
finish firmware 39
