#!/usr/bin/env bash
# The crash-consistency test (tests/crash/lsvd-crash.c): kill -9 a writer
# at random points, reopen the volume, and check what survived.
#
#   scripts/crash.sh [N]     N crash points per mode, default 200
#
# mode a: the cache directory is kept: what was flushed must be there.
# mode b: the cache directory is deleted before reopening: the volume must
#         be a prefix of the writes in submission order.
#
# Environment:
#   CRASH_SEED    first seed (default: from the clock; printed, so that a
#                 failing run can be repeated with the same request streams)
#   CRASH_CHAIN   crash points per volume before a fresh one (default 4)
#   CRASH_MIN_MS, CRASH_MAX_MS
#                 when the writer is killed (default 20..400 ms after it
#                 starts; 1..60 aims the kills at lsvd_open's recovery)
#   TMPDIR        where the volumes live (default /tmp); a failing point's
#                 state is kept there, and the output says where
#
# Prints each mode's summary and, last, "N passed, M failed" (crash
# points, and the checker's selftest).  Exit status 0 only if nothing
# failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
points=${1:-200}
seed=${CRASH_SEED:-$(date +%s)}
chain=${CRASH_CHAIN:-4}
min_ms=${CRASH_MIN_MS:-20}
max_ms=${CRASH_MAX_MS:-400}
build="$top/build/core"
exe="$build/tests/crash/lsvd-crash"

case $points in
''|*[!0-9]*) echo "usage: scripts/crash.sh [N]" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --prefix="$top/build/prefix" --libdir=lib \
        -Ddefault_library=static >/dev/null || exit 2
fi
mkdir -p "$top/build"
if ! ninja -C "$build" tests/crash/lsvd-crash >"$top/build/crash-build.log" 2>&1
then
    tail -n 30 "$top/build/crash-build.log"
    echo "crash: the build failed (tests/meson.build needs subdir('crash'))"
    echo "0 passed, 1 failed"
    exit 1
fi

passed=0 failed=0
t0=$(date +%s)

if "$exe" selftest >"$top/build/crash-selftest.log" 2>&1; then
    passed=$((passed + 1))
else
    cat "$top/build/crash-selftest.log"
    failed=$((failed + 1))
fi

for mode in a b; do
    log="$top/build/crash-$mode.log"
    echo "== crash($mode): $points points, seed $seed, chain $chain," \
         "kills after $min_ms..$max_ms ms"
    "$exe" loop --mode "$mode" --points "$points" --seed "$seed" \
        --chain "$chain" --min-ms "$min_ms" --max-ms "$max_ms" \
        --keep-going 2>&1 | tee "$log" |
        grep -v -E '^crash\(.\): [0-9]+/[0-9]+ points'
    line=$(tail -n 1 "$log")
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        echo "crash($mode): the loop did not finish; see $log"
        failed=$((failed + 1))
    fi
done

echo "crash: both modes in $(( $(date +%s) - t0 )) s; repeat with" \
     "CRASH_SEED=$seed scripts/crash.sh $points"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
