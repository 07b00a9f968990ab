#!/usr/bin/env bash
# One command for the whole test suite on a fresh Debian 12 machine (as root):
# install what is needed, build, run every test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export OPENBLAS_NUM_THREADS=1
ctest --test-dir build --output-on-failure -j "$(nproc)"
