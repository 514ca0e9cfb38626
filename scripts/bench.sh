#!/usr/bin/env bash
# Benchmarks (make bench): every figure beside its reference, measured side
# by side in one invocation on one disk and one local Ceph cluster + RGW
# (scripts/rgw.sh, started here and stopped on exit).  Each figure is a row
# of build/bench/results.csv; bench/report.py turns the rows into
# docs/bench/README.md, docs/bench/results.csv and the PNG plots.
#
#   extmap    bytes per extent and ns per operation of the extent map
#   write     qemu-img bench: 4 KiB random writes QD32, lsvd vs a raw file
#   fio       fio through the same path for raw, qcow2, lsvd (all three
#             qemu-storage-daemon NBD exports), rbd (librbd) and s3backer
#             (FUSE): bench/fio.sh
#   s3        PUTs per client write, write-back vs bare PUT, read miss vs
#             bare GET, read cache hits vs a raw file
#   recovery  open after kill -9 with a full journal (64M/256M/1G) vs a
#             clean open
#
#   scripts/bench.sh [SECTION...]   (default: all of them)
#   BENCH_QUICK=1   every run cut to a few seconds (development; the
#                   figures are then only a smoke test)
#   BENCH_SYSTEMS="raw lsvd ..."  the fio section's systems
#
# A partial run keeps the other sections' rows of docs/bench/results.csv.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out="$top/docs/bench"
b="$top/build/bench"
mkdir -p "$out" "$b"
sections=" ${*:-extmap write fio s3 recovery} "
want() { [[ $sections == *" $1 "* ]]; }
lsvd="$top/build/prefix/bin/lsvd"
t_start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# A snapshot of the QEMU tools: build/qemu-build may be relinked while we
# run (it is shared), and every figure must come from the same binaries.
for x in qemu-img qemu-io storage-daemon/qemu-storage-daemon; do
    [ -x "$top/build/qemu-build/$x" ] || { echo "bench: missing build/qemu-build/$x (make qemu)" >&2; exit 1; }
done
qb="$b/qemu"
rm -rf "$qb"
mkdir -p "$qb/storage-daemon"
for x in qemu-img qemu-io storage-daemon/qemu-storage-daemon; do
    cp -p "$top/build/qemu-build/$x" "$qb/$x"
done

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    quick=1 span=64M rt=2 wcap=32M journals="64M"
    n_write=20000 nw=4000 nput=8 nget=100 nhit=5000 wb=128
else
    quick=0 span=256M rt=10 wcap=256M journals="64M 256M 1G"
    n_write=100000 nw=20000 nput=32 nget=500 nhit=20000 wb=512
fi

[ -x "$lsvd" ] || { echo "bench: missing $lsvd (make core)" >&2; exit 1; }

# --- rows --------------------------------------------------------------------
# id,section,workload,system,metric,value,unit,ref,target,note
#   ref: ids of the reference rows (or =NUMBER), ';'-separated; target: one
#   condition on value/ref per ref (">=0.9"), or empty
csv="$b/results.csv"
: >"$csv"
row() {     # section workload system metric value unit ref target note
    local v=$5
    [ -n "$v" ] || { echo "bench: no value for $1/$2/$3/$4" >&2; return 0; }
    printf '%s/%s/%s/%s,%s,%s,%s,%s,%s,"%s",%s,%s,"%s"\n' \
        "$1" "$2" "$3" "$4" "$1" "$2" "$3" "$4" "$v" "$6" "$7" "$8" "${9//\"/\'}" >>"$csv"
}
calc() { awk "BEGIN { $1 }"; }

# Stop a background child: SIGTERM, up to SECONDS, then SIGKILL.
stop_child() {
    local pid=$1 secs=${2:-10} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    wait "$pid" 2>/dev/null || true
}

qbtime() {  # qemu-img bench ARGS: seconds
    "$qb/qemu-img" bench "$@" 2>&1 | tail -n 1 |
        sed -n 's/.*Run completed in \([0-9.]*\) seconds.*/\1/p'
}

# --- the shared Ceph cluster + RGW ------------------------------------------
r="$b/rgw"
bg_pids=()
mnt_dirs=()
# shellcheck disable=SC2317
cleanup() {
    local p m
    for p in "${bg_pids[@]+"${bg_pids[@]}"}"; do stop_child "$p" 30 || true; done
    [ -n "${fio_pid:-}" ] && { stop_child "$fio_pid" 30 || true; }
    for m in "${mnt_dirs[@]+"${mnt_dirs[@]}"}"; do
        mountpoint -q "$m" && fusermount3 -u "$m" 2>/dev/null
    done
    [ -d "$r" ] && bash "$top/scripts/rgw.sh" stop "$r" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
# The RGW deletes lazily (rgw gc, hours later) and the OSD is a 2 GiB
# memstore: free what the last step deleted before the next one fills it.
rgw_gc() {
    timeout 300 radosgw-admin -c "$r/ceph.conf" gc process --include-all >/dev/null 2>&1 ||
        echo "bench: radosgw-admin gc process failed" >&2
}
if want fio || want s3 || want recovery; then
    echo "bench: starting the Ceph cluster and RGW in $r" >&2
    # lsvd has no GC yet: the fio section alone leaves ~2 GiB of objects
    RGW_MEMSTORE_BYTES=$((8 << 30)) bash scripts/rgw.sh start "$r" >/dev/null
    export CEPH_CONF="$r/ceph.conf"
fi

# --- extmap ------------------------------------------------------------------
if want extmap; then
    echo "bench: extmap" >&2
    # shellcheck disable=SC2046
    gcc -O2 -Wall -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \
        $(pkg-config --cflags --libs glib-2.0) -o "$b/extmap-bench"
    n=1000000
    [ $quick = 1 ] && n=200000
    "$b/extmap-bench" "$n" >"$b/extmap.txt"
    # "insert (random order)  632.9 ns/op" / "memory  20.26 bytes/extent (...)":
    # the first memory line after each insert is the map of n extents
    awk '/^extmap:/ { kind = ($3 == "random") ? "random" : "ascending"; mem = 0 }
         /ns\/op/ { sub(/^ +/, ""); op = $0; sub(/ +[0-9.]+ ns\/op.*/, "", op); gsub(/,/, "", op);
                    n = split($0, f, " "); print kind "|" op "|" f[n - 1] "|ns/op" }
         /^ +memory/ && !mem { print kind "|memory|" $2 "|bytes/extent"; mem = 1 }
         /^ +heap/ { print kind "|heap (malloc overhead)|" $2 "|bytes/extent" }' "$b/extmap.txt" |
        while IFS='|' read -r kind op v unit; do
            row extmap "$kind" lsvd "$op" "$v" "$unit" "" "" "bench/extmap-bench.c, $n extents"
        done
fi

# --- write: qemu-img bench, lsvd on a dir:// store vs a raw file -------------
if want write; then
    echo "bench: write" >&2
    w="$b/write"
    rm -rf "$w"
    mkdir -p "$w"
    printf '[backend]\nurl = dir://%s/store\n[cache]\ndir = %s/cache\nsize = 1G\n' \
        "$w" "$w" >"$w/lsvd.conf"
    "$qb/qemu-img" create -q -f raw "$w/raw.img" 4G
    LSVD_CONF="$w/lsvd.conf" "$qb/qemu-img" create -q -f raw lsvd:bench 4G
    args=(-w -c "$n_write" -d 32 -s 4096 -S 1536k)
    for fl in 0 32; do
        fa=()
        [ $fl = 0 ] || fa=(--flush-interval=$fl)
        traw=$(qbtime "${args[@]}" "${fa[@]}" -f raw -t none -i io_uring "$w/raw.img")
        tl=$(LSVD_CONF="$w/lsvd.conf" qbtime "${args[@]}" "${fa[@]}" -f raw lsvd:bench)
        wl=write-4k-qd32-flush$fl
        note="qemu-img bench -w -c $n_write -d 32 -s 4096 -S 1536k ${fa[*]}; raw: -t none -i io_uring; lsvd on a dir:// store"
        row write "$wl" raw iops "$(calc "printf \"%.0f\", $n_write / $traw")" IOPS "" "" "$note"
        ref="write/$wl/raw/iops"
        tgt=
        [ $fl = 0 ] && tgt=">=0.9"
        row write "$wl" lsvd iops "$(calc "printf \"%.0f\", $n_write / $tl")" IOPS "$ref" "$tgt" "$note"
    done
    rm -rf "$w"
fi

# --- fio ---------------------------------------------------------------------
if want fio; then
    # shellcheck source=bench/fio.sh
    . "$top/bench/fio.sh"
    mnt_dirs+=("$fio_mnt")
    fio_section
fi

# --- s3 ----------------------------------------------------------------------
if want s3; then
    # shellcheck source=bench/s3.sh
    . "$top/bench/s3.sh"
    s3_section
fi

# --- recovery ----------------------------------------------------------------
if want recovery; then
    # shellcheck source=bench/recovery.sh
    . "$top/bench/recovery.sh"
    recovery_section
fi

cleanup
trap - EXIT

# --- report ------------------------------------------------------------------
# keep the rows of the sections not run this time
if [ -f "$out/results.csv" ]; then
    head -n 1 "$out/results.csv" | grep -q '^id,' && tail -n +2 "$out/results.csv" |
        awk -F, -v s="$sections" '{ sec = ($2 == "backend") ? "fio" : $2 } index(s, " " sec " ") == 0' >>"$csv"
fi
{
    echo "date,$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit,$(git rev-parse --short HEAD 2>/dev/null || echo none)"
    echo "sections,${sections# }"
    echo "quick,$quick"
    echo "wall_seconds,$((SECONDS - t_start))"
    echo "load average,at the start $load_start; at the end $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
    echo "machine,$(nproc) cores; $(free -g | awk '/Mem:/ {print $2}') GiB RAM; $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "cpu,$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "disk,$(df -h --output=source,fstype,size "$b" | tail -n 1 | tr -s ' ')"
    echo "qemu,$("$qb/qemu-img" --version | head -n 1) (build/qemu-build as of $(date -u -r "$qb/qemu-img" +%H:%MZ), lsvd linked in from main)"
    echo "fio,$(fio --version)"
    echo "ceph,$(ceph --version 2>/dev/null | cut -d' ' -f1-3)"
    echo "s3backer,$(s3backer --version 2>&1 | head -n 1)"
    echo "gnuplot,$(gnuplot --version)"
    echo "cpu_counter,$(perf stat -x, -e instructions true 2>&1 >/dev/null | grep -q 'not supported' &&
        echo 'perf stat -e instructions: not supported here; CPU per I/O is user+system seconds of the serving process (/proc/PID/stat)' ||
        echo 'CPU per I/O is user+system seconds of the serving process (/proc/PID/stat)')"
    echo "parameters,span $span; fio runtime ${rt}s; write cap $wcap; journals $journals"
} >"$b/meta.csv"
/usr/bin/python3 bench/report.py "$csv" "$b/meta.csv" "$out"
echo "bench: done in $((SECONDS - t_start)) s; results in docs/bench/" >&2
