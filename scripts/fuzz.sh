#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset fuzz: clang, ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60), two at a time, from a copy of its seed corpus in fuzz/corpus.
# A crash fails the run and names the saved input; it belongs in fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-2}"
targets=(config npy npz csv libsvm idx mnist_json checkpoint)
build=build/fuzz
[[ -f $build/CMakeCache.txt ]] || cmake --preset fuzz >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/#/fuzz_}"
work="$build/run"
mkdir -p "$work"
run_one() {
  local t=$1 corpus="$work/corpus/$1" out="$work/$1.log"
  mkdir -p "$corpus" "$work/artifacts/$1"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  # -rss_limit_mb: an input that makes a reader take more than 2 GiB is a finding too.
  if "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" "$corpus" >"$out" 2>&1; then
    echo "fuzz: $t: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$out" |
      grep -o '[0-9]*$') inputs in ${seconds} s, no crash"
  else
    echo "fuzz: $t: FAILED; the input is in $work/artifacts/$t/ (log: $out)"
    tail -n 40 "$out"
    return 1
  fi
}
export -f run_one
export build work seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
