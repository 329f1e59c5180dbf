#!/usr/bin/env bash
# Builds Hallmark's fuzz targets: libFuzzer binaries with address sanitizer, in Fuzz/.build.
# Usage: bash Fuzz/build.sh [debug|release]   (debug by default: assertions and bounds checks on)
set -euo pipefail
cd "$(dirname "$0")"
configuration="${1:-debug}"
swift build -c "$configuration" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
echo "built: $(swift build -c "$configuration" --show-bin-path)"
