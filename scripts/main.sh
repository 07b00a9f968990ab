#!/usr/bin/env bash
# One command for the main job on a fresh Debian 12 machine (as root): install what is needed,
# build, and train the example model. Extra arguments go to the example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export OPENBLAS_NUM_THREADS=1
./build/examples/elman_by_hand "$@"
