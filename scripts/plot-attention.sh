#!/usr/bin/env bash
# Draws the attention weights written by `g2p --attention-out FILE` as heat-maps in one PNG, with
# gnuplot (gnuplot-nox): one panel per word, its letters across, the phonemes the model wrote down.
#   bash scripts/plot-attention.sh WEIGHTS.txt OUT.png
# The file holds one block per word, blocks separated by two blank lines: a first line with the word
# (quoted) then its letters, then one line per output phoneme: its name, then a weight per letter.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: plot-attention.sh WEIGHTS.txt OUT.png" >&2; exit 2; }
data=$1 png=$2
[ -r "$data" ] || { echo "plot-attention.sh: cannot read $data" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot-attention.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
mapfile -t words < <(sed -n 's/^"\([^"]*\)".*/\1/p' "$data")
n=${#words[@]}
[ "$n" -ge 1 ] || { echo "plot-attention.sh: no words in $data" >&2; exit 1; }
# One file per word: gnuplot takes the column headers of a matrix from its file's first line.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" '/^"/ { k++ } NF { print > (dir "/" k ".txt") }' "$data"
cols=$(( n < 2 ? n : 2 )) rows=$(( (n + 1) / 2 ))
plots=""
for ((i = 0; i < n; ++i)); do
  plots+="set title \"${words[i]}\" noenhanced; plot \"$tmp/$((i + 1)).txt\" matrix rowheaders columnheaders with image notitle"$'\n'
done
gnuplot <<GP
set terminal pngcairo size $((cols * 400)),$((rows * 380)) font "sans,10"
set output "$png"
set multiplot layout $rows,$cols
set palette grey negative
set cbrange [0:1]
set yrange [*:*] reverse
set xlabel "letters"; set ylabel "phonemes written"
set tics nomirror scale 0
set xtics noenhanced; set ytics noenhanced
$plots
unset multiplot
GP
[ -s "$png" ] || { echo "plot-attention.sh: gnuplot wrote no $png" >&2; exit 1; }
