#!/usr/bin/env bash
# Builds tapegrad's libFuzzer targets (tests/fuzz: .npy, .npz, checkpoint, vocabulary, CSV) with
# clang, address and undefined-behaviour sanitizers into build-fuzz/, then runs each target for
# SECONDS (default 60) on a copy of its seed corpus, so the committed corpus does not grow.
# Exits non-zero when a target finds anything: a crash, a sanitizer report, a leak, an exception
# other than tapegrad::Error, a timeout or an input needing more than 2 GB.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Installs nothing: it needs clang and libclang-rt-14-dev besides the usual dependencies
# (scripts/install-deps.sh). JOBS sets the build's parallelism (default: the number of CPUs);
# FUZZ_BUILD_DIR another build directory (default build-fuzz).
#
# FUZZ_SEED (default 1) seeds libFuzzer's mutations, so that a run of the test suite is a
# reproducible check: the same commit fuzzes the same inputs, and a finding reproduces. FUZZ_SEED=0
# takes a new random seed each run; use it, with a longer time, to search for new bugs. Inputs that
# once failed are kept in the seed corpora as found_* files, so every run replays them first.
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-60}"
if ! [[ "$duration" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, got '$duration'" >&2
  exit 2
fi
seed="${FUZZ_SEED:-1}"
if ! [[ "$seed" =~ ^[0-9]+$ ]]; then
  echo "fuzz.sh: FUZZ_SEED must be a whole number (0 for a random seed), got '$seed'" >&2
  exit 2
fi
for tool in clang clang++ cmake; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz.sh: $tool not found (install clang and libclang-rt-14-dev)" >&2
    exit 2
  fi
done

source scripts/clang-build-dir.sh
build="${FUZZ_BUILD_DIR:-build-fuzz}"
clang_build_dir "$build"

targets=(npy npz checkpoint vocab csv)
# Longest input per target: a little over the largest seed, so the fuzzer can grow inputs but
# spends its time on sizes a parser must handle, not on megabytes of padding.
declare -A max_len=([npy]=4096 [npz]=16384 [checkpoint]=131072 [vocab]=4096 [csv]=4096)
declare -A dict=([npy]=npy.dict [npz]=npy.dict [checkpoint]=npy.dict [csv]=csv.dict)

echo "fuzz.sh: configuring $build/ (clang, -O1 -g, address + undefined sanitizers)"
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_EXAMPLES=OFF \
  -DTAPEGRAD_BUILD_BENCH=OFF -DTAPEGRAD_BUILD_FUZZ=ON >"$build.configure.log" 2>&1 || {
  cat "$build.configure.log" >&2
  echo "fuzz.sh: configuring failed" >&2
  exit 1
}
rm -f "$build.configure.log"
echo "fuzz.sh: building ${targets[*]/#/fuzz_}"
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"

export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"

failed=()
printf '%-12s %10s %10s %12s  %s\n' target runs exec/s corpus result
for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/fuzz_$t"
  seeds="tests/fuzz/corpus/$t"
  work="$build/fuzz-run/$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz.sh: $exe was not built" >&2
    exit 1
  fi
  if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
    echo "fuzz.sh: no seed corpus in $seeds" >&2
    exit 1
  fi
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$seeds"/* "$work/corpus/"
  args=("$work/corpus" -max_total_time="$duration" -rss_limit_mb=2048 -malloc_limit_mb=2048
        -max_len="${max_len[$t]}" -timeout=25 -seed="$seed" -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  if [ -n "${dict[$t]:-}" ]; then args+=(-dict="tests/fuzz/${dict[$t]}"); fi
  set +e
  "$exe" "${args[@]}" >"$work/log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  files=$(find "$work/corpus" -type f | wc -l)
  artifacts=$(find "$work/artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$artifacts" -ne 0 ]; then
    result="FAILED (exit $rc; inputs in $work/artifacts/, log in $work/log)"
    failed+=("$t")
  else
    result=ok
  fi
  printf '%-12s %10s %10s %12s  %s\n' "fuzz_$t" "${runs:-?}" "${speed:-?}" "$files" "$result"
done

if [ ${#failed[@]} -ne 0 ]; then
  for t in "${failed[@]}"; do
    echo
    echo "==== fuzz_$t: end of $build/fuzz-run/$t/log ===="
    grep -v '^#[0-9]' "$build/fuzz-run/$t/log" | tail -n 40
  done
  echo
  echo "fuzz.sh: findings in: ${failed[*]}; reproduce with $build/tests/fuzz/fuzz_<target> <input>" >&2
  exit 1
fi
echo "fuzz.sh: no findings in ${#targets[@]} targets x ${duration} s (seed $seed)"
