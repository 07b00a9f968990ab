#!/usr/bin/env bash
# blas_env_script: scripts/blas-env.sh sets OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE only where
# the user has not, picks the core tapegrad_blas_info suggests only when that reports weaker kernels,
# and works (under set -euo pipefail) with the real program and with no program at all.
#   blas_env_test.sh SOURCE_DIR TAPEGRAD_BLAS_INFO_EXE
set -euo pipefail
shopt -s extglob
src=$1 exe=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# env_after [VAR=VALUE...]: sources blas-env.sh in a clean shell with those variables; prints the two
# variables it may set.
env_after() {
    env -u OPENBLAS_NUM_THREADS -u OPENBLAS_CORETYPE -u TAPEGRAD_BLAS_INFO "$@" bash -c \
        'set -euo pipefail; source "$1/scripts/blas-env.sh" 2>/dev/null
         echo "threads=${OPENBLAS_NUM_THREADS:-unset} core=${OPENBLAS_CORETYPE:-unset}"' _ "$src"
}
expect() {  # expect WHAT GOT WANT
    if [[ $2 != "$3" ]]; then echo "FAIL: $1: got '$2', want '$3'"; fail=1; else echo "ok: $1: $2"; fi
}

# Stand-ins for tapegrad_blas_info: what it prints on an unrecognised AVX-512 CPU, and on a known one.
printf '#!/bin/sh\nprintf "library=OpenBLAS\\ncore=Prescott\\ncore_isa=sse\\nthreads=16\\ncpu_best=avx512\\nweaker_than_cpu=1\\nsuggested_coretype=SkylakeX\\n"\n' >"$tmp/weak"
printf '#!/bin/sh\nprintf "library=OpenBLAS\\ncore=Haswell\\ncore_isa=avx2\\nthreads=16\\ncpu_best=avx2\\nweaker_than_cpu=0\\nsuggested_coretype=\\n"\n' >"$tmp/fine"
chmod +x "$tmp/weak" "$tmp/fine"

expect "weaker kernels" "$(env_after TAPEGRAD_BLAS_INFO="$tmp/weak")" "threads=1 core=SkylakeX"
expect "kernels that fit" "$(env_after TAPEGRAD_BLAS_INFO="$tmp/fine")" "threads=1 core=unset"
expect "the user's settings" "$(env_after TAPEGRAD_BLAS_INFO="$tmp/weak" OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=4)" \
    "threads=4 core=Haswell"

# The real program: whatever it reports, the script follows it.
real=$(env_after TAPEGRAD_BLAS_INFO="$exe")
if env -u OPENBLAS_CORETYPE "$exe" | grep -qx 'weaker_than_cpu=1'; then
    expect "this machine" "$real" "threads=1 core=$(env -u OPENBLAS_CORETYPE "$exe" | sed -n 's/^suggested_coretype=//p')"
else
    expect "this machine" "$real" "threads=1 core=unset"
fi

# No program built yet: a choice from /proc/cpuinfo, or none.
none=$(env_after TAPEGRAD_BLAS_INFO="$tmp/missing")
case "$none" in
    "threads=1 core="@(unset|Cooperlake|SkylakeX|Haswell)) echo "ok: no program: $none" ;;
    *) echo "FAIL: no program: $none"; fail=1 ;;
esac
exit $fail
