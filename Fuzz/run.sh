#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) over its committed corpus, first replaying every
# regression input, then fuzzing for a bounded time. Fails on any crash, failed invariant, leak,
# timeout or input slower than the slow-input bound.
#
#   bash Fuzz/run.sh                       # each target 30 s (FUZZ_SECONDS), the CI run
#   FUZZ_RUNS=10000000 bash Fuzz/run.sh FuzzMQTT   # a long run by hand: 10 million executions
#
# New corpus entries go to a scratch directory, not the repository; findings are written to
# Fuzz/findings/<target>/ (kept out of git) to be minimised into Fuzz/Regressions/<target>/.
set -uo pipefail
cd "$(dirname "$0")"
configuration="${FUZZ_CONFIGURATION:-debug}"
bin="$(swift build -c "$configuration" --show-bin-path 2>/dev/null)"
seconds="${FUZZ_SECONDS:-30}"
runs="${FUZZ_RUNS:-}"
slow_ms="${FUZZ_SLOW_MS:-100}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(ls Sources | grep '^Fuzz' | grep -v FuzzSupport))
fi
scratch="$(mktemp -d /tmp/hallmark-fuzz.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export SWIFT_BACKTRACE=enable=no  # Swift's backtracer reads its own stack, which ASan reports as a second finding

# Runs each input given on its own and prints the slowest time, in ms. The first input is run
# twice and its first time dropped: a process's first input pays its one-time set-up.
slowest_of() { # exe, inputs...: exits non-zero when an input fails
  local exe="$1"; shift
  "$exe" -timeout=5 "$1" "$@" > "$scratch/replay.out" 2>&1 || { tail -30 "$scratch/replay.out"; return 1; }
  grep -o 'in [0-9]* ms' "$scratch/replay.out" | tail -n +2 | awk '{ if ($2 > m) m = $2 } END { print m + 0 }'
}

failures=0
ran=0
report() { printf '%-18s %s\n' "$1" "$2"; }
for target in "${targets[@]}"; do
  exe="$bin/$target"
  if [ ! -x "$exe" ]; then report "$target" "FAIL: not built ($exe); run bash Fuzz/build.sh"; failures=$((failures + 1)); continue; fi
  ran=$((ran + 1))
  mkdir -p "$scratch/$target" "findings/$target"
  cp Corpus/"$target"/* "$scratch/$target/" 2>/dev/null || true

  # 1. Every regression input and every corpus input, each on its own: none may fail or be slow.
  inputs=(Regressions/"$target"/* Corpus/"$target"/*)
  existing=()
  for f in "${inputs[@]}"; do [ -f "$f" ] && existing+=("$f"); done
  if [ ${#existing[@]} -gt 0 ]; then
    if ! slowest=$(slowest_of "$exe" "${existing[@]}"); then
      report "$target" "FAIL: a regression or corpus input fails"; echo "$slowest"; failures=$((failures + 1)); continue
    fi
    if [ "$slowest" -gt "$slow_ms" ]; then
      report "$target" "FAIL: an input takes ${slowest} ms (bound ${slow_ms} ms)"; grep -B1 "in $slowest ms" "$scratch/replay.out" | head -4
      failures=$((failures + 1)); continue
    fi
  fi

  # 2. Fuzz: bounded by time (CI) or by executions (a long run).
  limit=(-max_total_time="$seconds")
  [ -n "$runs" ] && limit=(-runs="$runs")
  # The manifest check is async: its task is freed after the input returns, which would make
  # libFuzzer's per-input leak check scan the heap on every input. LSan's check at exit stays on.
  extra=()
  [ "$target" = FuzzManifest ] && extra=(-detect_leaks=0)
  started=$(date +%s)
  if "$exe" "${limit[@]}" "${extra[@]}" -timeout=2 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
       -artifact_prefix="findings/$target/" "$scratch/$target" > "$scratch/$target.log" 2>&1; then
    execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$scratch/$target.log")
    rate=$(awk '/stat::average_exec_per_sec:/ { print $2 }' "$scratch/$target.log")
    corpus=$(ls "$scratch/$target" | wc -l)
    # Every input the run kept, replayed on its own: none may be slower than the bound either.
    kept=0
    mapfile -t inputs < <(find "$scratch/$target" -type f)
    for ((i = 0; i < ${#inputs[@]}; i += 500)); do
      if ! batch=$(slowest_of "$exe" "${inputs[@]:i:500}"); then
        report "$target" "FAIL: an input the run kept fails"; echo "$batch"; kept=-1; break
      fi
      [ "$batch" -gt "$kept" ] && kept=$batch
    done
    [ "$kept" -lt 0 ] && { failures=$((failures + 1)); continue; }
    if [ "$kept" -gt "$slow_ms" ]; then
      report "$target" "FAIL: an input the run kept takes ${kept} ms (bound ${slow_ms} ms)"
      failures=$((failures + 1)); continue
    fi
    report "$target" "ok: ${execs:-?} executions in $(( $(date +%s) - started )) s (${rate:-?}/s), corpus ${corpus}, slowest input ${kept} ms (seeds ${slowest:-0} ms)"
  else
    report "$target" "FAIL: a finding (kept in Fuzz/findings/$target/)"
    grep -E 'invariant failed|Fatal error|ERROR: |SUMMARY|Test unit written' "$scratch/$target.log" | head -8
    failures=$((failures + 1))
  fi
done

echo "fuzz: ${ran} of ${#targets[@]} targets ran, ${failures} failed"
[ "$ran" -eq "${#targets[@]}" ] && [ "$failures" -eq 0 ]
