# Sourced (not run) by scripts/main.sh, scripts/test.sh and bench/compare.sh before they start
# programs: sets OpenBLAS's environment, which OpenBLAS reads only when a program loads it.
#   OPENBLAS_NUM_THREADS=1 unless already set: tapegrad's models are small, and the tests and
#     benchmarks want reproducible numbers (docs/performance.md, "Threads and the BLAS core").
#   OPENBLAS_CORETYPE, unless already set, when OpenBLAS would run kernels weaker than this CPU:
#     an OpenBLAS older than the CPU does not recognise it and falls back to old kernels (Debian 12's
#     0.3.21 runs its SSE3 "Prescott" kernels on a Sapphire Rapids Xeon), several times slower.
# It asks the library (build/tests/tapegrad_blas_info, or the program named by TAPEGRAD_BLAS_INFO)
# which kernels OpenBLAS picks; before that program is built, it goes by /proc/cpuinfo's flags alone.
# Safe under `set -euo pipefail`.

tapegrad_blas_env() {
    local root tool info="" want="" why="" flags f ok
    export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
    if [[ -n ${OPENBLAS_CORETYPE:-} ]]; then return 0; fi  # the user's choice
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    tool=${TAPEGRAD_BLAS_INFO:-$root/build/tests/tapegrad_blas_info}
    if [[ -x $tool ]] && info=$("$tool" 2>/dev/null); then
        if [[ $'\n'$info$'\n' == *$'\nweaker_than_cpu=1\n'* ]]; then
            want=$(sed -n 's/^suggested_coretype=//p' <<<"$info")
            why="OpenBLAS would run its $(sed -n 's/^core=//p' <<<"$info") kernels on a CPU with $(sed -n 's/^cpu_best=//p' <<<"$info")"
        fi
    elif [[ -r /proc/cpuinfo ]]; then
        flags=" $(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p;T;q' /proc/cpuinfo) "
        ok=1
        for f in avx512f avx512bw avx512vl avx512dq avx512cd; do [[ $flags == *" $f "* ]] || ok=0; done
        # Cooperlake where the CPU has bfloat16, as OpenBLAS itself picks on the CPUs it knows, so a
        # recognised CPU keeps its kernels; SkylakeX and Cooperlake share their float GEMM kernels.
        if [[ $ok == 1 && $flags == *" avx512_bf16 "* ]]; then
            want=Cooperlake
        elif [[ $ok == 1 ]]; then
            want=SkylakeX
        elif [[ $flags == *" avx2 "* && $flags == *" fma "* ]]; then
            want=Haswell
        fi
        why="no tapegrad_blas_info built yet; chosen from /proc/cpuinfo"
    fi
    if [[ -n $want ]]; then
        export OPENBLAS_CORETYPE=$want
        echo "blas-env: OPENBLAS_CORETYPE=$want ($why)" >&2
    fi
    return 0
}
tapegrad_blas_env
unset -f tapegrad_blas_env
