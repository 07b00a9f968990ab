#!/usr/bin/env bash
# The float32 GEMM rate at tapegrad's shapes with OpenBLAS's own kernel choice, with its kernel sets
# forced through OPENBLAS_CORETYPE (what a CPU newer than the OpenBLAS gets: Prescott), at 1 and 2
# threads, and optionally with another BLAS (e.g. BLIS) that exports cblas. Prints a markdown table of
# medians (microseconds per GEMM, GFLOP/s); every configuration runs once per round, rounds alternate.
#
#   bash bench/blas_gemm.sh [--rounds N] [--cores "Prescott Haswell SkylakeX"] [--other NAME=LIBFILE]
#
# e.g. with Debian's BLIS unpacked, not installed:
#   apt-get download libblis4-serial && dpkg-deb -x libblis4-serial_*.deb blis
#   bash bench/blas_gemm.sh --other BLIS=blis/usr/lib/x86_64-linux-gnu/blis-serial/libblis.so.4
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rounds=3 cores="Prescott Haswell SkylakeX" other=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --cores) cores=$2; shift 2 ;;
        --other) other=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "blas_gemm.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g++ -O2 -std=c++17 "$here/blas_gemm.cpp" -o "$tmp/openblas" -lopenblas
if [[ -n $other ]]; then
    lib=$(realpath "${other#*=}")
    g++ -O2 -std=c++17 "$here/blas_gemm.cpp" -o "$tmp/other" "$lib" -Wl,-rpath,"$(dirname "$lib")"
fi
# The shapes: a step's input projection [B, E] x [E, 4H], an output layer over T*B rows, a recurrent step.
shapes=("32 256 1024" "2048 64 1024" "32 256 256")
auto=$(env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 "$tmp/openblas" 1 1 1 1 2>&1 | sed -n 's/^.*Core: *//p' | head -1)
# configurations: "label|environment|program"
configs=("OpenBLAS ${auto:-auto}, 1 thread|OPENBLAS_NUM_THREADS=1|openblas")
for core in $cores; do configs+=("OpenBLAS $core, 1 thread|OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$core|openblas"); done
configs+=("OpenBLAS ${auto:-auto}, 2 threads|OPENBLAS_NUM_THREADS=2|openblas")
if [[ -n $other ]]; then configs+=("${other%%=*}, 1 thread|BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1|other"); fi
declare -A us
for ((r = 1; r <= rounds; ++r)); do
    for cfg in "${configs[@]}"; do
        IFS='|' read -r label envs prog <<<"$cfg"
        for shape in "${shapes[@]}"; do
            # shellcheck disable=SC2086
            line=$(env -u OPENBLAS_CORETYPE $envs "$tmp/$prog" $shape 7)
            us["$label|$shape"]+="$(cut -d' ' -f4 <<<"$line") "
        done
    done
    echo "round $r/$rounds done" >&2
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; OpenBLAS: $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?')"
echo "- float32 C[M,N] = A[M,K] B[K,N]; median over $rounds rounds of each run's median of 7 (us per GEMM, GFLOP/s)"
echo
header="| BLAS |" rule="|---|"
for shape in "${shapes[@]}"; do read -r m k n <<<"$shape"; header+=" [$m,$k]x[$k,$n] |"; rule+="---|"; done
echo "$header"; echo "$rule"
for cfg in "${configs[@]}"; do
    IFS='|' read -r label _ _ <<<"$cfg"
    row="| $label |"
    for shape in "${shapes[@]}"; do
        read -r m k n <<<"$shape"
        t=$(median "${us["$label|$shape"]}")
        row+=" $(awk -v t="$t" -v f="$((2 * m * k * n))" 'BEGIN { printf "%.1f us, %.1f GFLOP/s", t, f / t / 1e3 }') |"
    done
    echo "$row"
done
