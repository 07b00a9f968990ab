#!/usr/bin/env bash
# Builds the library, tests and examples with AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer into build-asan/ and runs the whole CTest suite there. Any sanitizer
# report fails the run. Part of scripts/test.sh; run alone after scripts/install-deps.sh.
#
# clang at -O1, as AddressSanitizer's documentation suggests: on 2 cores it builds and runs the
# suite in about 5 minutes, where g++ at -O3 took about 12. JOBS sets the build's parallelism
# (default: all CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/clang-build-dir.sh
build=build-asan
clang_build_dir "$build"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1" -DTAPEGRAD_SANITIZE=ON
cmake --build "$build" -j "${JOBS:-$(nproc)}"
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
