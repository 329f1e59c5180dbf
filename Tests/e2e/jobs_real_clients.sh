#!/usr/bin/env bash
# AWS IoT Jobs and firmware delivery against real clients: the AWS IoT Device SDK for Python
# (awsiotsdk's IotJobsClientV2, unchanged) drives the jobs API over mutual TLS; curl downloads
# releases with range requests; Hallmark's device agent takes firmware jobs, resumes a download
# cut by a power loss, reverts a release whose self-test fails; rollouts pace, pause and abort
# themselves; and the attacks are refused: a stale expectedVersion, another thing's execution,
# another tenant's thing, a download without a job, without a certificate, of another product.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/checks.sh"
export HALLMARK_PASSPHRASE="jobs-test-passphrase"
H() { "$HALLMARK" "$@" --data-dir "$DATA"; }
ROOT="$DATA/ca/root.pem"

"$HALLMARK" ca init --data-dir "$DATA" >/dev/null
H product create sensor >/dev/null
H tenant create acme --name "Acme" >/dev/null
H firmware key create --product sensor --out keys >/dev/null
must "six sensors manufactured" "$HALLMARK" device factory --out devs --count 6 --trust "$ROOT" --boot-key keys/signing.pub.pem --product sensor --allowlist devs.csv
must "an acme device manufactured" "$HALLMARK" device factory --out acme --count 1 --trust "$ROOT" --allowlist acme.csv
must "a default-product device manufactured" "$HALLMARK" device factory --out other --count 1 --trust "$ROOT" --allowlist other.csv
must "allowlists imported" in_shell "H allowlist import --product sensor devs.csv && H allowlist import --tenant acme acme.csv && H allowlist import other.csv"
start_server
B="https://localhost:$HTTPS"
D() { echo "devs/device-0000$1"; }
U() { cat "$(D $1)/udid"; }
for i in 1 2 3 4 5 6; do must "sensor $i enrols" "$HALLMARK" device boot --state "$(D $i)" --server "$B"; done
must "the acme device enrols" "$HALLMARK" device boot --state acme/device-00001 --server "$B/acme"
must "the other device enrols" "$HALLMARK" device boot --state other/device-00001 --server "$B"
UA=$(cat acme/device-00001/udid); UO=$(cat other/device-00001/udid)
head -c 300000 /dev/urandom > v1.bin; head -c 250000 /dev/urandom > v2.bin
{ head -c 5000 /dev/urandom; printf 'HALLMARK-SELF-TEST-FAILS'; head -c 5000 /dev/urandom; } > bad.bin
R1=$(H firmware master --product sensor --version 1.0.0 --security-counter 1 v1.bin | tail -1)
R2=$(H firmware master --product sensor --version 1.1.0 --security-counter 2 v2.bin | tail -1)
RB=$(H firmware master --product sensor --version 1.2.0 --security-counter 3 bad.bin | tail -1)
jobs_client() { python3 "$HERE/jobs_client.py" localhost "$MQTT" "$ROOT" "$(D $1)/certificate.pem" "$(D $1)/rot-key.pem" "$(U $1)" "${@:2}"; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval('d' + sys.argv[1]))" "$2"; }

echo "# the AWS IoT Device SDK, unchanged"
must "a job for S1 and S2" in_shell "H job create --release $R1 --things $(U 1),$(U 2) --job-id sdk-job > job.out"
check "the execution is released within two seconds" eventually 2 in_shell "H job describe sdk-job | grep -q 'QUEUED 2'"
check "IotJobsClientV2 runs get, start-next, update, describe against Hallmark" in_shell "jobs_client 1 flow > sdk.json"
check "get pending lists the queued job" in_shell "[ \"\$(field sdk.json \"['queued']\")\" = \"['sdk-job']\" ]"
check "start-next moves it to IN_PROGRESS (version 2) with its afr_ota and hallmark document" in_shell \
  "[ \"\$(field sdk.json \"['started']['status']\")\" = IN_PROGRESS ] && [ \"\$(field sdk.json \"['started']['version']\")\" = 2 ] && [ \"\$(field sdk.json \"['started']['document']['hallmark']['release']\")\" = $R1 ] && field sdk.json \"['started']['document']['afr_ota']['files'][0]['update_data_url']\" | grep -q /firmware/v1/releases/$R1/image"
check "timestamps are seconds (the SDK reads a sane year)" in_shell "[ \"\$(field sdk.json \"['started']['queued_at_year']\")\" -ge 2026 ]"
check "an update with a stale expectedVersion (a replay) is rejected VersionMismatch" in_shell "[ \"\$(field sdk.json \"['stale']\")\" = VersionMismatch ]"
check "SUCCEEDED is recorded with its statusDetails" in_shell \
  "[ \"\$(field sdk.json \"['final']['status']\")\" = SUCCEEDED ] && [ \"\$(field sdk.json \"['final']['details']['reason']\")\" = accepted ]"
check "an update after a terminal status is rejected InvalidStateTransition" in_shell "[ \"\$(field sdk.json \"['after_terminal']\")\" = InvalidStateTransition ]"
check "a describe of an unknown job is rejected ResourceNotFound" in_shell "[ \"\$(field sdk.json \"['unknown_job']\")\" = ResourceNotFound ]"
check "a stale update is an event (jobs.request VersionMismatch)" event "jobs.request.*VersionMismatch"
check "S1's outcome is an event (job.execution succeeded)" event "job.execution.*succeeded.*$(U 1)"
check "S2 still has its queued execution" in_shell "jobs_client 2 pending > p2.json && [ \"\$(field p2.json \"['queued']\")\" = \"['sdk-job']\" ]"
check "the default policy refuses S1 acting on S2's execution" in_shell \
  "jobs_client 1 update-other $(U 2) sdk-job > other.json && field other.json \"['other']\" | grep -qE 'failed|unmodeled'"
cat > open-jobs.json <<'POLICY'
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:hallmark:iot:::client/${iot:Connection.Thing.ThingName}"},
 {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:hallmark:iot:::topic/$aws/things/*"},
 {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:hallmark:iot:::topicfilter/$aws/things/*"}]}
POLICY
must "a policy that lets S1 publish to every thing's jobs topics" in_shell "H policy create open-jobs open-jobs.json && H policy attach open-jobs $(U 1)"
check "even so, Hallmark refuses S1 updating S2's execution (InvalidRequest, logged not_authorized)" in_shell \
  "sleep 1 && jobs_client 1 update-other $(U 2) sdk-job > other.json && [ \"\$(field other.json \"['other']\")\" = InvalidRequest ] && sleep 0.5 && event 'jobs.request.*not_authorized'"
check "S2's execution is untouched" in_shell "jobs_client 2 pending > p2.json && [ \"\$(field p2.json \"['queued']\")\" = \"['sdk-job']\" ]"
check "a job for another tenant's thing is refused (not_found) and logged" in_shell \
  "! H job create --release $R1 --things $UA 2>err.txt && grep -q not_found err.txt && event 'job.create.*refuse.*not_found'"
check "a job over another product's things is refused (firmware_wrong_product)" in_shell \
  "! H job create --release $R1 --product default 2>err.txt && grep -q firmware_wrong_product err.txt"
check "a rollout file outside AWS's limits is refused (job_invalid)" in_shell \
  "echo '{\"jobExecutionsRolloutConfig\":{\"maximumPerMinute\":5000}}' > big.json && ! H job create --release $R1 --things $(U 3) --rollout big.json 2>err.txt && grep -q job_invalid err.txt"

echo "# delivery over mutual TLS"
dl() { curl -s --cacert "$ROOT" --cert "$1/certificate.pem" --key "$1/rot-key.pem" "${@:2}"; }
check "S2 downloads its copy while the job targets it (200, the release's size)" in_shell \
  "[ \"\$(dl $(D 2) -o s2.img -w '%{http_code} %{size_download}' $B/firmware/v1/releases/$R1/image)\" = \"200 \$(H firmware list --product sensor | awk '\$2==\"1.0.0\" {print \$6}')\" ]"
check "a range request resumes it: 206 with Content-Range, and the parts join to the whole" in_shell \
  "dl $(D 2) -o a.part -r 0-99999 $B/firmware/v1/releases/$R1/image && dl $(D 2) -D h.txt -o b.part -r 100000- $B/firmware/v1/releases/$R1/image && grep -qi '^content-range: bytes 100000-' h.txt && cat a.part b.part | cmp -s - s2.img"
check "the copy is S2's: it installs on S2" "$HALLMARK" device install --state "$(D 2)" s2.img
check "S3, with no job for it, is refused (not_authorized, 403) and logged" in_shell \
  "[ \"\$(dl $(D 3) -o /dev/null -w '%{http_code}' $B/firmware/v1/releases/$R1/image)\" = 403 ] && event 'firmware.image.*refuse.*not_authorized.*$(U 3)'"
check "no client certificate: refused (client_certificate_required)" in_shell \
  "curl -s --cacert '$ROOT' $B/firmware/v1/releases/$R1/image | grep -q client_certificate_required"
check "another tenant's device cannot see the release (not_found)" in_shell \
  "dl acme/device-00001 $B/firmware/v1/releases/$R1/image | grep -q not_found"
check "a range past the end is 416" in_shell "[ \"\$(dl $(D 2) -o /dev/null -w '%{http_code}' -r 9999999- $B/firmware/v1/releases/$R1/image)\" = 416 ]"

echo "# the device agent takes its jobs"
agent() { "$HALLMARK" device jobs --state "$(D $1)" --server "$B" --mqtt "localhost:$MQTT" "${@:2}"; }
must "1.0.0 for S3 to S6" in_shell "H job create --release $R1 --things $(U 3),$(U 4),$(U 5),$(U 6) --job-id base > /dev/null"
sleep 1.5
check "S3's download is cut by a power loss after 100,000 bytes (nothing reported yet)" in_shell \
  "agent 3 --stop-download-after 100000 | grep -q 'jobs: 0 handled' && [ \$(stat -c %s $(D 3)/download.part) = 100000 ]"
check "on the next boot it resumes from byte 100,000 (a range request), installs, self-tests, SUCCEEDED" in_shell \
  "agent 3 | grep -q 'base: SUCCEEDED' && event 'firmware.image.*resume.*bytes 100000-'"
for i in 4 5 6; do must "S$i takes 1.0.0" in_shell "agent $i | grep -q 'base: SUCCEEDED'"; done
check "S3's slots: 1.0.0 confirmed and running" in_shell "'$HALLMARK' device slots --state $(D 3) | grep -q '\"running\" : \"A\"'"
check "job base completes once every execution ended" eventually 3 in_shell "H job describe base | grep -q 'COMPLETED.*SUCCEEDED 4'"

echo "# a bad release stops itself"
cat > abort.json <<'ROLL'
{"abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]},
 "waves": [{"name": "canary", "percent": 50, "successThreshold": 100, "errorThreshold": 60}, {"name": "rest", "percent": 50, "successThreshold": 0, "errorThreshold": 100}]}
ROLL
must "1.2.0 (its self-test fails) rolled out to S3..S6 in two waves with an abort criterion" \
  in_shell "H job create --release $RB --things $(U 3),$(U 4),$(U 5),$(U 6) --rollout abort.json --job-id bad > /dev/null"
check "only the canary wave (2 of 4) is released" eventually 3 in_shell "H job describe bad | grep -q 'QUEUED 2, SCHEDULED 2'"
check "the canary devices fail their self-test and revert to 1.0.0" in_shell \
  "agent 3 | grep -q 'bad: FAILED.*reason=self_test_failed.*version=1.0.0' && agent 4 | grep -q 'bad: FAILED.*version=1.0.0'"
check "the abort criterion cancels the job; the second wave is never sent" eventually 3 in_shell \
  "H job describe bad | grep -q 'CANCELED.*FAILED 2.*abort criterion met'"
check "S5 gets nothing" in_shell "agent 5 | grep -q 'jobs: 0 handled'"
check "the abort is an alarm in the log" event "job.status.*alarm.*aborted"

echo "# rollback never sent, paced rollouts"
must "1.1.0 (counter 2) to S5" in_shell "H job create --release $R2 --things $(U 5) --job-id up > /dev/null && sleep 1.5 && agent 5 | grep -q 'up: SUCCEEDED.*securityCounter=2'"
check "a job of 1.0.0 (counter 1) is never sent to S5, which reported counter 2 (REMOVED, firmware_rollback event)" in_shell \
  "H job create --release $R1 --things $(U 5),$(U 6) --job-id old > /dev/null && sleep 1.5 && H job describe old | grep -q 'REMOVED 1' && event 'job.execution.*firmware_rollback.*$(U 5)'"
check "S5's device would refuse it anyway (firmware_rollback)" in_shell "! '$HALLMARK' device install --state $(D 5) s2.img 2>err.txt; grep -q 'firmware_not_for_device\|firmware_rollback\|firmware_downgrade' err.txt"
cat > slow.json <<'ROLL'
{"jobExecutionsRolloutConfig": {"maximumPerMinute": 2}, "timeoutConfig": {"inProgressTimeoutInMinutes": 1}}
ROLL
check "maximumPerMinute 2 releases 2 of 4 in the first minute" in_shell \
  "H job create --release $R2 --things $(U 3),$(U 4),$(U 6),$(U 1) --rollout slow.json --job-id slow > /dev/null && sleep 3 && H job describe slow | grep -q 'QUEUED 2, SCHEDULED 2'"
check "pause and resume are recorded" in_shell "H job pause slow && H job resume slow && event 'job.status.*resumed'"
check "cancel cancels the queued executions" in_shell "H job cancel slow && H job describe slow | grep -q 'CANCELED' && ! H job describe slow | grep -q QUEUED"
check "a canceled job cannot be paused (job_state_invalid)" in_shell "! H job pause slow 2>err.txt && grep -q job_state_invalid err.txt"

echo "# two-stage deployment: the production release on first connection"
must "a seventh sensor, made later" in_shell "'$HALLMARK' device factory --out late --count 1 --trust '$ROOT' --boot-key keys/signing.pub.pem --product sensor --allowlist late.csv && H allowlist import --product sensor late.csv && '$HALLMARK' device boot --state late/device-00001 --server $B"
check "a release of another product cannot be a product's production release" in_shell \
  "! H product production-release default $R2 2>err.txt && grep -q firmware_wrong_product err.txt"
must "1.1.0 is product sensor's production release" H product production-release sensor "$R2"
check "its first connection gets it a production job, released within two seconds" in_shell \
  "'$HALLMARK' device jobs --state late/device-00001 --server $B --mqtt localhost:$MQTT >/dev/null && eventually 3 in_shell \"H job list | grep -q 'production-sensor-.*QUEUED 1'\""
check "the device takes it on its next connection: 1.1.0 SUCCEEDED" in_shell \
  "'$HALLMARK' device jobs --state late/device-00001 --server $B --mqtt localhost:$MQTT | grep -q 'production-sensor-.*SUCCEEDED.*version=1.1.0'"
check "connecting again queues nothing more (it runs the production release)" in_shell \
  "'$HALLMARK' device jobs --state late/device-00001 --server $B --mqtt localhost:$MQTT | grep -q 'jobs: 0 handled' && sleep 1.5 && H job list | grep 'production-sensor-' | grep -q 'COMPLETED.*SUCCEEDED 1'"

echo "# restored from Hallmark"
check "S3's running image tampered with, its other slot rejected: the next boot needs recovery" in_shell \
  "'$HALLMARK' device tamper --state $(D 3) >/dev/null && '$HALLMARK' device reboot --state $(D 3) | grep -q recovery_needed"
check "device recover fetches the release S3 last reported running from Hallmark, and boots it" in_shell \
  "'$HALLMARK' device recover --state $(D 3) --server $B | grep -q 'restored 1.0.0' && '$HALLMARK' device slots --state $(D 3) | grep -q '\"running\" : \"A\"' && event 'firmware.image.*allow.*$(U 3)'"
check "a device cannot fetch a release it never ran as a restore (S6 and 1.1.0: not_authorized)" in_shell \
  "[ \"\$(dl $(D 6) -o /dev/null -w '%{http_code}' $B/firmware/v1/releases/$R2/image)\" = 403 ]"
stop_server
finish jobs 48
