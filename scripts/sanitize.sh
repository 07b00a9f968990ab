#!/usr/bin/env bash
# Builds the library, tests and examples with AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer into build-asan/ and runs the whole CTest suite there. Any sanitizer
# report fails the run. Part of scripts/test.sh; run alone after scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_SANITIZE=ON
cmake --build build-asan -j "$(nproc)"
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
