#!/usr/bin/env bash
# Data-parallel scaling of the main job's training step: bench_dist_train at 1 and 2 processes
# (one BLAS thread each, each process bound to its own core), then the speedup of 2 over 1.
# Rounds alternate between the two so that load from other work on the machine hits both alike.
#
#   bash bench/dist_bench.sh [--build DIR] [--rounds N] [--pairs N] [-- extra bench_dist_train options]
#
# Builds bench_dist_train in DIR (default build-mpi, configured with -DTAPEGRAD_BUILD_BENCH=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-mpi rounds=5 pairs=3 extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --pairs) pairs=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "dist_bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON
cmake -S . -B "$build" -DTAPEGRAD_BUILD_BENCH=ON > /dev/null
cmake --build "$build" -j "${JOBS:-2}" --target bench_dist_train > /dev/null
exe="$build/bench/bench_dist_train"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "cores: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
r1=() r2=()
for ((i = 1; i <= pairs; i++)); do
    for np in 1 2; do
        out=$(mpiexec -n $np --bind-to core --oversubscribe "$exe" --rounds "$rounds" "${extra[@]}")
        echo "$out"
        rate=$(sed -n 's/^train: \([0-9.]*\) updates\/s.*/\1/p' <<<"$out")
        if [ $np = 1 ]; then r1+=("$rate"); else r2+=("$rate"); fi
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
m1=$(median "${r1[@]}") m2=$(median "${r2[@]}")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "updates/s, median of $pairs runs: 1 process $m1, 2 processes $m2, speedup $(awk -v a="$m1" -v b="$m2" 'BEGIN {printf "%.2f", b / a}')x"
