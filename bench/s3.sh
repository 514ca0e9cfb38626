# Sourced by scripts/bench.sh (section s3): an lsvd volume on the run's RGW
# against the bare store (bench/s3put-bench.c, through the core's own
# backend_open()) and a raw file, side by side.
#
# Needs: $top $qb $r $b $lsvd $nw $nput $nget $nhit $wb, row(), calc(), qbtime().

s3_section() {
    local s3tmp="$b/s3" c1="$r/lsvd.conf" c2 stats
    echo "bench: s3 ($(date -u +%H:%M:%S))" >&2
    rm -rf "$s3tmp"
    mkdir -p "$s3tmp"
    # shellcheck disable=SC2046
    gcc -O2 -Wall -Wextra -Werror -Ilsvd-core/src -Ilsvd-core/include \
        bench/s3put-bench.c \
        $(PKG_CONFIG_PATH="$top/build/prefix/lib/pkgconfig" pkg-config --cflags --libs lsvd) \
        -o "$b/s3put-bench"
    # the RGW's config (journal 256M), and one with a journal much smaller
    # than the data for the write-back figure
    c2="$s3tmp/lsvd-64m.conf"
    sed "s|^size = .*|size = 64M|; s|^dir = .*|dir = $s3tmp/cache|" "$c1" >"$c2"
    st() { echo "$stats" | awk -v k="$1" '$1 == k { print $2 }'; }

    # 1. S3 requests per client write (qemu-img bench's pattern data; the
    # fio section has the same figure with random data at random offsets)
    "$lsvd" --conf "$c1" create w1 1G >/dev/null
    LSVD_CONF="$c1" qbtime -w -c "$nw" -d 32 -s 16k -S 1536k -f raw lsvd:w1 >/dev/null
    stats=$("$lsvd" --conf "$c1" stats w1)
    local w p
    w=$(st writes)
    p=$(st be_put)
    row s3 write-16k-qd32-strided lsvd s3_puts_per_write "$(calc "printf \"%.6f\", $p / $w")" "PUTs/client write" \
        "=0.0025" "<=1" "qemu-img bench -w -c $nw -d 32 -s 16k -S 1536k (pattern data); $p PUTs (incl. super, checkpoints) for $w writes, counted after close"
    row s3 write-16k-qd32-strided lsvd s3_bytes_per_byte "$(calc "printf \"%.3f\", $(st be_put_bytes) / $(st write_bytes)")" \
        "PUT bytes/client byte" "" "" "qemu-img bench's pattern buffer compresses"
    "$lsvd" --conf "$c1" rm w1 >/dev/null
    rgw_gc

    # 2. write-back throughput vs bare PUT, in the same minute: the bare PUT
    # runs before and after the volume, the reference is their mean
    head -c "${wb}M" /dev/urandom >"$s3tmp/rand.img"
    "$lsvd" --conf "$c2" create c2 "${wb}M" >/dev/null
    putmbs() { "$b/s3put-bench" "$c2" put "$nput" 4 | awk '$1 == "put_mb_s" { print $2 }'; }
    local put1 put2 t0 t1 t2 lsvd_mbs
    put1=$(putmbs)
    t0=$(date +%s.%N)
    LSVD_CONF="$c2" "$qb/qemu-img" convert -n -f raw -O raw "$s3tmp/rand.img" lsvd:c2
    t1=$(date +%s.%N)
    stats=$("$lsvd" --conf "$c2" stats c2)
    put2=$(putmbs)
    lsvd_mbs=$(calc "printf \"%.1f\", $wb * 1048576 / ($t1 - $t0) / 1e6")
    row s3 writeback bare-put put_mb_s "$(calc "printf \"%.1f\", ($put1 + $put2) / 2")" MB/s "" "" \
        "s3put-bench put $nput 4: 8 MiB objects of random data, 4 threads; before $put1, after $put2"
    row s3 writeback lsvd writeback_mb_s "$lsvd_mbs" MB/s "s3/writeback/bare-put/put_mb_s" ">=0.8" \
        "qemu-img convert of ${wb} MiB of /dev/urandom into a volume with a 64M journal, until it returns (closed, all PUT: $(st be_put) PUTs, $(st be_put_bytes) bytes)"
    row s3 writeback lsvd time_to_store_s "$(calc "printf \"%.2f\", $t1 - $t0")" s "" "" \
        "the whole write, from the first byte until everything is in the store"

    # 3. read miss vs bare GET: cold cache (journal and read cache deleted);
    # a read-only open never fills the cache: every read misses
    rm -f "$s3tmp/cache/c2".*
    local g1 g2 t gmean
    g1=$("$b/s3put-bench" "$c2" get "$nget" 65536)
    t=$(LSVD_CONF="$c2" qbtime -c "$nget" -d 1 -s 64k -S 1088k -f raw lsvd:c2)
    g2=$("$b/s3put-bench" "$c2" get "$nget" 65536)
    gv() { echo "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
    gmean=$(calc "printf \"%.0f\", ($(gv "$g1" get_mean_us) + $(gv "$g2" get_mean_us)) / 2")
    row s3 readmiss-64k-qd1 bare-get lat_mean "$gmean" us "" "" \
        "s3put-bench get $nget 65536: ranged GETs at random offsets of one 8 MiB object; before/after: mean $(gv "$g1" get_mean_us)/$(gv "$g2" get_mean_us), median $(gv "$g1" get_median_us)/$(gv "$g2" get_median_us), p99 $(gv "$g1" get_p99_us)/$(gv "$g2" get_p99_us) us"
    row s3 readmiss-64k-qd1 lsvd lat_mean "$(calc "printf \"%.0f\", $t / $nget * 1e6")" us \
        "s3/readmiss-64k-qd1/bare-get/lat_mean" "<=1.2" \
        "qemu-img bench -c $nget -d 1 -s 64k -S 1088k, read-only open, cold cache; mean = time / count"

    # 4. cache hits vs a raw file: fill the read cache with a writable full
    # read, close, drop the journal; read-only opens then serve every read
    # from the read cache, which is a file read with buffered pread.  Like
    # for like the reference is the raw file read buffered too, after one
    # full read (both in the page cache); O_DIRECT shown beside it.
    LSVD_CONF="$c2" "$qb/qemu-io" -f raw -c "read 0 ${wb}M" lsvd:c2 >/dev/null
    stats=$("$lsvd" --conf "$c2" stats c2)
    rm -f "$s3tmp/cache/c2.journal" "$s3tmp/cache/c2.jmap"
    cat "$s3tmp/rand.img" >/dev/null
    local sz n traw tbuf tl
    for sz in 64k 4k; do
        n=$nhit
        [ "$sz" = 4k ] && n=$((nhit * 4))
        local a=(-c "$n" -d 32 -s "$sz" -S 1088k -f raw)
        tbuf=$(qbtime "${a[@]}" -t writeback -i threads "$s3tmp/rand.img")
        tl=$(LSVD_CONF="$c2" qbtime "${a[@]}" lsvd:c2)
        traw=$(qbtime "${a[@]}" -t none -i io_uring "$s3tmp/rand.img")
        local wl="readhit-$sz-qd32"
        row s3 "$wl" raw-buffered iops "$(calc "printf \"%.0f\", $n / $tbuf")" IOPS "" "" \
            "qemu-img bench -c $n -d 32 -s $sz -S 1088k -t writeback (page cache, file read once before)"
        row s3 "$wl" raw-direct iops "$(calc "printf \"%.0f\", $n / $traw")" IOPS "" "" \
            "the same with -t none -i io_uring (O_DIRECT)"
        row s3 "$wl" lsvd iops "$(calc "printf \"%.0f\", $n / $tl")" IOPS \
            "s3/$wl/raw-buffered/iops;s3/$wl/raw-direct/iops" ">=0.9;" \
            "read-only open, read cache filled by a full read ($(st rc_fills) fills); buffered pread from the cache file"
    done
    "$lsvd" --conf "$c2" rm c2 >/dev/null
    rgw_gc
    rm -rf "$s3tmp"
}
