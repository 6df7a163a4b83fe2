#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 60) from its seeds (Fuzz/Seeds/TARGET,
# committed) and the corpus it has grown (.build-fuzz/corpus/TARGET, kept between runs).
# A crash is saved as .build-fuzz/crashes/TARGET-crash-*; the run fails if any target crashed.
# Usage: Fuzz/run.sh [TARGET...]   (`make fuzz`; `make test` runs it with a few seconds each)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_BUILD_DIR:-.build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(normalizer ssml sentences query json voiceconfig catalog wyoming)
Fuzz/build.sh "${targets[@]}" || exit 1
mkdir -p "$OUT/crashes"
# Leaks in Foundation itself are not Lark's (see the file); Swift's own crash backtracer reads
# stack memory that AddressSanitizer would report as a second error.
export LSAN_OPTIONS=suppressions=$PWD/Fuzz/lsan.supp ASAN_OPTIONS=detect_stack_use_after_return=0 SWIFT_BACKTRACE=enable=no
failed=()
for target in "${targets[@]}"; do
  corpus=$OUT/corpus/$target
  mkdir -p "$corpus"
  log=$OUT/$target.log
  # One process, no forks: the machine is shared. Inputs up to 4 KiB, as request fields are short.
  if "$OUT/fuzz-$target" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$OUT/crashes/$target-" -print_final_stats=1 "$corpus" "Fuzz/Seeds/$target" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "fuzz $target: ${runs:-?} inputs in ${SECONDS_EACH}s, no crash"
  else
    failed+=("$target")
    echo "fuzz $target: FAILED; the input is in $OUT/crashes/, the log in $log:"
    grep -E 'Fatal error|ERROR: |SUMMARY|Test unit written' "$log" | head -8
  fi
done
[[ ${#failed[@]} -eq 0 ]] || { echo "fuzz: crashes in ${failed[*]}"; exit 1; }
