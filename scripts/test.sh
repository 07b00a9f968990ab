#!/usr/bin/env bash
# One command for the whole test suite on a fresh Debian 12 machine (as root): install what is
# needed, then
#   1. build (Release) and run every test through CTest;
#   2. build and run the same suite under AddressSanitizer and UndefinedBehaviorSanitizer;
#   3. build and run the tests that use threads under ThreadSanitizer;
#   4. fuzz each file loader for FUZZ_SECONDS (default 30) with libFuzzer;
# and, right after the CTest run, build the documentation site (scripts/docs.sh), which fails on
# any Doxygen warning, undocumented public symbol or broken link.
# Any failure stops the run with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
source scripts/blas-env.sh  # OPENBLAS_NUM_THREADS=1 and the right OPENBLAS_CORETYPE, unless set
ctest --test-dir build --output-on-failure -j "$(nproc)"
bash scripts/docs.sh
bash scripts/sanitize.sh
bash scripts/tsan.sh
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
