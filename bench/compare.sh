#!/usr/bin/env bash
# tapegrad against LibTorch on the training-step benchmark (bench/README.md): builds bench_rnn_train and
# bench_torch_rnn if needed, runs every configuration at 1 and 2 threads with the two programs
# alternating back to back (so drifting machine load hits both alike), and prints a markdown table.
#
#   bash bench/compare.sh [--quick] [--rounds N] [--steps N] [--e-steps N] [--configs "g h ..."]
#                         [--build-dir DIR]
#
# --quick: a smoke check (1 round, 5 steps, configurations a b d f g h only).
# --configs: the configurations to run, in order (default: all of a-n).
# (e), (l) and (n) unroll 1000 steps (about 150, 530 and 400 GFLOP per step), so they run --e-steps
# timed steps after one warm-up step (default 5); they are there for their peak memory, which needs
# no long run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(dirname "$here")
build="$src/build-bench"
rounds=3 steps=20 warmup=3 e_steps=5 quick=0
configs="a b c d e f g h i j k l m n" configs_given=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --rounds) rounds=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --e-steps) e_steps=$2; shift 2 ;;
        --configs) configs_given=$2; shift 2 ;;
        --build-dir) build=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ $quick == 1 ]]; then rounds=1 steps=5 warmup=1 configs="a b d f g h"; fi
if [[ -n $configs_given ]]; then configs=$configs_given; fi
for config in $configs; do
    case "$config" in
        [a-n]) ;;
        *) echo "compare.sh: unknown configuration $config (a-n)" >&2; exit 2 ;;
    esac
done

# ---- build ------------------------------------------------------------------------------------
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON \
        -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_EXAMPLES=OFF >/dev/null
else
    cmake -S "$src" -B "$build" -DTAPEGRAD_BUILD_BENCH=ON >/dev/null  # an existing build dir, benchmarks on
fi
cmake --build "$build" -j2 --target bench_rnn_train >/dev/null
have_torch=0
targets=$(cmake --build "$build" --target help)  # lists bench_torch_rnn when CMake found LibTorch
if grep -q bench_torch_rnn <<<"$targets"; then
    cmake --build "$build" -j1 --target bench_torch_rnn >/dev/null  # torch headers: one compiler at a time
    have_torch=1
fi
source "$src/scripts/blas-env.sh"  # OpenBLAS's kernels for this CPU (threads are set per run below)
tg="$build/bench/bench_rnn_train"
lt="$build/bench/bench_torch_rnn"

# ---- run --------------------------------------------------------------------------------------
csv=$(mktemp)
trap 'rm -f "$csv"' EXIT
# OMP_WAIT_POLICY=passive: LibTorch's elementwise kernels run on OpenMP threads, its GEMMs on OpenBLAS's
# own pthreads; with OpenMP's default, an idle OpenMP worker spins on the core an OpenBLAS worker needs,
# and at 2 threads on 2 cores a step of b took 40x longer (3 s instead of 75 ms). tapegrad does not use
# OpenMP, so the setting changes nothing for it.
run() {  # run PROGRAM THREADS CONFIG: appends its CSV lines
    local prog=$1 threads=$2 config=$3 s=$steps w=$warmup
    if [[ $config == e || $config == l || $config == n ]]; then s=$e_steps w=1; fi  # the long unrolls, there for memory
    OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive \
        "$prog" --config "$config" --threads "$threads" --steps "$s" --warmup "$w" --csv >>"$csv"
}
for threads in 1 2; do
    for config in $configs; do
        for ((r = 1; r <= rounds; ++r)); do
            echo "threads $threads, config $config, round $r/$rounds" >&2
            run "$tg" "$threads" "$config"
            if [[ $have_torch == 1 ]]; then run "$lt" "$threads" "$config"; fi
        done
    done
done

# ---- report -----------------------------------------------------------------------------------
# The median over rounds of a column (4 = median_ms, 7 = gflops, 9 = fraction, 10 = peak_mb) for one
# program variant, configuration and thread count; empty if there is none.
col() {  # col NAME CONFIG THREADS COLUMN
    awk -F, -v n="$1" -v c="$2" -v t="$3" -v k="$4" '$1 == n && $2 == c && $3 == t && $k != "" { print $k }' "$csv" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.6g", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
fmt() { awk -v a="$1" -v f="$2" 'BEGIN { if (a == "") printf "n/a"; else printf f, a }'; }

echo "## tapegrad vs LibTorch: one training step (bench/README.md)"
echo
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(lscpu | sed -n 's/^CPU(s): *//p' | head -1) CPUs" \
    "($(nproc) available to this run)"
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- $rounds round(s) per cell, tapegrad and LibTorch alternating; each number is the median over rounds of"
echo "  a run's median ($steps timed steps after $warmup warm-up; e, l and n: $e_steps after 1)"
echo
echo "| config | threads | tapegrad ms | LibTorch best ms (variant) | tapegrad / LibTorch | tapegrad GFLOP/s | fraction of sgemm | peak MB tapegrad / LibTorch (ratio) |"
echo "|---|---|---|---|---|---|---|---|"
for threads in 1 2; do
    for config in $configs; do
        t_ms=$(col tapegrad "$config" "$threads" 4)
        best="" best_name=""
        for v in libtorch-nn libtorch-unrolled libtorch; do
            m=$(col "$v" "$config" "$threads" 4)
            if [[ -n $m ]] && { [[ -z $best ]] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then
                best=$m best_name=${v#libtorch-}
            fi
        done
        if [[ $config == f ]]; then
            # (f) times are per chain of 100 ops: us/op = 10 * ms.
            t_us=$(awk -v a="$t_ms" 'BEGIN { if (a != "") printf "%.3f", a * 10 }')
            l_us=$(awk -v a="$best" 'BEGIN { if (a != "") printf "%.3f", a * 10 }')
            echo "| f (us/op) | $threads | $(fmt "$t_us" %s) | $(fmt "$l_us" %s) | $(ratio "$t_us" "$l_us") | | | |"
            continue
        fi
        peak=""
        if [[ $config == e || $config == l || $config == n ]]; then
            t_mb=$(col tapegrad "$config" "$threads" 10)
            l_mb=$(col "libtorch-$best_name" "$config" "$threads" 10)
            peak="$(fmt "$t_mb" %.0f) / $(fmt "$l_mb" %.0f) ($(ratio "$t_mb" "$l_mb"))"
        fi
        l_cell="n/a"
        if [[ -n $best ]]; then l_cell="$(fmt "$best" %.2f) ($best_name)"; fi
        echo "| $config | $threads | $(fmt "$t_ms" %.2f) | $l_cell | $(ratio "$t_ms" "$best") |" \
            "$(fmt "$(col tapegrad "$config" "$threads" 7)" %.2f) | $(fmt "$(col tapegrad "$config" "$threads" 9)" %.2f) | $peak |"
    done
done
