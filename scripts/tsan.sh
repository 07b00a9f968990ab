#!/usr/bin/env bash
# Builds the library and the test programs that run tapegrad on several threads at once with
# ThreadSanitizer into build-tsan/, and runs them; a reported data race fails the run. Those tests
# compare results between threads, which shows the threads did not disturb each other's numbers;
# ThreadSanitizer also sees races that happen not to change a number. Part of scripts/test.sh;
# run alone after scripts/install-deps.sh. JOBS sets the build's parallelism (default: all CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."

# The test programs with threads in them: the engine (a tape per thread), the random generators
# (one stream per thread), determinism (models trained and gradients checked on four threads) and
# the bidirectional ops (their two directions on two threads) and the one-direction ops' backward
# at two threads (its products over all steps on a second thread; only the tests tagged [threads]).
tests=(test_engine test_random test_determinism test_ops_bidirectional test_ops_recurrent)
declare -A only=([test_ops_recurrent]="[threads]")

# clang: its ThreadSanitizer runtime comes with libclang-rt-14-dev, installed for fuzzing anyway.
source scripts/clang-build-dir.sh
clang_build_dir build-tsan
cmake -S . -B build-tsan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1" \
  -DTAPEGRAD_SANITIZE_THREAD=ON -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF
cmake --build build-tsan -j "${JOBS:-$(nproc)}" --target "${tests[@]}"

# One BLAS thread: OpenBLAS is not instrumented, so its own worker threads could only hide races.
# (the tests set two where they run work on two threads at once; each piece then runs on one.)
export OPENBLAS_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
for t in "${tests[@]}"; do
  echo "tsan.sh: $t"
  "build-tsan/tests/$t" -w NoTests ${only[$t]:+"${only[$t]}"}
done
echo "tsan.sh: no data races reported in ${tests[*]}"
