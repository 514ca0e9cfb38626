#!/usr/bin/env bash
# The soak test: verified I/O through qemu-storage-daemon over NBD for a
# given time, with qemu-storage-daemon killed (SIGKILL) at random moments,
# the modes alternating: a (cache kept, what was flushed must be there) and
# b (cache deleted: the writes applied must be closed under
# happens-before).  It is `lsvd-crash loop --qsd --mode x --duration`
# (tests/crash/lsvd-crash.c); see scripts/crash.sh for the modes.
#
#   scripts/soak.sh [--backend dir|s3] [DURATION]     (seconds, default 600)
#
# --backend s3 uses the RGW of $RGW_DIR/lsvd.conf if RGW_DIR is set, else
# starts one in build/rgw-soak (scripts/rgw.sh) and stops it again.
#
# Environment: SOAK_SEED (default: the clock), SOAK_CHAIN (crash points
# per volume, default 16 on dir://, 4 on s3://: the test RGW keeps its
# objects in memory, 2 GiB, and 16 points of up to 3 s fill it),
# SOAK_MIN_MS and SOAK_MAX_MS (when the daemon is killed, default
# 200..3000 ms after the writer starts), TMPDIR.
#
# Prints the running counts every 30 s ("soak: T s, N points (a .., b ..),
# M violations"), the summary, and "N passed, M failed".  Exit status 0
# only if no crash point failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
backend=dir
usage() {
    echo "usage: scripts/soak.sh [--backend dir|s3] [DURATION]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --backend) backend=${2:-}; shift 2 || usage ;;
    -*) usage ;;
    *) break ;;
    esac
done
duration=${1:-600}
case $duration in ''|*[!0-9]*) usage ;; esac
case $backend in dir|s3) ;; *) usage ;; esac
seed=${SOAK_SEED:-$(date +%s)}
chain=${SOAK_CHAIN:-16}
[ "$backend" = dir ] || chain=${SOAK_CHAIN:-4}
build="$top/build/core"
exe="$build/tests/crash/lsvd-crash"
qsd="$top/build/qemu-build/storage-daemon/qemu-storage-daemon"

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --prefix="$top/build/prefix" --libdir=lib \
        -Ddefault_library=static >/dev/null || exit 2
fi
mkdir -p "$top/build"
if ! ninja -C "$build" tests/crash/lsvd-crash >"$top/build/soak-build.log" 2>&1
then
    tail -n 30 "$top/build/soak-build.log"
    echo "soak: the build failed"
    exit 1
fi
if [ ! -x "$qsd" ]; then
    echo "soak: no $qsd (make qemu builds it)"
    exit 1
fi

# a copy: the shared build/qemu-build may be rebuilt under a long run
qsd_copy=$(mktemp "$top/build/soak-qsd.XXXXXX")
cp "$qsd" "$qsd_copy" && chmod 755 "$qsd_copy"
extra=(--qsd "$qsd_copy")
own_rgw=
stop_rgw() {
    [ -z "${qsd_copy:-}" ] || rm -f "$qsd_copy"
    if [ -n "$own_rgw" ]; then
        bash scripts/rgw.sh stop "$own_rgw" >>"$top/build/soak-rgw.log" 2>&1 ||
            echo "soak: scripts/rgw.sh stop $own_rgw failed" >&2
        own_rgw=
    fi
}
trap stop_rgw EXIT
trap 'stop_rgw; exit 130' INT
trap 'stop_rgw; exit 143' TERM
if [ "$backend" = s3 ]; then
    rgw=${RGW_DIR:-}
    if [ -z "$rgw" ]; then
        own_rgw=$top/build/rgw-soak
        rgw=$own_rgw
        echo "== soak: scripts/rgw.sh start $rgw"
        if ! bash scripts/rgw.sh start "$rgw" >"$top/build/soak-rgw.log" 2>&1
        then
            tail -n 20 "$top/build/soak-rgw.log"
            echo "soak: the RGW did not start"
            exit 1
        fi
    fi
    extra+=(--s3-conf "$rgw/lsvd.conf")
fi

echo "== soak: $duration s on $backend://, seed $seed"
"$exe" loop "${extra[@]}" --mode x --duration "$duration" \
    --points 100000000 --seed "$seed" --chain "$chain" \
    --min-ms "${SOAK_MIN_MS:-200}" --max-ms "${SOAK_MAX_MS:-3000}" \
    --keep-going 2>&1 | tee "$top/build/soak-$backend.log"
rc=${PIPESTATUS[0]}
echo "soak: repeat with SOAK_SEED=$seed scripts/soak.sh --backend $backend $duration"
exit "$rc"
