#!/usr/bin/env bash
# Runs every Hallmark test: Swift unit and live tests, then the end-to-end tests with real clients.
# Installs the Debian and PyPI tools the tests use when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
[ -e /usr/include/sqlite3.h ] || need_apt+=(libsqlite3-dev)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
[ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)  # the broker benchmark runs it beside Hallmark
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v promtool >/dev/null; then
  echo "installing: prometheus (for promtool, which checks GET /metrics)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  { $SUDO apt-get update -qq || true; } && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
if ! command -v lint_pkix_cert >/dev/null || ! command -v lint_pkix_signer_signee_cert_chain >/dev/null; then
  echo "installing: pkilint"
  python3 -m pip install -q pkilint || python3 -m pip install -q --break-system-packages pkilint
fi

if ! python3 -c "import cryptography.hazmat.primitives.serialization.pkcs7" 2>/dev/null; then
  echo "installing: cryptography"  # the crash test's devices (pkilint usually brings it)
  python3 -m pip install -q cryptography || python3 -m pip install -q --break-system-packages cryptography
fi

if ! python3 -c "import paho.mqtt, sys; sys.exit(int(paho.mqtt.__version__.split('.')[0]) < 2)" 2>/dev/null; then
  echo "installing: paho-mqtt"
  python3 -m pip install -q "paho-mqtt>=2" || python3 -m pip install -q --break-system-packages "paho-mqtt>=2"
fi
if ! python3 -c 'import pymerkle' 2>/dev/null; then
  echo "installing: pymerkle"
  python3 -m pip install -q "pymerkle==7.0.0" || python3 -m pip install -q --break-system-packages "pymerkle==7.0.0"
fi
if ! python3 -c 'import imgtool, sys; sys.exit(imgtool.imgtool_version != "2.5.0")' 2>/dev/null; then
  echo "installing: imgtool"  # MCUboot's own image tool, for the firmware suite
  python3 -m pip install -q "imgtool==2.5.0" || python3 -m pip install -q --break-system-packages "imgtool==2.5.0"
fi
if ! python3 -c 'import awsiot, awscrt, sys; sys.exit(awscrt.__version__ != "0.36.1")' 2>/dev/null; then
  echo "installing: awsiotsdk"  # the AWS IoT Device SDK for Python, for the jobs suite
  python3 -m pip install -q "awsiotsdk==1.31.0" "awscrt==0.36.1" || python3 -m pip install -q --break-system-packages "awsiotsdk==1.31.0" "awscrt==0.36.1"
fi

if ! python3 -c 'import pycose, cbor2, sys, importlib.metadata as m; sys.exit(int(m.version("cbor2").split(".")[0]) >= 6)' 2>/dev/null \
   || ! python3 -c 'import AWSIoTDeviceDefenderAgentSDK.collector' 2>/dev/null; then
  echo "installing: pycose, cbor2<6, AWSIoTDeviceDefenderAgentSDK"  # COSE_Sign1 and AWS's own Defender collector
  python3 -m pip install -q "pycose==1.1.0" "cbor2<6" "AWSIoTDeviceDefenderAgentSDK==2.0.0" psutil cbor "awsiotsdk==1.31.0" "awscrt==0.36.1" \
    || python3 -m pip install -q --break-system-packages "pycose==1.1.0" "cbor2<6" "AWSIoTDeviceDefenderAgentSDK==2.0.0" psutil cbor "awsiotsdk==1.31.0" "awscrt==0.36.1"
fi
swift build --build-tests
swift test --skip-build
HALLMARK="$(swift build --show-bin-path)/hallmark"
HALLMARK="$HALLMARK" bash Tests/e2e/est_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/crash_consistency.sh
HALLMARK="$HALLMARK" bash Tests/e2e/mqtt_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/byoca_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/tenancy_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/revocation_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/log_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/firmware_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/jobs_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/provisioning_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/defender_real_clients.sh
HALLMARK="$HALLMARK" bash Tests/e2e/limits_real_clients.sh
# The soak test, short: two minutes of load with kills, floods, a full disk and descriptors run out.
SOAK_SECONDS="${SOAK_SECONDS:-120}" HALLMARK="$HALLMARK" bash Tests/e2e/soak.sh
"$HALLMARK" demo --devices 20
# The benchmark, small: it and its registry-free reference run, and every enrollment succeeds.
"$(dirname "$HALLMARK")/hallmark-bench" enroll --rounds 1 --devices 200 --idle-devices 1000 --concurrency 4
# and fleet provisioning by claim beside it: every provisioning succeeds.
"$(dirname "$HALLMARK")/hallmark-bench" provision --rounds 1 --devices 100 --concurrency 4
# Every parser under libFuzzer with address sanitizer: the regressions replayed, then 20 s per target.
bash Fuzz/build.sh
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash Fuzz/run.sh
echo "all tests passed"
