#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz, clang, ASan+UBSan) and runs each
# for SECONDS (default 20) on its seed corpus in tests/fuzz/corpus/<target>.
# What the fuzzer finds new goes to a scratch corpus (FUZZ_WORK, default
# build-fuzz/work/<target>), never into the repository; a crash (a sanitizer
# report or a failed invariant) is written there too and fails the script.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
shift || true
TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(photo time address hotline live numbers osmand geotag_body open311_form multipart accept_encoding fmp4 cameras rtsp)
BUILD=${FUZZ_BUILD:-build-fuzz}
WORK=${FUZZ_WORK:-$BUILD/work}

CC=${FUZZ_CC:-clang} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRIDCC_FUZZ=ON \
  >/dev/null
cmake --build "$BUILD" --target fuzz -j"$(nproc)" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_odr_violation=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${TARGETS[@]}"; do
  bin=$BUILD/tests/fuzz/fuzz_$t
  seeds=tests/fuzz/corpus/$t
  work=$WORK/$t
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  echo "fuzz: $t for ${SECONDS_EACH}s"
  # the scratch corpus first: libFuzzer adds new inputs to the first directory.
  # -timeout 30: PROJ's first transformation from a CRS searches proj.db for
  # its operations, 1-2 s under ASan, and 10 s was reached on a loaded machine
  if "$bin" "${dict[@]}" -max_total_time="$SECONDS_EACH" -max_len=16384 -timeout=30 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" \
       "$work" "$seeds" >"$work.log" 2>&1; then
    grep -E 'DONE|stat::number_of_executed_units' "$work.log" | tr '\n' ' ' | tr -s ' \t'
    echo
  else
    echo "fuzz: $t FAILED; the input is in $work/ (crash-*), the log in $work.log:"
    grep -E 'invariant failed|ERROR|SUMMARY|runtime error' "$work.log" | head -5
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${SECONDS_EACH}s without a crash"
