# Sourced by scripts/bench.sh (section recovery): how long an lsvd volume
# takes to open after qemu-storage-daemon was killed (SIGKILL) right after
# filling its journal, against a clean open of the same volume, per journal
# size.  The open is timed from the daemon's start until its NBD socket
# exists (the export is created after the blockdev is open); a raw file's
# open is timed the same way for the daemon's own start-up.
#
# Needs: $top $qb $r $b $lsvd $journals, row(), stop_child().

rec_dir="$b/recovery"
rec_qsd="$qb/storage-daemon/qemu-storage-daemon"

rec_start() {   # blockdev options: sets rec_t, seconds until the export exists
    local t0 i
    rm -f "$rec_dir/nbd.sock"
    t0=$(date +%s.%N)
    "$rec_qsd" --blockdev "$1" \
        --nbd-server "addr.type=unix,addr.path=$rec_dir/nbd.sock" \
        --export type=nbd,id=e0,node-name=d0,name=d0,writable=on \
        >>"$rec_dir/qsd.log" 2>&1 &
    rec_pid=$!
    bg_pids+=("$rec_pid")
    for ((i = 0; i < 6000; i++)); do
        [ -S "$rec_dir/nbd.sock" ] && break
        kill -0 "$rec_pid" 2>/dev/null || { echo "bench: qsd failed: $(tail -n 3 "$rec_dir/qsd.log")" >&2; return 1; }
        sleep 0.01
    done
    rec_t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
}

recovery_section() {
    echo "bench: recovery ($(date -u +%H:%M:%S))" >&2
    rm -rf "$rec_dir"
    mkdir -p "$rec_dir"
    local j conf dev t_raw t_crash t_clean
    "$qb/qemu-img" create -q -f raw "$rec_dir/raw.img" 64M
    rec_start "driver=file,filename=$rec_dir/raw.img,node-name=d0"
    t_raw=$rec_t
    stop_child "$rec_pid" 30
    row recovery qsd-startup raw open_s "$t_raw" s "" "" "qemu-storage-daemon start until its NBD socket exists, raw file"
    for j in $journals; do
        conf="$rec_dir/lsvd-$j.conf"
        sed "s|^size = .*|size = $j|; s|^dir = .*|dir = $rec_dir/cache|" "$r/lsvd.conf" >"$conf"
        "$lsvd" --conf "$conf" create rec "$j" >/dev/null
        dev="driver=lsvd,volume=rec,conf=$conf,node-name=d0"
        rec_start "$dev"
        # the volume's size in random data, as fast as it goes: the
        # journal is full (write-back lags) when fio returns
        fio --name=fill --ioengine=nbd "--uri=nbd+unix:///d0?socket=$rec_dir/nbd.sock" \
            --rw=write --bs=1m --iodepth=32 --size="$j" >>"$rec_dir/fio.log" 2>&1 ||
            echo "bench: fio fill failed" >&2
        kill -KILL "$rec_pid"
        wait "$rec_pid" 2>/dev/null || true
        local jb
        jb=$("$lsvd" --conf "$conf" stats rec | awk '$1 == "journal_bytes" { print $2 }')
        rec_start "$dev"
        t_crash=$rec_t
        stop_child "$rec_pid" 600 || echo "bench: qsd had to be killed" >&2
        # what that session wrote back: the journal it found after the kill
        local rp
        rp=$("$lsvd" --conf "$conf" stats rec |
            awk '$1 == "be_put" { n = $2 } $1 == "be_put_bytes" { b = $2 } END { print n " PUTs, " b " bytes" }')
        rec_start "$dev"
        t_clean=$rec_t
        stop_child "$rec_pid" 600 || echo "bench: qsd had to be killed" >&2
        row recovery "journal-$j" lsvd clean_open_s "$t_clean" s "" "" "open after a clean close"
        row recovery "journal-$j" lsvd crash_open_s "$t_crash" s "recovery/journal-$j/lsvd/clean_open_s" "" \
            "open after kill -9 right after writing $j (counters file, <= 5 s old: ${jb:-?} journal bytes not in objects); that session then wrote back $rp before its close"
        "$lsvd" --conf "$conf" rm rec >/dev/null
        rgw_gc
        rm -rf "$rec_dir/cache"
    done
    rm -rf "$rec_dir"
}
