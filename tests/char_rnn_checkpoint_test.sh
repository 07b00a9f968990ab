#!/usr/bin/env bash
# char_rnn's checkpoints keep the model's configuration as metadata strings (cell, embed, hidden,
# layers), and `char_rnn sample` rebuilds the model from them. Checkpoints written before that hold
# a float tensor extra.config = [embed, hidden, layers, cell] instead, and must still load: the two
# in tests/fixtures were written by that char_rnn (5 updates on examples/data/README.md), one with
# [4, 8, 2, 1] (a 2-layer LSTM), one with [4, 6, 1] (the three elements written before the cell was
# stored: an RNN). The samples expected from them are what that char_rnn printed for them.
#   char_rnn_checkpoint_test.sh CHAR_RNN SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
fail() { echo "$*" >&2; exit 1; }

# A new checkpoint: the configuration is metadata (stored .npz entries, so their names are in the
# file as written), there is no float config, and sampling rebuilds the same model from it.
ck=$work/char_rnn_metadata.npz
rm -f "$ck"
"$exe" train --text "$src/examples/data/README.md" --steps 3 --embed 4 --hidden 8 --layers 2 --batch 2 --seq 8 \
    --cell gru --checkpoint "$ck" > /dev/null
for key in cell embed hidden layers; do
    grep -aq "checkpoint.meta.$key.npy" "$ck" || fail "$ck has no metadata entry '$key'"
done
! grep -aq "extra.config" "$ck" || fail "$ck still holds the float extra.config"
out=$("$exe" sample --checkpoint "$ck" --length 20)
grep -qx "gru: embed 4, hidden 8, layers 2 (configuration from metadata)" <<< "$out" ||
    fail "sampling did not rebuild the model from the metadata: $out"

# The older checkpoints: the same text as the char_rnn that wrote them sampled (after the first line,
# which names the file).
check_legacy() {  # FIXTURE PRIME EXPECTED
    local got
    got=$("$exe" sample --checkpoint "$src/tests/fixtures/$1" --length 40 --prime "$2" --seed 7)
    grep -q "(trained 5 steps)" <<< "$got" || fail "$1: $got"
    [ "$(tail -n +2 <<< "$got")" = "$3" ] || fail "$1: expected
$3
got
$(tail -n +2 <<< "$got")"
}
check_legacy char_rnn_legacy_lstm.npz Sun "$(cat <<'TEXT'
lstm: embed 4, hidden 8, layers 2 (configuration from extra.config)

Sunlw-t.'ru9ilcK;r;��s9d;##-0DBfe[ :hOuf:/o
TEXT
)"
check_legacy char_rnn_legacy_rnn.npz "The " "$(cat <<'TEXT'
rnn: embed 4, hidden 6, layers 1 (configuration from extra.config)

The kv)r)'os7hkbB9o:��p7b:' (/;:fdK 3gGre7-n
TEXT
)"

# A file without a char_rnn configuration is refused, by name.
if out=$("$exe" sample --checkpoint "$src/tests/fixtures/lstm_uni_2layer.npz" 2>&1); then
    fail "sampling from a file that is not a char_rnn checkpoint succeeded: $out"
fi
grep -q "is not a char_rnn checkpoint" <<< "$out" || fail "unexpected error: $out"
echo "char_rnn checkpoints: metadata written and read, older float configurations still read"
