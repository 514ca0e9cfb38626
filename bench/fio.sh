# Sourced by scripts/bench.sh (section fio): the same fio workloads against
# every system, each seen through the path a VM would use:
#
#   raw      a raw file on the cache's disk (the physical limit), exported
#            by qemu-storage-daemon over NBD (cache.direct=on, io_uring)
#   qcow2    a qcow2 file on that disk, the same way
#   lsvd     an lsvd volume on the run's RGW, the same way
#   rbd      an RBD image on the run's Ceph cluster through fio's librbd
#            engine (our QEMU is built without the rbd driver)
#   s3backer a FUSE block file on the run's RGW (path-style requests), fio
#            with libaio and O_DIRECT on its file
#
# Every write workload runs in its own session (daemon started, fio, daemon
# stopped, so write-back is complete), with the OSD's perf counters read
# before and after: backend operations per client write alike for lsvd,
# rbd and s3backer.  The systems take turns, workload by workload, so that
# each ratio compares runs made seconds apart (the machine is shared).
# lsvd's journal is the default 1 GiB, more than a workload writes: these
# figures are the cache's; bench/s3.sh's write-back figure is the store's.
# Rows go to $csv through row() (scripts/bench.sh).
#
# Needs: $top $qb $r (RGW state dir) $csv $span $rt $wcap, row(), jget().

fio_qsd="$qb/storage-daemon/qemu-storage-daemon"
fio_dir="$top/build/bench/fio"
fio_sock="$fio_dir/nbd.sock"
fio_mnt="$fio_dir/s3b-mnt"
fio_pid=

# name rw bs iodepth [fio options...]; seqwrite-1m first: it fills the span
# that the reads then read
fio_workloads=(
    "seqwrite-1m write 1m 4"
    "seqread-1m read 1m 4"
    "randread-4k-qd1 randread 4k 1"
    "randread-4k-qd32 randread 4k 32"
    "randread-16k-qd1 randread 16k 1"
    "randread-16k-qd32 randread 16k 32"
    "randread-64k-qd1 randread 64k 1"
    "randread-64k-qd32 randread 64k 32"
    "randwrite-4k-qd1 randwrite 4k 1"
    "randwrite-4k-qd32 randwrite 4k 32"
    "randwrite-16k-qd1 randwrite 16k 1"
    "randwrite-16k-qd32 randwrite 16k 32"
    "randwrite-64k-qd1 randwrite 64k 1"
    "randwrite-64k-qd32 randwrite 64k 32"
    "fsync-4k-every4 randwrite 4k 1 --fsync=4"
)

# OSD write operations and bytes (all write-like ops: op_w + op_rw)
osd_counters() {
    ceph --admin-daemon "$r/run/osd.0.asok" perf dump |
        /usr/bin/python3 -c 'import json, sys
o = json.load(sys.stdin)["osd"]
print(o["op_w"] + o["op_rw"], o["op_w_in_bytes"] + o["op_rw_in_bytes"])'
}

# CPU seconds (user + system) a process has used so far
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# --- per system: setup, start (a session), stop, teardown -------------------
# start_* leaves fio's target options in fio_target and the serving
# process (for its CPU time) in fio_pid.

qsd_start() {   # qemu-storage-daemon --blockdev options
    rm -f "$fio_sock"
    "$fio_qsd" --blockdev "$1" \
        --nbd-server "addr.type=unix,addr.path=$fio_sock" \
        --export type=nbd,id=e0,node-name=d0,name=d0,writable=on \
        >>"$fio_dir/qsd.log" 2>&1 &
    fio_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        [ -S "$fio_sock" ] && break
        kill -0 "$fio_pid" 2>/dev/null || { echo "bench: qsd failed: $(tail -n 3 "$fio_dir/qsd.log")" >&2; return 1; }
        sleep 0.1
    done
    [ -S "$fio_sock" ] || { echo "bench: qsd did not export in 30 s" >&2; return 1; }
    fio_target=(--ioengine=nbd "--uri=nbd+unix:///d0?socket=$fio_sock")
}

qsd_stop() {
    [ -n "$fio_pid" ] || return 0
    stop_child "$fio_pid" 300 || echo "bench: qsd had to be killed" >&2
    fio_pid=
}

setup_raw() {
    "$qb/qemu-img" create -q -f raw "$fio_dir/raw.img" "$span"
}
start_raw() {
    qsd_start "driver=file,filename=$fio_dir/raw.img,cache.direct=on,aio=io_uring,node-name=d0"
}
stop_raw() { qsd_stop; }
teardown_raw() { rm -f "$fio_dir/raw.img"; }

setup_qcow2() {
    "$qb/qemu-img" create -q -f qcow2 "$fio_dir/img.qcow2" "$span"
}
start_qcow2() {
    qsd_start "driver=qcow2,node-name=d0,file.driver=file,file.filename=$fio_dir/img.qcow2,file.cache.direct=on,file.aio=io_uring"
}
stop_qcow2() { qsd_stop; }
teardown_qcow2() { rm -f "$fio_dir/img.qcow2"; }

setup_lsvd() {
    sed "s|^size = .*|size = 1G|; s|^dir = .*|dir = $fio_dir/lsvd-cache|" \
        "$r/lsvd.conf" >"$fio_dir/lsvd.conf"
    "$lsvd" --conf "$fio_dir/lsvd.conf" create fiobench "$span" >/dev/null
}
start_lsvd() {
    qsd_start "driver=lsvd,volume=fiobench,conf=$fio_dir/lsvd.conf,node-name=d0"
}
stop_lsvd() { qsd_stop; }
teardown_lsvd() {
    "$lsvd" --conf "$fio_dir/lsvd.conf" rm fiobench >/dev/null
    rm -rf "$fio_dir/lsvd-cache"
}

setup_rbd() {
    ceph osd pool ls | grep -qx rbd || {
        ceph osd pool create rbd 8 >/dev/null 2>&1
        rbd pool init rbd
    }
    rbd create --size "$span" rbd/fiobench
}
start_rbd() {
    fio_pid=
    fio_target=(--ioengine=rbd --clientname=admin --pool=rbd --rbdname=fiobench)
}
stop_rbd() { :; }
teardown_rbd() { rbd rm --no-progress rbd/fiobench; }

# s3backer 1.5.4: --region would switch to virtual-host URLs, so none is
# given (aws4 signs for us-east-1, the RGW's region); 64 KiB blocks, its
# default block cache (1000 blocks, write-back after 250 ms, 20 threads)
setup_s3backer() { mkdir -p "$fio_mnt"; }
start_s3backer() {
    # shellcheck disable=SC1091
    . "$r/env"
    s3backer -f --baseURL="$RGW_ENDPOINT/" --accessId="$AWS_ACCESS_KEY_ID" \
        --accessKey="$AWS_SECRET_ACCESS_KEY" --authVersion=aws4 \
        --prefix=s3backer/ --blockSize=64k --size="$span" --listBlocks \
        "$RGW_BUCKET" "$fio_mnt" >>"$fio_dir/s3backer.log" 2>&1 &
    fio_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        mountpoint -q "$fio_mnt" && [ -f "$fio_mnt/file" ] && break
        kill -0 "$fio_pid" 2>/dev/null || { echo "bench: s3backer failed: $(tail -n 3 "$fio_dir/s3backer.log")" >&2; return 1; }
        sleep 0.1
    done
    fio_target=(--ioengine=libaio --direct=1 "--filename=$fio_mnt/file")
}
stop_s3backer() {
    # unmounting makes s3backer write its dirty blocks and exit
    fusermount3 -u "$fio_mnt" 2>/dev/null || true
    local i
    for ((i = 0; i < 3000; i++)); do
        kill -0 "$fio_pid" 2>/dev/null || break
        sleep 0.1
    done
    stop_child "$fio_pid" 10 || echo "bench: s3backer had to be killed" >&2
    fio_pid=
}
teardown_s3backer() {
    # shellcheck disable=SC1091
    . "$r/env"
    s3backer --erase --force --baseURL="$RGW_ENDPOINT/" --accessId="$AWS_ACCESS_KEY_ID" \
        --accessKey="$AWS_SECRET_ACCESS_KEY" --authVersion=aws4 --prefix=s3backer/ \
        --blockSize=64k --size="$span" --quiet "$RGW_BUCKET" >>"$fio_dir/s3backer.log" 2>&1 ||
        echo "bench: s3backer --erase failed" >&2
}

# --- one workload on one system ---------------------------------------------
fio_one() {     # system name rw bs qd [fio options...]
    local sys=$1 name=$2 rw=$3 bs=$4 qd=$5 o0 o1 c0 c1 limit
    shift 5
    case $rw in
    read | randread) limit=(--time_based "--runtime=$rt") ;;
    write) limit=("--io_size=$span" "--runtime=$((rt * 6))") ;;
    *) limit=("--io_size=$wcap" "--runtime=$rt") ;;
    esac
    o0=$(osd_counters)
    "start_$sys"
    [ -n "$fio_pid" ] && c0=$(cpu_seconds "$fio_pid")
    fio --name="$name" "${fio_target[@]}" --rw="$rw" --bs="$bs" --iodepth="$qd" \
        --size="$span" "${limit[@]}" --randrepeat=0 --norandommap --refill_buffers \
        --output-format=json --output="$fio_dir/$sys-$name.json" "$@" \
        >>"$fio_dir/fio.log" 2>&1 || echo "bench: fio $sys $name failed" >&2
    [ -n "$fio_pid" ] && c1=$(cpu_seconds "$fio_pid")
    # closing waits until everything written is in the store: time it
    local stats= t0 t1
    t0=$(date +%s.%N)
    "stop_$sys"
    t1=$(date +%s.%N)
    [ "$sys" = lsvd ] && stats=$("$lsvd" --conf "$fio_dir/lsvd.conf" stats fiobench)
    o1=$(osd_counters)
    fio_rows "$sys" "$name" "$fio_dir/$sys-$name.json" "$o0" "$o1" "${c0:-}" "${c1:-}" "$stats"
    case $sys/$rw in
    lsvd/*write | s3backer/*write)
        row backend "$name" "$sys" close_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
            "s to store" "" "" "from fio's end until the close returned: the store up to date"
        ;;
    esac
}

# fio's JSON, the counters: CSV rows
fio_rows() {    # system workload json osd0 osd1 cpu0 cpu1 lsvd-stats
    local sys=$1 w=$2 tgt ref v iops mbs lat p99 ios bytes fiocpu
    v=$(/usr/bin/python3 - "$3" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["write"] if j["write"]["total_ios"] else j["read"]
p99 = d["clat_ns"].get("percentile", {}).get("99.000000", 0)
print(d["iops"], d["bw_bytes"] / 1e6, d["lat_ns"]["mean"] / 1e3, p99 / 1e3,
      d["total_ios"], d["io_bytes"], (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] / 1e3)
PY
) || { echo "bench: no fio result for $sys $w" >&2; return 0; }
    read -r iops mbs lat p99 ios bytes fiocpu <<<"$v"
    ref="fio/$w/raw/iops"
    tgt=
    [ "$sys" = raw ] && ref=
    if [ "$sys" = lsvd ] && [ "$w" = randwrite-4k-qd32 ]; then
        ref="fio/$w/raw/iops;fio/$w/rbd/iops;fio/$w/s3backer/iops"
        tgt=">=0.9;>=10;>=20"
    fi
    # fresh random data in every write (--refill_buffers): lsvd compresses,
    # and fio's reused buffers would flatter it
    row fio "$w" "$sys" iops "$iops" IOPS "$ref" "$tgt" ""
    row fio "$w" "$sys" mb_s "$mbs" MB/s "${ref:+fio/$w/raw/mb_s}" "" ""
    row fio "$w" "$sys" lat_mean "$lat" us "${ref:+fio/$w/raw/lat_mean}" "" ""
    row fio "$w" "$sys" lat_p99 "$p99" us "${ref:+fio/$w/raw/lat_p99}" "" ""
    if [ -n "$6" ]; then
        row fio "$w" "$sys" cpu_per_io "$(awk -v a="$6" -v b="$7" -v n="$ios" 'BEGIN { printf "%.2f", (b - a) / n * 1e6 }')" \
            "us CPU/IO" "${ref:+fio/$w/raw/cpu_per_io}" "" "serving process (qsd or s3backer), user+system, from /proc/PID/stat"
    elif [ "$sys" = rbd ]; then
        row fio "$w" "$sys" cpu_per_io "$(awk -v c="$fiocpu" -v n="$ios" 'BEGIN { printf "%.2f", c / n * 1e6 }')" \
            "us CPU/IO" "fio/$w/raw/cpu_per_io" "" "fio process with librbd (client side only; the OSD's CPU not counted)"
    fi
    case $w in
    *write* | fsync*) ;;
    *) return 0 ;;
    esac
    case $sys in
    lsvd | rbd | s3backer) ;;
    *) return 0 ;;
    esac
    local ow ob ow0 ob0 osd_ref=
    [ "$sys" = rbd ] || osd_ref="backend/$w/rbd/osd_writes_per_write"
    read -r ow0 ob0 <<<"$4"
    read -r ow ob <<<"$5"
    ow=$((ow - ow0))
    ob=$((ob - ob0))
    row backend "$w" "$sys" osd_writes_per_write "$(awk -v a="$ow" -v n="$ios" 'BEGIN { printf "%.5f", a / n }')" \
        "OSD write ops/client write" "$osd_ref" "" \
        "$ow OSD write ops (op_w+op_rw) for $ios client writes"
    row backend "$w" "$sys" osd_bytes_per_byte "$(awk -v a="$ob" -v n="$bytes" 'BEGIN { printf "%.3f", a / n }')" \
        "OSD bytes/client byte" "" "" "$ob bytes into the OSD for $bytes client bytes"
    if [ -n "$8" ]; then
        local puts pb cw
        puts=$(echo "$8" | awk '$1 == "be_put" { print $2 }')
        pb=$(echo "$8" | awk '$1 == "be_put_bytes" { print $2 }')
        cw=$(echo "$8" | awk '$1 == "writes" { print $2 }')
        tgt=
        ref="backend/$w/rbd/osd_writes_per_write"
        if [ "$w" = randwrite-16k-qd32 ]; then
            ref="=0.0025"
            tgt="<=1"
        fi
        row backend "$w" lsvd s3_puts_per_write "$(awk -v a="$puts" -v n="$cw" 'BEGIN { printf "%.6f", a / n }')" \
            "PUTs/client write" "$ref" "$tgt" \
            "lsvd stats: $puts PUTs for $cw client writes (session incl. close)"
        row backend "$w" lsvd s3_puts_per_gb "$(awk -v a="$puts" -v n="$bytes" 'BEGIN { printf "%.1f", a / n * 1073741824 }')" \
            "PUTs/client GiB" "" "" ""
        row backend "$w" lsvd s3_bytes_per_byte "$(awk -v a="$pb" -v n="$bytes" 'BEGIN { printf "%.3f", a / n }')" \
            "PUT bytes/client byte" "" "" "fio's buffers: random, incompressible"
    fi
}

fio_section() {
    rm -rf "$fio_dir"
    mkdir -p "$fio_dir"
    local sys w systems=(${BENCH_SYSTEMS:-raw qcow2 lsvd rbd s3backer})
    for sys in "${systems[@]}"; do
        "setup_$sys"
    done
    for w in "${fio_workloads[@]}"; do
        echo "bench: fio ${w%% *} ($(date -u +%H:%M:%S))" >&2
        for sys in "${systems[@]}"; do
            # shellcheck disable=SC2086
            fio_one "$sys" $w
        done
    done
    for sys in "${systems[@]}"; do
        "teardown_$sys"
    done
    rgw_gc
}
