#!/usr/bin/env bash
# Renders the PNG plots of docs/img/ from the CSV files the examples write, with gnuplot
# (Debian: apt-get install gnuplot-nox). Run from anywhere after building the examples:
#   bash scripts/plots.sh [build-dir]        (default build-dir: build)
# It runs the default configurations the tutorials show (seed 1), so the plots match their text:
# sunspots (about a second) and gradients_lab (about half a minute).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$src/build}")
img=$src/docs/img
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
command -v gnuplot >/dev/null || { echo "plots.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$img"
export OPENBLAS_NUM_THREADS=1

"$build/examples/sunspots" --seed 1 --csv "$out/sunspots_test.csv" > /dev/null
"$build/examples/gradients_lab" --seed 1 --csv-dir "$out" > /dev/null

gnuplot <<GP
set terminal pngcairo size 800,450 font "sans,10"
set datafile separator ","
set key autotitle columnhead
set grid

set output "$img/sunspots_forecast.png"
set title "Yearly sunspot numbers, test years: one-year-ahead forecasts"
set xlabel "year"; set ylabel "sunspot number"
set key bmargin center horizontal
plot "$out/sunspots_test.csv" using 1:2 with linespoints lw 2 pt 7 ps 0.6 title "truth", \
     "" using 1:3 with linespoints lw 2 pt 5 ps 0.6 title "GRU forecast", \
     "" using 1:4 with lines lw 1 dt 2 title "persistence (last year's value)"

set output "$img/gradients_lab_norms.png"
set title "||dL/dh_t|| of a tanh RNN at initialisation (T = 100), by scale of weight\\\\_hh"
set xlabel "time step t (the loss reads the last one)"; set ylabel "gradient norm"
set logscale y; set format y "10^{%L}"
set key inside bottom right
plot for [i=2:5] "$out/grad_norms.csv" using 1:i with lines lw 2 title columnhead(i) noenhanced
unset logscale y; set format y "%g"

set output "$img/gradients_lab_cells.png"
set title "||dL/dh_t|| at initialisation (T = 100): tanh RNN, LSTM (h_t and c_t), GRU"
set xlabel "time step t (the loss reads the last one)"; set ylabel "gradient norm"
set logscale y; set format y "10^{%L}"
set key inside bottom right
plot for [i=2:5] "$out/cell_grad_norms.csv" using 1:i with lines lw 2 title columnhead(i) noenhanced
unset logscale y; set format y "%g"

set output "$img/gradients_lab_clipping.png"
set title "Training a tanh RNN with weight\\\\_hh x 4 by SGD: gradient norm before clipping"
set xlabel "SGD step"; set ylabel "global gradient norm"
set logscale y; set format y "10^{%L}"
set key inside top left
plot "$out/clipping.csv" using 1:2 with lines lw 2 title "without clipping", \
     "" using 1:4 with lines lw 2 title "with clip\\\\_grad\\\\_norm(1.0)"
unset logscale y; set format y "%g"

set output "$img/gradients_lab_training.png"
set title "The adding problem: held-out MSE while training"
set xlabel "Adam step"; set ylabel "MSE"
set key inside top right
set yrange [0:0.25]
plot for [i=2:4] "$out/training.csv" using 1:i with lines lw 2 title columnhead(i) noenhanced, \
     0.1667 with lines dt 2 lc rgb "gray" title "predict 1.0"
GP
echo "plots.sh: wrote $(ls "$img" | tr '\n' ' ')to $img"
