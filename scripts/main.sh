#!/usr/bin/env bash
# One command for the main job on a fresh Debian 12 machine (as root): install what is needed,
# build, train the character-level language model on Debian's fortunes and print samples from it.
# Extra arguments go to `char_rnn train` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
source scripts/blas-env.sh  # OPENBLAS_NUM_THREADS=1 and the right OPENBLAS_CORETYPE, unless set
for arg in "$@"; do
  case "$arg" in -h|--help) exec ./build/examples/char_rnn train --help ;; esac
done
./build/examples/char_rnn train --checkpoint build/char_rnn.npz "$@"
echo
echo "== more text from the saved checkpoint (build/examples/char_rnn sample --help for options) =="
./build/examples/char_rnn sample --checkpoint build/char_rnn.npz --prime "Life is " --length 300 --temperature 0.7
