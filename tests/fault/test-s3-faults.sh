#!/usr/bin/env bash
# lsvd on an S3 store that fails: errors, resets, stalls, latency and
# outages injected by tests/fault/s3proxy.py between lsvd and Ceph RGW.
#
#   tests/fault/test-s3-faults.sh [CONF] [CASE...]
#
# CONF is an s3:// config as scripts/rgw.sh writes (default
# $LSVD_TEST_S3_CONF); with neither, an RGW of its own is started in
# build/rgw-fault-test and stopped at the end.  CASEs (default all, in this
# order): proxy speed random outage qemu deadline close.  Everything goes
# under a prefix of its own (URL/fault-RANDOM) and is deleted at the end.
#
#   proxy     the proxy's own tests against a fake upstream (test-s3proxy.py)
#   speed     4 MiB PUTs and GETs with curl, direct and through the proxy
#   random    lsvd-crash writes with 500/503/resets/stalls/latency on PUT
#             and GET (and LIST/HEAD at open), killed -9; verified with the
#             cache kept (mode a, which also closes cleanly), then with the
#             cache deleted (mode a again: all that was flushed is in the
#             objects), and on a second volume killed and verified with the
#             cache deleted at once (mode b: a prefix); retries counted
#   outage    lsvd-crash writes through a 15 s outage with a 64 MiB
#             journal: no request fails, writes complete until the journal
#             is full and then wait, resume after; verified as above; and
#             a writer killed -9 in the middle of an outage, verified after
#             it with the cache kept (replay), then deleted
#   qemu      the same through qemu-storage-daemon (NBD, qemu-io clients):
#             no write or flush fails, reads of journal and read-cache data
#             keep working during the outage, the journal drains after it,
#             and the data is all there with the cache deleted
#   deadline  retry_time = 3: a read that needs a GET fails with EIO after
#             about 3 s of outage (refused, 503, or stalled: between 2.8 and
#             6 s: the last attempt starts at the deadline and may run for
#             `timeout`), and succeeds when the outage is shorter (2 s)
#   close     qemu-storage-daemon stopped during an outage (retry_time = 3):
#             it exits within 60 s, the data stays in the journal, and a
#             reopen after the outage puts it in objects
#
# Exit 0: all passed; 1: a check failed; 77: no QEMU or lsvd-crash built.
. "$(dirname "$0")/../qemu/common.sh"

PROXY="$top/tests/fault/s3proxy.py"
IOLOG="$top/tests/fault/iolog.py"
CRASH="$top/build/core/tests/crash/lsvd-crash"
PY=/usr/bin/python3
[ -x "$CRASH" ] || { echo "missing $CRASH: ninja -C build/core tests/crash/lsvd-crash"; exit 77; }

base_conf=${1:-${LSVD_TEST_S3_CONF:-}}
[ $# -gt 0 ] && shift
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(proxy speed random outage qemu deadline close)
own_rgw=
if [ -z "$base_conf" ]; then
    own_rgw=$top/build/rgw-fault-test
    bash "$top/scripts/rgw.sh" start "$own_rgw" >"$T/rgw-start.log" 2>&1 ||
        { cat "$T/rgw-start.log"; fail "rgw.sh start failed"; }
    base_conf=$own_rgw/lsvd.conf
fi
[ -r "$base_conf" ] || fail "cannot read $base_conf"

key() { # [backend] key of the base config
    sed -n "/^\[backend\]/,/^\[/s/^$1 *= *//p" "$base_conf" | head -n1
}
url=$(key url)/fault-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
endpoint=$(key endpoint)
region=$(key region)
ak=$(key access_key_id)
sk=$(key secret_access_key)
[ -n "$endpoint" ] && [ -n "$ak" ] && [ -n "$sk" ] ||
    fail "$base_conf lacks endpoint or keys"

now() { date +%s.%N; }
# seconds since $1, to 0.01
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# awk test: cond EXPR (variables as name=value words after --)
cond() { awk "BEGIN { exit !($1) }"; }

# ---- the proxy
ctl() { "$PY" "$PROXY" ctl "$T/proxy.ctl" "$@"; }
"$PY" "$PROXY" serve --upstream "$endpoint" --control "$T/proxy.ctl" \
    --seed 42 --ready "$T/proxy.port" >"$T/proxy.log" 2>&1 &
proxy_pid=$!
cleanup_pids+=("$proxy_pid")
wait_for 10 test -s "$T/proxy.port" || { cat "$T/proxy.log"; fail "proxy did not start"; }
proxy=http://127.0.0.1:$(cat "$T/proxy.port")
echo "store: $url at $endpoint, through the proxy at $proxy"
# counter KEY of `ctl stats` (0 if absent)
pstat() { ctl stats | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'; }
# sum of the counters whose names match a regex
psum() { ctl stats | awk -v re="$1" '$1 ~ re { s += $2 } END { print s + 0 }'; }

# mkconf NAME [BACKEND-LINE...]: $T/NAME.conf through the proxy, and
# $T/NAME.direct.conf straight to the store (for cleanup)
volumes=()
mkconf() {
    local name=$1 ep
    shift
    for ep in "$proxy" "$endpoint"; do
        {
            echo "[backend]"
            echo "url = $url"
            echo "endpoint = $ep"
            echo "region = $region"
            echo "access_key_id = $ak"
            echo "secret_access_key = $sk"
            echo "connect_timeout = 2"
            echo "timeout = 2"
            for l in "$@"; do echo "$l"; done
            echo "[cache]"
            echo "dir = $T/cache-$name"
            echo "size = 64M"
            echo "read_size = 64M"
            echo "[log]"
            echo "batch_size = 1M"
        } >"$T/$name.$([ "$ep" = "$proxy" ] && echo conf || echo direct.conf)"
    done
    volumes+=("$name")
}
cleanup_fault() {
    local v
    [ -S "$T/proxy.ctl" ] && ctl clear >/dev/null 2>&1
    for v in ${volumes[@]+"${volumes[@]}"}; do
        LSVD_CONF=$T/$v.direct.conf "$LSVD" rm "$v" >/dev/null 2>&1 || true
    done
    cleanup
    if [ -n "$own_rgw" ]; then
        bash "$top/scripts/rgw.sh" stop "$own_rgw" >/dev/null 2>&1 || true
    fi
}
trap cleanup_fault EXIT
# killed (a check's timeout, ^C): still stop what we started and delete
# what we stored
trap 'exit 143' TERM
trap 'exit 130' INT

# stat NAME KEY: a counter from the volume's stats file
vstat() {
    LSVD_CONF=$T/$1.conf "$LSVD" stats "$1" | awk -v k="$2" '$1 == k { print $2 }'
}

# lsvd-crash run on volume NAME for SECONDS, then kill -9.  The log is
# $T/NAME.log, timestamped in $T/NAME.tlog.  In the background; sets
# run_pid and watch_pid.
crash_run() {
    local name=$1 seed=$2
    "$PY" "$IOLOG" watch "$T/$name.log" "$T/$name.tlog" &
    watch_pid=$!
    cleanup_pids+=("$watch_pid")
    LSVD_CONF=$T/$name.conf "$CRASH" run --seed "$seed" --log "$T/$name.log" \
        "$name" 2>"$T/$name.run.err" &
    run_pid=$!
    cleanup_pids+=("$run_pid")
}
crash_kill() {
    kill -KILL "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
    sleep 0.1                           # the watcher's last poll
    stop_child "$watch_pid" 5 || true
}
# verify NAME MODE [STEP]: must pass
crash_verify() {
    local name=$1 mode=$2 what=$3 rc=0 t0
    t0=$(now)
    LSVD_CONF=$T/$name.conf "$CRASH" verify --mode "$mode" \
        --log "$T/$name.log" "$name" >"$T/$name.verify" 2>&1 || rc=$?
    echo "  verify --mode $mode ($what): $(tail -n 1 "$T/$name.verify") [$(since "$t0") s]"
    [ "$rc" -eq 0 ] || { cat "$T/$name.verify"; fail "$name: verify --mode $mode ($what) exit $rc"; }
}
# requests the writer saw fail (C/FC lines with ret != 0)
crash_errors() {
    awk '($1 == "C" || $1 == "FC") && $3 != 0 { n++ } END { print n + 0 }' "$T/$1.log"
}

# ---- proxy: its own tests (no S3)
case_proxy() {
    echo "== proxy: test-s3proxy.py against a fake upstream"
    "$PY" "$top/tests/fault/test-s3proxy.py" >"$T/proxy-test.log" 2>&1 ||
        { cat "$T/proxy-test.log"; fail "test-s3proxy.py"; }
    echo "  $(grep -c '^ok' "$T/proxy-test.log") checks passed"
}

# ---- speed: the proxy must not be the bottleneck.  4 MiB objects: RGW
# keeps larger ones in tail objects that, once deleted or overwritten, stay
# in the (memstore) OSD until its garbage collector runs, hours later.
case_speed() {
    local f=$T/big obj=${url#s3://}/speed-obj op ep i s t0 who
    echo "== speed: 16 PUTs and 16 GETs of 4 MiB, direct and through the proxy"
    head -c 4M /dev/urandom >"$f"
    curl_s3() {
        curl -sS -o "$T/curl.out" -w '%{http_code}' \
            --aws-sigv4 "aws:amz:$region:s3" --user "$ak:$sk" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
    }
    for op in PUT GET; do
        for ep in "$endpoint" "$proxy"; do
            t0=$(now)
            for ((i = 0; i < 16; i++)); do
                if [ $op = PUT ]; then s=$(curl_s3 -T "$f" "$ep/$obj")
                else s=$(curl_s3 "$ep/$obj"); fi
                [ "$s" = 200 ] || fail "curl $op $ep: $s"
                [ $op = PUT ] || cmp -s "$f" "$T/curl.out" || fail "GET $ep: wrong data"
            done
            t=$(since "$t0")
            who=$([ "$ep" = "$proxy" ] && echo proxy || echo direct)
            echo "  $op $who: 64 MiB in $t s ($(awk -v t="$t" 'BEGIN { printf "%.0f", 64 / t }') MiB/s)"
            eval "t_${op}_$who=$t"
        done
    done
    curl_s3 -X DELETE "$endpoint/$obj" >/dev/null
    rm -f "$f" "$T/curl.out"
    # generous: the proxy shares 2 CPUs with RGW, the OSD and curl
    cond "$t_PUT_proxy < 2 * $t_PUT_direct + 0.3" || fail "PUT through the proxy over 2x slower"
    cond "$t_GET_proxy < 2 * $t_GET_direct + 0.3" || fail "GET through the proxy over 2x slower"
}

# ---- random faults
fault_rules() {
    ctl clear >/dev/null
    local r
    for r in "put 503 p=0.06" "put 500 p=0.03" "put reset p=0.03" \
             "put reset-mid p=0.03" "put stall p=0.01" \
             "get 503 p=0.06" "get 500 p=0.03" "get reset p=0.03" \
             "get reset-mid p=0.03" "get stall p=0.005" \
             "list 503 p=0.2" "head 503 p=0.2" "any delay=20 p=0.2" \
             "put delay=200"; do
        ctl fault $r >/dev/null
    done
}
case_random() {
    local inj0 inj_put inj_get retries v
    echo "== random: faults on PUT/GET/LIST/HEAD, lsvd-crash killed -9, verified"
    fault_rules
    inj0=$(psum '^inj_')
    for v in ra rb; do
        mkconf $v
        LSVD_CONF=$T/$v.direct.conf "$LSVD" create $v 64M
    done
    # ra: killed, verified with the cache kept, then without it
    crash_run ra 1001
    sleep 10
    crash_kill
    retries=$(vstat ra be_retries)
    echo "  ra: $(grep -c '^C ' "$T/ra.log") completions, $(crash_errors ra) failed; lsvd retries $retries, PUTs $(vstat ra be_put)"
    [ "$(crash_errors ra)" -eq 0 ] || { head "$T/ra.run.err"; fail "ra: requests failed"; }
    [ "${retries:-0}" -gt 0 ] || fail "ra: lsvd counted no retries"
    crash_verify ra a "cache kept"
    rm -rf "$T/cache-ra"
    crash_verify ra a "cache deleted after the clean close"
    echo "  ra: lsvd retries in the last verify $(vstat ra be_retries), GETs $(vstat ra be_get)"
    # rb: killed, cache deleted: a prefix
    crash_run rb 2002
    sleep 8
    crash_kill
    [ "$(crash_errors rb)" -eq 0 ] || { head "$T/rb.run.err"; fail "rb: requests failed"; }
    rm -rf "$T/cache-rb"
    crash_verify rb b "cache deleted after kill -9"
    inj_put=$(psum '^inj_.*_put$')
    inj_get=$(psum '^inj_.*_get$')
    echo "  proxy injected: $(ctl stats | awk '/^inj_/ { printf "%s=%s ", $1, $2 }')"
    [ "$inj_put" -gt 0 ] && [ "$inj_get" -gt 0 ] || fail "no faults injected on PUT or GET"
    ctl clear >/dev/null
    for v in ra rb; do
        LSVD_CONF=$T/$v.direct.conf "$LSVD" rm $v
    done
}

# ---- outage at the library level
case_outage() {
    local t0 t1 t2 fwd0 out
    echo "== outage: 15 s (refused) under lsvd-crash, 64 MiB journal"
    ctl clear >/dev/null
    mkconf ob
    LSVD_CONF=$T/ob.direct.conf "$LSVD" create ob 64M
    ctl fault put delay=100 >/dev/null     # bounds the data stored
    crash_run ob 3003
    # the outage starts as soon as writes complete, while the journal has
    # room: the writer outruns the (delayed) PUTs, so a few seconds later
    # the journal would already be full and wait for PUTs, outage or not
    local i=0
    until grep -q '^C ' "$T/ob.log" 2>/dev/null; do
        [ $i -lt 100 ] || fail "ob: no write completed in 10 s"
        sleep 0.1
        i=$((i + 1))
    done
    t0=$(now)
    ctl outage 15 >/dev/null
    sleep 15
    t1=$(now)
    fwd0=$(pstat fwd_put)
    # writes resume once a PUT retry gets through, which may be up to a
    # backoff (10 s) plus a timeout (2 s) after the outage ends
    wait_for 20 awk -v t1="$t1" '$1 >= t1 && ($2 == "C" || $2 == "FC") { f = 1; exit } END { exit !f }' "$T/ob.tlog" ||
        echo "  no completion in the 20 s after the outage"
    sleep 2
    t2=$(now)
    crash_kill
    out=$("$PY" "$IOLOG" report "$T/ob.tlog" "$t0" "$t1")
    local done errors in_window in_window_flushes after_window max_lat max_lat_at max_pending
    eval "$out"
    echo "  $done completions, $errors failed; $in_window during the outage ($in_window_flushes flushes), $after_window in the $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }') s after"
    echo "  longest wait $max_lat s (ended $max_lat_at s into the outage); PUTs after it $(( $(pstat fwd_put) - fwd0 ))"
    [ "$errors" -eq 0 ] && [ "$(crash_errors ob)" -eq 0 ] || { head "$T/ob.run.err"; fail "ob: requests failed during the outage"; }
    [ "$in_window" -gt 0 ] || fail "ob: no write completed into the journal during the outage"
    # the journal filled: something waited for most of the outage
    cond "$max_lat > 8" || fail "ob: longest wait $max_lat s (one still waiting: $max_pending s): the journal never filled?"
    # after the outage: a backend retry may come up to 10 s late (backoff)
    cond "$max_lat < 15 + 15" || fail "ob: a request waited $max_lat s"
    cond "$max_lat_at > 12" || fail "ob: the longest wait ended $max_lat_at s into a 15 s outage"
    [ "$after_window" -gt 0 ] || fail "ob: no write completed after the outage"
    [ "$(( $(pstat fwd_put) - fwd0 ))" -gt 0 ] || fail "ob: no PUT after the outage"
    crash_verify ob a "cache kept"
    rm -rf "$T/cache-ob"
    crash_verify ob a "cache deleted after the clean close"
    LSVD_CONF=$T/ob.direct.conf "$LSVD" rm ob

    # killed in the middle of an outage, the journal full: replay after it
    echo "  -- killed -9 8 s into an outage, reopened after it"
    mkconf oc
    LSVD_CONF=$T/oc.direct.conf "$LSVD" create oc 64M
    crash_run oc 3004
    sleep 3
    ctl outage 60 >/dev/null
    sleep 8
    crash_kill
    ctl clear >/dev/null
    [ "$(crash_errors oc)" -eq 0 ] || { head "$T/oc.run.err"; fail "oc: requests failed during the outage"; }
    crash_verify oc a "cache kept: journal replay"
    rm -rf "$T/cache-oc"
    crash_verify oc a "cache deleted after the clean close"
    LSVD_CONF=$T/oc.direct.conf "$LSVD" rm oc
    ctl clear >/dev/null
}

# ---- the same through qemu-storage-daemon
qsd_start() { # NAME
    "$QSD" --blockdev "driver=lsvd,volume=$1,conf=$T/$1.conf,node-name=d0" \
        --nbd-server "addr.type=unix,addr.path=$T/$1.sock" \
        --export "type=nbd,id=e0,node-name=d0,name=$1,writable=on" \
        >"$T/$1.qsd.log" 2>&1 &
    qsd_pid=$!
    cleanup_pids+=("$qsd_pid")
    wait_for 20 test -S "$T/$1.sock" || { cat "$T/$1.qsd.log"; fail "qsd did not start"; }
}
# nbdio [-r] NAME CMD...: qemu-io over the NBD export; output in $T/io.out,
# fails on any error message.  -r: read-only, so that closing it sends no
# flush (a flush waits behind writes that wait for journal space)
nbdio() {
    local name ro=() rc=0
    [ "$1" != -r ] || { ro=(-r); shift; }
    name=$1
    shift
    "$QEMU_IO" ${ro[@]+"${ro[@]}"} -f raw "nbd+unix:///$name?socket=$T/$name.sock" "$@" >"$T/io.out" 2>&1 || rc=$?
    if [ $rc -ne 0 ] || grep -qiE 'fail|error' "$T/io.out"; then
        return 1
    fi
}
case_qemu() {
    local t0 i rc lat max_w=0 n_w=0 n_w_out=0 max_r=0 n_r=0 t c s n_fail
    echo "== qemu: 15 s outage (503) under qemu-storage-daemon (NBD, qemu-io)"
    ctl clear >/dev/null
    mkconf q
    "$QEMU_IMG" create -q -f raw "lsvd:q:conf=$T/q.conf" 256M
    # R: in the objects only (cache deleted), then read once: read cache
    "$QEMU_IO" -f raw -c 'write -P 0x5a 0 16M' "lsvd:q:conf=$T/q.conf" >/dev/null
    rm -rf "$T/cache-q"
    qsd_start q
    nbdio q -c 'read -P 0x5a 0 16M' || { cat "$T/io.out"; fail "q: first read"; }
    # A: in the journal
    nbdio q -c 'write -P 0x11 16M 8M' || { cat "$T/io.out"; fail "q: write A"; }
    local gets0 gets1
    gets0=$(pstat req_get)
    t0=$(now)
    # 503: requests still reach the proxy, which counts them
    ctl outage 15 503 >/dev/null
    # writer: 1 MiB writes (each a qemu-io process, so each also flushes)
    # past the journal's 64 MiB, 96 of them
    (
        for ((i = 0; i < 96; i++)); do
            s=$(now)
            rc=0
            nbdio q -c "write -P 0x22 $((32 + i))M 1M" || rc=1
            echo "$s $(now) $rc"
            [ $rc -eq 0 ] || cat "$T/io.out" >&2
        done
    ) >"$T/q.writes" 2>"$T/q.writes.err" &
    local writer=$!
    cleanup_pids+=("$writer")
    # reader, during the outage: read-cache data (R), and journal data:
    # the first 4 MiB written during the outage (not A: once A is in
    # objects, the ring may reclaim it for the writes that fill it)
    wait_for 5 eval '[ "$(wc -l <"$T/q.writes")" -ge 4 ]' || fail "q: 4 writes did not complete in 5 s of outage"
    while cond "$(since "$t0") < 12"; do
        for c in 'read -P 0x5a 0 16M' 'read -P 0x22 32M 4M'; do
            s=$(now)
            nbdio -r q -c "$c" || { cat "$T/io.out"; fail "q: '$c' failed during the outage"; }
            lat=$(since "$s")
            echo "$(since "$t0") $lat $c" >>"$T/q.reads"
            n_r=$((n_r + 1))
            cond "$lat > $max_r" && max_r=$lat
        done
        sleep 0.5
    done
    gets1=$(pstat req_get)
    wait_for 60 eval '! kill -0 $writer 2>/dev/null' || fail "q: writes still waiting 60 s after the outage started"
    wait "$writer" || true
    local t1
    t1=$(awk -v a="$t0" 'BEGIN { printf "%.3f", a + 15 }')
    read -r n_w n_w_out n_fail max_w < <(awk -v t1="$t1" '
        { n++; if ($2 < t1) o++; if ($3 != 0) f++; l = $2 - $1; if (l > m) m = l }
        END { printf "%d %d %d %.2f\n", n, o, f, m }' "$T/q.writes")
    echo "  reads during the outage: $n_r (journal and read cache), longest $max_r s; GETs during them $((gets1 - gets0))"
    echo "  writes: $n_w of 1 MiB, $n_w_out completed during the outage, $n_fail failed, longest $max_w s"
    [ "$n_fail" -eq 0 ] || { head "$T/q.writes.err"; fail "q: a write or flush failed during the outage"; }
    [ "$n_w" -eq 96 ] || fail "q: $n_w writes done, not 96"
    [ "$n_w_out" -gt 0 ] || fail "q: no write completed during the outage"
    cond "$max_w > 3" || fail "q: no write waited (longest $max_w s): the journal never filled?"
    cond "$max_r < 2" || { cat "$T/q.reads"; fail "q: a local read took $max_r s during the outage"; }
    [ $((gets1 - gets0)) -eq 0 ] || fail "q: reads during the outage went to the store"
    # drain: PUTs go on until everything is in objects.  Seen as: the
    # object count stops growing, and the clean close adds no object.  (Not
    # as journal_bytes = 0: that counter is computed at the end of a journal
    # round only, so with no writes after the outage it keeps the bytes not
    # yet in objects when the last write was journaled; see
    # docs/testing-s3.md.)
    local o1 o2 o_live o_closed jb
    t=$(now)
    o1=-1
    while :; do
        sleep 6                             # > the stats file's 5 s
        o2=$(vstat q objects)
        [ "$o2" != "$o1" ] || break
        o1=$o2
        cond "$(since "$t") < 90" || fail "q: objects still growing 90 s after the outage"
    done
    o_live=$o2
    jb=$(vstat q journal_bytes)
    stop_child "$qsd_pid" 30 || fail "q: qsd did not exit on SIGTERM"
    [ "$STOP_RC" = 0 ] || { cat "$T/q.qsd.log"; fail "q: qsd exit $STOP_RC"; }
    o_closed=$(vstat q objects)
    echo "  drained: $o_live objects $(since "$t") s after the writes (stats file: every 5 s); the close added $((o_closed - o_live)); journal_bytes then $jb, after the close $(vstat q journal_bytes)"
    [ "$o_closed" -eq "$o_live" ] || fail "q: the close wrote $((o_closed - o_live)) more objects: not drained"
    [ "$(vstat q journal_bytes)" = 0 ] || fail "q: journal_bytes $(vstat q journal_bytes) after the close"
    rm -rf "$T/cache-q"
    "$QEMU_IO" -f raw -c 'read -P 0x5a 0 16M' -c 'read -P 0x11 16M 8M' \
        -c 'read -P 0x22 32M 96M' -c 'read -P 0 128M 128M' \
        "lsvd:q:conf=$T/q.conf" >"$T/io.out" 2>&1
    ! grep -qiE 'fail|error' "$T/io.out" || { cat "$T/io.out"; fail "q: data after the outage, cache deleted"; }
    echo "  all 128 MiB read back with the cache deleted"
    LSVD_CONF=$T/q.direct.conf "$LSVD" rm q
}

# ---- deadline: retry_time bounds a read that needs the store
case_deadline() {
    local s lat mode
    echo "== deadline: retry_time = 3, reads from the store during outages"
    ctl clear >/dev/null
    mkconf dl "retry_time = 3"
    "$QEMU_IMG" create -q -f raw "lsvd:dl:conf=$T/dl.conf" 64M
    "$QEMU_IO" -f raw -c 'write -P 0x33 0 4M' -c 'write -P 0x44 4M 4M' \
        -c 'write -P 0x55 8M 4M' "lsvd:dl:conf=$T/dl.conf" >/dev/null
    rm -rf "$T/cache-dl"
    qsd_start dl
    local off=0
    for mode in refuse 503 stall; do
        ctl outage 8 $mode >/dev/null
        s=$(now)
        if nbdio dl -c "read -P 0x33 ${off}M 1M"; then
            fail "dl: read during an 8 s $mode outage succeeded after $(since "$s") s"
        fi
        lat=$(since "$s")
        echo "  $mode outage 8 s: read failed after $lat s: $(grep -iE 'fail|error' "$T/io.out" | head -n 1)"
        grep -q 'Input/output error' "$T/io.out" || { cat "$T/io.out"; fail "dl: not EIO"; }
        # The last attempt starts at the deadline (3 s) and may run for
        # up to `timeout` (2 s).
        cond "$lat >= 2.8 && $lat < 3 + 2 + 1" || fail "dl: EIO after $lat s, expected 2.8 to 6"
        ctl clear >/dev/null
        off=$((off + 1))
    done
    ctl outage 2 >/dev/null
    s=$(now)
    nbdio dl -c 'read -P 0x44 4M 4M' || { cat "$T/io.out"; fail "dl: read through a 2 s outage failed"; }
    lat=$(since "$s")
    echo "  refuse outage 2 s: read succeeded after $lat s"
    cond "$lat >= 1.8" || fail "dl: read through the outage took only $lat s"
    nbdio dl -c 'read -P 0x33 0 4M' -c 'read -P 0x55 8M 4M' || { cat "$T/io.out"; fail "dl: reads after the outages"; }
    stop_child "$qsd_pid" 30 || fail "dl: qsd did not exit on SIGTERM"
    LSVD_CONF=$T/dl.direct.conf "$LSVD" rm dl
}

# ---- close: a volume closed while the store is down
case_close() {
    local t lat
    echo "== close: qemu-storage-daemon stopped during an outage, retry_time = 3"
    ctl clear >/dev/null
    mkconf cl "retry_time = 3"
    "$QEMU_IMG" create -q -f raw "lsvd:cl:conf=$T/cl.conf" 128M
    qsd_start cl
    ctl outage 600 >/dev/null
    nbdio cl -c 'write -P 0x66 0 20M' -c 'write -P 0x67 100M 300K' ||
        { cat "$T/io.out"; fail "cl: writes during the outage"; }
    t=$(now)
    # objlog: once closing, a failing PUT is retried for 10 s more (each
    # attempt here up to retry_time = 3 s), then given up: the data stays
    # in the journal
    local hung=
    stop_child "$qsd_pid" 60 || hung=1
    lat=$(since "$t")
    if [ -n "$hung" ]; then
        echo "  qsd still closing $lat s after SIGTERM: killed -9"
    else
        echo "  qsd exited ($STOP_RC) $lat s after SIGTERM; $(grep -c 'giving up' "$T/cl.qsd.log" || true) PUTs given up"
    fi
    ctl clear >/dev/null
    # the data stayed in the journal: a reopen replays it into objects
    "$QEMU_IO" -f raw -c 'read -P 0x66 0 20M' -c 'read -P 0x67 100M 300K' \
        "lsvd:cl:conf=$T/cl.conf" >"$T/io.out" 2>&1
    ! grep -qiE 'fail|error' "$T/io.out" || { cat "$T/io.out"; fail "cl: reopened with the cache"; }
    rm -rf "$T/cache-cl"
    "$QEMU_IO" -f raw -c 'read -P 0x66 0 20M' -c 'read -P 0x67 100M 300K' \
        "lsvd:cl:conf=$T/cl.conf" >"$T/io.out" 2>&1
    ! grep -qiE 'fail|error' "$T/io.out" || { cat "$T/io.out"; fail "cl: cache deleted after the reopen"; }
    echo "  reopened after the outage: all there, then also with the cache deleted"
    LSVD_CONF=$T/cl.direct.conf "$LSVD" rm cl
    [ -z "$hung" ] || fail "cl: the close hung for the outage"
}

t_all=$(now)
for cs in "${cases[@]}"; do
    t_case=$(now)
    "case_$cs"
    echo "   ($cs: $(since "$t_case") s)"
done
echo "proxy: $(ctl stats | tr '\n' ' ')"
echo "PASS: ${cases[*]} in $(since "$t_all") s"
