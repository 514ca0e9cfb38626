#!/usr/bin/env bash
# Benchmarks (make bench).  Each writes what it measured, with the command
# and the machine, to docs/bench/NAME.txt.
#
#   extmap   bytes per extent and ns per operation of the extent map
#   write    qemu-img bench: 4 KiB random writes at queue depth 32, lsvd
#            against a raw file on the same disk, side by side (needs the
#            patched QEMU: make qemu)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out="$top/docs/bench"
mkdir -p "$out" build/bench

header() {
    echo "# $1"
    echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
    echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
    echo "# command: $2"
}

cmd="gcc -O2 -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \$(pkg-config --cflags --libs glib-2.0) && ./extmap-bench 1000000"
# shellcheck disable=SC2046
gcc -O2 -Wall -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \
    $(pkg-config --cflags --libs glib-2.0) -o build/bench/extmap-bench
{
    header "extent map (lsvd-core/src/extmap.c)" "$cmd"
    build/bench/extmap-bench 1000000
} | tee "$out/extmap.txt"
qb="$top/build/qemu-build"
if [ -x "$qb/qemu-img" ]; then
    w="$top/build/bench/write"
    rm -rf "$w"
    mkdir -p "$w"
    printf '[backend]\nurl = dir://%s/store\n[cache]\ndir = %s/cache\nsize = 1G\n' \
        "$w" "$w" > "$w/lsvd.conf"
    export LSVD_CONF="$w/lsvd.conf"
    "$qb/qemu-img" create -q -f raw "$w/raw.img" 4G
    "$qb/qemu-img" create -q -f raw lsvd:bench 4G
    n=${BENCH_WRITES:-100000}
    args="-w -c $n -d 32 -s 4096 -S 1536k"
    bench() {   # name, then qemu-img bench arguments
        local name=$1 out t
        shift
        out=$("$qb/qemu-img" bench "$@" 2>&1 | tail -n 1)
        t=$(echo "$out" | sed -n 's/.*Run completed in \([0-9.]*\) seconds.*/\1/p')
        printf '  %-34s %8.3f s  %9.0f IOPS\n' "$name" "$t" "$(awk -v n="$n" -v t="$t" 'BEGIN { print n / t }')"
    }
    {
        header "4 KiB writes, queue depth 32, $n requests, lsvd vs raw file (same disk)" \
            "qemu-img bench $args [--flush-interval=32] -f raw -t none -i io_uring FILE | lsvd:bench"
        # shellcheck disable=SC2086
        bench "raw file, no flushes" $args -f raw -t none -i io_uring "$w/raw.img"
        # shellcheck disable=SC2086
        bench "lsvd, no flushes" $args -f raw lsvd:bench
        # shellcheck disable=SC2086
        bench "raw file, flush every 32 writes" $args --flush-interval=32 -f raw -t none -i io_uring "$w/raw.img"
        # shellcheck disable=SC2086
        bench "lsvd, flush every 32 writes" $args --flush-interval=32 -f raw lsvd:bench
        "$top/build/prefix/bin/lsvd" info bench | sed 's/^/  /'
    } | tee "$out/write.txt"
    rm -rf "$w"
fi
echo "bench: results in docs/bench/"
