#!/usr/bin/env bash
# What scripts/main.sh does after training, on a short GRU run with the cosine schedule: the loss
# curve written as CSV by `char_rnn train --loss-csv`, then drawn as a PNG by scripts/plot-loss.sh.
#   char_rnn_curve_test.sh CHAR_RNN SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
csv=$work/char_rnn_curve.csv png=$work/char_rnn_curve.png
rm -f "$csv" "$png"
"$exe" train --short --cell gru --schedule cosine --checkpoint "$work/char_rnn_curve.npz" --loss-csv "$csv" > /dev/null
header=$(head -1 "$csv")
[ "$header" = "step,train_bpc,validation_bpc" ] || { echo "unexpected header: $header" >&2; exit 1; }
# 400 updates: a row every 50 (8), then the last update again with its validation loss, after the header.
rows=$(wc -l < "$csv")
[ "$rows" -eq 10 ] || { echo "expected 10 lines in $csv, found $rows" >&2; exit 1; }
last=$(tail -1 "$csv")
[[ $last =~ ^400,[0-9.]+,[0-9.]+$ ]] || { echo "last row lacks the validation loss: $last" >&2; exit 1; }
bash "$src/scripts/plot-loss.sh" "$csv" "$png"
# A PNG starts with its 8-byte signature.
[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || { echo "$png is not a PNG" >&2; exit 1; }
echo "loss curve drawn: $png"
