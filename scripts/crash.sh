#!/usr/bin/env bash
# The crash-consistency test (tests/crash/lsvd-crash.c): kill -9 at random
# points, recover, and check what survived.
#
#   scripts/crash.sh [--transport lib|nbd] [--backend dir|s3] [N]
#
# N crash points per mode, default 200.
#   --transport lib   (default) the writer drives the volume through the
#                     lsvd library and is itself killed with SIGKILL
#   --transport nbd   the writer drives qemu-storage-daemon's NBD export
#                     (build/qemu-build) through libnbd, with discards as
#                     well as write-zeroes; the daemon is killed with
#                     SIGKILL, restarted (the recovery), and the export read
#                     back through NBD
#   --backend dir     (default) a dir:// store in TMPDIR
#   --backend s3      an s3:// store on a local Ceph RGW: the one of
#                     $RGW_DIR/lsvd.conf if RGW_DIR is set, else one started
#                     here in build/rgw-crash (scripts/rgw.sh) and stopped
#                     again; each loop uses a fresh key prefix
#
# mode a: the cache directory is kept: what was flushed must be there.
# mode b: the cache directory is deleted before recovering: with lib, the
#         volume must be a prefix of the writes in submission order; with
#         nbd (QEMU may reorder concurrent requests), the writes applied
#         must be closed under happens-before (see check_hb()).
#
# Environment:
#   CRASH_SEED    first seed (default: from the clock; printed, so that a
#                 failing run can be repeated with the same request streams)
#   CRASH_CHAIN   crash points per volume before a fresh one (default 4)
#   CRASH_MIN_MS, CRASH_MAX_MS
#                 when the writer (lib) or the daemon (nbd) is killed
#                 (default 20..400 ms after the writer starts)
#   TMPDIR        where the volumes live (default /tmp); a failing point's
#                 state is kept there, and the output says where
#
# Prints each mode's summary and, last, "N passed, M failed" (crash
# points, and the checker's selftest).  Exit status 0 only if nothing
# failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
transport=lib backend=dir
usage() {
    echo "usage: scripts/crash.sh [--transport lib|nbd] [--backend dir|s3] [N]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --transport) transport=${2:-}; shift 2 || usage ;;
    --backend) backend=${2:-}; shift 2 || usage ;;
    -*) usage ;;
    *) break ;;
    esac
done
points=${1:-200}
case $points in ''|*[!0-9]*) usage ;; esac
case $transport in lib|nbd) ;; *) usage ;; esac
case $backend in dir|s3) ;; *) usage ;; esac
seed=${CRASH_SEED:-$(date +%s)}
chain=${CRASH_CHAIN:-4}
min_ms=${CRASH_MIN_MS:-20}
max_ms=${CRASH_MAX_MS:-400}
build="$top/build/core"
exe="$build/tests/crash/lsvd-crash"
qsd="$top/build/qemu-build/storage-daemon/qemu-storage-daemon"
tag=$transport-$backend

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

extra=()
if [ "$transport" = nbd ]; then
    if [ ! -x "$qsd" ]; then
        echo "crash: no $qsd (make qemu builds it)"
        echo "0 passed, 1 failed"
        exit 1
    fi
    # a copy: the shared build/qemu-build may be rebuilt under a long run
    qsd_copy=$(mktemp "$top/build/crash-qsd.XXXXXX")
    cp "$qsd" "$qsd_copy" && chmod 755 "$qsd_copy"
    extra+=(--qsd "$qsd_copy")
fi

# an RGW of our own unless RGW_DIR names one, stopped on every way out
own_rgw=
stop_rgw() {
    [ -z "${qsd_copy:-}" ] || rm -f "$qsd_copy"
    if [ -n "$own_rgw" ]; then
        bash scripts/rgw.sh stop "$own_rgw" >>"$top/build/crash-rgw.log" 2>&1 ||
            echo "crash: scripts/rgw.sh stop $own_rgw failed" >&2
        own_rgw=
    fi
}
trap stop_rgw EXIT
trap 'stop_rgw; exit 130' INT
trap 'stop_rgw; exit 143' TERM
if [ "$backend" = s3 ]; then
    if [ "$transport" != nbd ]; then
        echo "crash: --backend s3 needs --transport nbd (the library" \
             "loop makes dir:// stores)" >&2
        exit 2
    fi
    rgw=${RGW_DIR:-}
    if [ -z "$rgw" ]; then
        own_rgw=$top/build/rgw-crash
        rgw=$own_rgw
        echo "== crash: scripts/rgw.sh start $rgw"
        if ! bash scripts/rgw.sh start "$rgw" >"$top/build/crash-rgw.log" 2>&1
        then
            tail -n 20 "$top/build/crash-rgw.log"
            echo "crash: the RGW did not start"
            echo "0 passed, 1 failed"
            exit 1
        fi
    fi
    if [ ! -f "$rgw/lsvd.conf" ]; then
        echo "crash: no $rgw/lsvd.conf (is the RGW of $rgw running?)"
        echo "0 passed, 1 failed"
        exit 1
    fi
    extra+=(--s3-conf "$rgw/lsvd.conf")
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
    log="$top/build/crash-$tag-$mode.log"
    echo "== crash($mode): $transport on $backend://, $points points, seed" \
         "$seed, chain $chain, kills after $min_ms..$max_ms ms"
    "$exe" loop --mode "$mode" --points "$points" --seed "$seed" \
        --chain "$chain" --min-ms "$min_ms" --max-ms "$max_ms" \
        --keep-going "${extra[@]}" 2>&1 | tee "$log" |
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

echo "crash: $transport on $backend://, both modes in" \
     "$(( $(date +%s) - t0 )) s; repeat with CRASH_SEED=$seed" \
     "scripts/crash.sh --transport $transport --backend $backend $points"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
