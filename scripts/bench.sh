#!/usr/bin/env bash
# Benchmarks (make bench).  Each writes what it measured, with the command
# and the machine, to docs/bench/NAME.txt.
#
#   extmap   bytes per extent and ns per operation of the extent map
#   write    qemu-img bench: 4 KiB random writes at queue depth 32, lsvd
#            against a raw file on the same disk, side by side (needs the
#            patched QEMU: make qemu)
#   s3       an lsvd volume on a local Ceph RGW (scripts/rgw.sh, started
#            here and stopped on exit) against the bare store, side by side:
#            PUTs per client write, write-back vs bare PUT throughput, read
#            miss vs bare GET latency, read cache hits vs a raw file (needs
#            the patched QEMU and the Ceph packages scripts/rgw.sh installs)
#
#   scripts/bench.sh [SECTION...]   (default: all of them)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out="$top/docs/bench"
mkdir -p "$out" build/bench
sections=" ${*:-extmap write s3} "
want() { [[ $sections == *" $1 "* ]]; }

header() {
    echo "# $1"
    echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
    echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
    echo "# command: $2"
}

if want extmap; then
    cmd="gcc -O2 -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \$(pkg-config --cflags --libs glib-2.0) && ./extmap-bench 1000000"
    # shellcheck disable=SC2046
    gcc -O2 -Wall -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \
        $(pkg-config --cflags --libs glib-2.0) -o build/bench/extmap-bench
    {
        header "extent map (lsvd-core/src/extmap.c)" "$cmd"
        build/bench/extmap-bench 1000000
    } | tee "$out/extmap.txt"
fi
qb="$top/build/qemu-build"
if ! want write; then
    :
elif [ -x "$qb/qemu-img" ]; then
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

# --- s3 ----------------------------------------------------------------------
# Every figure beside its reference, from one run on one RGW.  The volume's
# counters come from `lsvd stats` (written by writable sessions only).
if ! want s3; then
    :
elif [ ! -x "$qb/qemu-img" ]; then
    echo "s3: skipped (QEMU is not built: make qemu)"
else
    r="$top/build/bench/rgw"
    lsvd="$top/build/prefix/bin/lsvd"
    s3tmp="$top/build/bench/s3"
    # shellcheck disable=SC2317
    s3_cleanup() {
        bash "$top/scripts/rgw.sh" stop "$r" >/dev/null 2>&1 || true
        rm -rf "$s3tmp"
    }
    trap s3_cleanup EXIT
    rm -rf "$s3tmp"
    mkdir -p "$s3tmp"
    # shellcheck disable=SC2046
    gcc -O2 -Wall -Wextra -Werror -Ilsvd-core/src -Ilsvd-core/include \
        bench/s3put-bench.c \
        $(PKG_CONFIG_PATH="$top/build/prefix/lib/pkgconfig" pkg-config --cflags --libs lsvd) \
        -o build/bench/s3put-bench
    bash scripts/rgw.sh start "$r" >/dev/null
    # the RGW's config (journal 256M), and one with a journal much smaller
    # than the data for the write-back figure
    c1="$r/lsvd.conf"
    c2="$s3tmp/lsvd-64m.conf"
    sed "s|^size = .*|size = 64M|; s|^dir = .*|dir = $s3tmp/cache|" "$c1" > "$c2"
    st() {      # KEY: from the last `lsvd stats` output in $stats
        echo "$stats" | awk -v k="$1" '$1 == k { print $2 }'
    }
    qbtime() {  # qemu-img bench ARGS: seconds
        "$qb/qemu-img" bench "$@" 2>&1 | tail -n 1 |
            sed -n 's/.*Run completed in \([0-9.]*\) seconds.*/\1/p'
    }
    line() {    # figure, value, ratio, reference (with target)
        printf '  %-44s %14s   %6s  %s\n' "$1" "$2" "$3" "$4"
    }
    calc() { awk "BEGIN { $1 }"; }
    nw=${BENCH_S3_WRITES:-20000}
    nput=${BENCH_S3_PUTS:-32}
    nget=${BENCH_S3_GETS:-500}
    nhit=${BENCH_S3_HITS:-20000}
    {
        header "lsvd on a local Ceph RGW (scripts/rgw.sh: 1 mon, 1 memstore OSD, radosgw, 127.0.0.1) vs the bare store and a raw file" \
            "make bench (scripts/bench.sh, section s3); the bare store: build/bench/s3put-bench (bench/s3put-bench.c, the core's backend_open())"
        echo "# columns: figure, value, ratio to the reference, reference (target)"

        # 1. S3 requests per client write
        export LSVD_CONF="$c1"
        "$qb/qemu-img" create -q -f raw lsvd:w1 1G
        t=$(qbtime -w -c "$nw" -d 32 -s 16k -S 1536k -f raw lsvd:w1)
        stats=$("$lsvd" stats w1)
        echo
        echo "1. S3 requests per client write: qemu-img bench -w -c $nw -d 32 -s 16k -S 1536k -f raw lsvd:w1"
        echo "   (1 GiB volume, 16 KiB writes strided 1.5 MiB apart, wrapping: qemu-img bench has no random mode;"
        echo "   data: qemu-img bench's fixed pattern buffer, compressible; journal 256M; counted after close: all PUT)"
        w=$(st writes); wb=$(st write_bytes); p=$(st be_put); pb=$(st be_put_bytes)
        line "client writes / bytes ($t s)" "$w / $wb" "" ""
        line "PUTs / PUT bytes (incl. super, checkpoints)" "$p / $pb" "" ""
        line "PUTs per client write" "$(calc "printf \"1/%.0f\", $w / $p")" \
            "$(calc "printf \"%.2fx\", $p / $w * 400")" \
            "target <= 1/400 ($(calc "if ($p / $w <= 1 / 400) print \"met\"; else print \"NOT met\"")); ratio = value / (1/400)"
        line "PUT bytes per client byte" "$(calc "printf \"%.3f\", $pb / $wb")" \
            "$(calc "printf \"%.3fx\", $pb / $wb")" "client bytes (pattern data compresses)"
        "$lsvd" rm w1 >/dev/null

        # 2. write-back throughput vs bare PUT
        export LSVD_CONF="$c2"
        head -c 512M /dev/urandom > "$s3tmp/rand.img"
        "$qb/qemu-img" create -q -f raw lsvd:c2 512M
        # the machine is shared: the bare PUT runs before and after the
        # volume, and the reference is their mean
        putmbs() { build/bench/s3put-bench "$c2" put "$nput" 4 | awk '$1 == "put_mb_s" { print $2 }'; }
        put1=$(putmbs)
        t0=$(date +%s.%N)
        "$qb/qemu-img" convert -n -f raw -O raw "$s3tmp/rand.img" lsvd:c2
        t1=$(date +%s.%N)
        stats=$("$lsvd" stats c2)
        lsvd_mbs=$(calc "printf \"%.1f\", 512 * 1048576 / ($t1 - $t0) / 1e6")
        put2=$(putmbs)
        put_mbs=$(calc "printf \"%.1f\", ($put1 + $put2) / 2")
        echo
        echo "2. Write-back throughput: qemu-img convert -n -f raw -O raw RAND512M lsvd:c2 (512 MiB of /dev/urandom,"
        echo "   journal [cache] size = 64M, timed until convert returns, i.e. closed and all PUT;"
        echo "   $(st be_put) PUTs, $(st be_put_bytes) bytes) vs s3put-bench put $nput 4 (8 MiB objects of random data,"
        echo "   4 threads as the volume's 4 PUT workers; run before and after the volume: the machine is shared)"
        line "bare PUT, 4 threads, before / after (MB/s)" "$put1 / $put2" "" ""
        line "bare PUT, 4 threads, mean (MB/s)" "$put_mbs" "1.00x" "reference"
        line "lsvd write-back, convert to close (MB/s)" "$lsvd_mbs" \
            "$(calc "printf \"%.2fx\", $lsvd_mbs / $put_mbs")" \
            "bare PUT; target >= 0.8x ($(calc "if ($lsvd_mbs / $put_mbs >= 0.8) print \"met\"; else print \"NOT met\""))"

        # 3. read miss vs bare GET: cold cache (journal and read cache
        # deleted); a read-only open never fills the cache: every read misses
        rm -f "$s3tmp/cache/c2".*
        get=$(build/bench/s3put-bench "$c2" get "$nget" 65536)
        t=$(qbtime -c "$nget" -d 1 -s 64k -S 1088k -f raw lsvd:c2)
        get2=$(build/bench/s3put-bench "$c2" get "$nget" 65536)
        gv() { echo "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
        gmed="$(gv "$get" get_median_us) / $(gv "$get2" get_median_us)"
        gp99="$(gv "$get" get_p99_us) / $(gv "$get2" get_p99_us)"
        gmean=$(calc "printf \"%.0f\", ($(gv "$get" get_mean_us) + $(gv "$get2" get_mean_us)) / 2")
        gmeans="$(gv "$get" get_mean_us) / $(gv "$get2" get_mean_us)"
        miss=$(calc "printf \"%.0f\", $t / $nget * 1e6")
        echo
        echo "3. Read miss latency: qemu-img bench -c $nget -d 1 -s 64k -S 1088k -f raw lsvd:c2 (read-only, cold cache:"
        echo "   journal and read cache deleted; mean = time / count, qemu-img bench gives no percentiles)"
        echo "   vs s3put-bench get $nget 65536 (ranged GETs of 64 KiB at random offsets of one 8 MiB object, one at a time,"
        echo "   run before and after the volume)"
        line "bare GET 64 KiB, before / after: median (us)" "$gmed" "" ""
        line "bare GET 64 KiB, before / after: p99 (us)" "$gp99" "" ""
        line "bare GET 64 KiB, before / after: mean (us)" "$gmeans" "" ""
        line "bare GET 64 KiB, mean of both (us)" "$gmean" "1.00x" "reference"
        line "lsvd read miss 64 KiB QD1, mean (us)" "$miss" \
            "$(calc "printf \"%.2fx\", $miss / $gmean")" \
            "bare GET mean; target <= 1.2x ($(calc "if ($miss / $gmean <= 1.2) print \"met\"; else print \"NOT met\""))"

        # 4. cache hits vs a raw file: fill the read cache with a writable
        # full read, close, drop the journal again; read-only opens then
        # serve every read from the read cache
        "$qb/qemu-io" -f raw -c 'read 0 512M' lsvd:c2 >/dev/null
        stats=$("$lsvd" stats c2)
        rm -f "$s3tmp/cache/c2.journal" "$s3tmp/cache/c2.jmap"
        echo
        echo "4. Read cache hits: qemu-img bench -c N -d 32 -s SIZE -S 1088k -f raw [-t none -i io_uring RAND512M | lsvd:c2]"
        echo "   (read cache filled by qemu-io -c 'read 0 512M' lsvd:c2: $(st rc_fills) fills, $(st rc_misses) misses;"
        echo "   then journal deleted, read-only opens.  NOTE: the read cache file is read with buffered pread,"
        echo "   through the page cache (and was just written, so it is likely in RAM); the raw file uses O_DIRECT)"
        for sz in 64k 4k; do
            n=$nhit
            [ "$sz" = 4k ] && n=$((nhit * 4))
            traw=$(qbtime -c "$n" -d 32 -s "$sz" -S 1088k -f raw -t none -i io_uring "$s3tmp/rand.img")
            tl=$(qbtime -c "$n" -d 32 -s "$sz" -S 1088k -f raw lsvd:c2)
            line "raw file $sz QD32, $n reads (IOPS)" "$(calc "printf \"%.0f\", $n / $traw")" "1.00x" "reference"
            line "lsvd read cache hits $sz QD32 (IOPS)" "$(calc "printf \"%.0f\", $n / $tl")" \
                "$(calc "printf \"%.2fx\", $traw / $tl")" \
                "raw file; target >= 0.9x ($(calc "if ($traw / $tl >= 0.9) print \"met\"; else print \"NOT met\""))"
        done
    } | tee "$out/s3.txt"
    s3_cleanup
    trap - EXIT
fi
echo "bench: results in docs/bench/"
