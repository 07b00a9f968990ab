#!/usr/bin/env bash
# One command for the main job on a fresh Debian 12 machine (as root): install what is needed,
# build the one program it runs, train the character-level language model on Debian's fortunes,
# print samples from it, and draw its loss curve next to the checkpoint (build/char_rnn_loss.png).
# Extra arguments go to `char_rnn train` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Only the main job's targets: the test suite is scripts/test.sh's to build.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target char_rnn tapegrad_blas_info
# Two BLAS threads where there are two cores (the GRU's matrix products take most of the time; on
# the 2-core machine a training step is 1.9x as fast as with one), unless the user chose.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}"
source scripts/blas-env.sh  # the right OPENBLAS_CORETYPE, unless set
for arg in "$@"; do
  case "$arg" in -h|--help) exec ./build/examples/char_rnn train --help ;; esac
done
./build/examples/char_rnn train --checkpoint build/char_rnn.npz --loss-csv build/char_rnn_loss.csv "$@"
echo
echo "== more text from the saved checkpoint (build/examples/char_rnn sample --help for options) =="
./build/examples/char_rnn sample --checkpoint build/char_rnn.npz --prime "Life is " --length 300 --temperature 0.7
bash scripts/plot-loss.sh build/char_rnn_loss.csv build/char_rnn_loss.png
echo "loss curve: build/char_rnn_loss.png (data: build/char_rnn_loss.csv)"
