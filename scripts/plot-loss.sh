#!/usr/bin/env bash
# Draws a loss curve written by `char_rnn train --loss-csv` as a PNG, with gnuplot (gnuplot-nox):
#   bash scripts/plot-loss.sh LOSS.csv OUT.png
# The CSV's columns: step, smoothed training bits/char, validation bits/char (only on the last row).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: plot-loss.sh LOSS.csv OUT.png" >&2; exit 2; }
csv=$1 png=$2
[ -r "$csv" ] || { echo "plot-loss.sh: cannot read $csv" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot-loss.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,10"
set output "$png"
set datafile separator ","
set title "char_rnn: loss in bits per character" noenhanced
set xlabel "update"; set ylabel "bits/char"
set grid
set key top right
plot "$csv" using 1:2 every ::1 with lines lw 2 title "training (smoothed)", \
     "" using 1:(\$3 > 0 ? \$3 : 1/0) every ::1 with points pt 7 ps 1.5 title "validation"
GP
[ -s "$png" ] || { echo "plot-loss.sh: gnuplot wrote no $png" >&2; exit 1; }
