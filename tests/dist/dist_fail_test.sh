#!/usr/bin/env bash
# dist_fail_test.sh MPIEXEC-COMMAND... -- DIST_FAIL WORKDIR: a rank that throws (or dies) must end
# the whole 2-rank job with a non-zero status, the thrower's message naming its rank, and leave the
# last checkpoint loadable. A hang is caught by the CTest timeout, never by timing here.
set -uo pipefail
launch=()
while [ "$1" != "--" ]; do launch+=("$1"); shift; done
shift
exe=$1 dir=$2
mkdir -p "$dir"
fail=0
for mode in throw kill; do
    ck="$dir/dist_fail_$mode.npz"
    rm -f "$ck"
    out=$("${launch[@]}" "$exe" "$mode" "$ck" 2>&1)
    status=$?
    echo "--- $mode: exit status $status"
    echo "$out" | tail -n 20
    if [ $status -eq 0 ]; then echo "dist_fail_test: $mode: the job exited 0" >&2; fail=1; fi
    if [ "$mode" = throw ] && ! grep -q "rank 1: the data loader of rank 1 found a corrupt record" <<<"$out"; then
        echo "dist_fail_test: $mode: no 'rank 1: <what>' message" >&2; fail=1
    fi
    if ! "$exe" load "$ck" | grep -q "loaded step 3"; then
        echo "dist_fail_test: $mode: the last checkpoint does not load" >&2; fail=1
    fi
done
exit $fail
