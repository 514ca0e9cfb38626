#!/usr/bin/env bash
# test-cache-faults.sh - failures of the cache device, injected by faultfs
# (tests/faultfs/faultfs.c, a FUSE passthrough) under the cache directory;
# the object store is a dir:// outside it.
#
#   eio-write   EIO on journal writes, under qemu-storage-daemon + NBD:
#               writes after the fault fail (and keep failing), reads
#               work; reopened without the fault, everything flushed
#               before is there.  Then at the library level: lsvd-crash
#               run, the fault at a random moment, verify --mode a.
#   eio-fsync   EIO on the journal's fdatasync: a flush is reported as an
#               error, never as success; verify --mode a afterwards.
#   powercut    a writer (lsvd-crash run) while faultfs cuts the power at
#               a seeded moment (a torn write, every later write dropped,
#               every later fsync blocked; in every other run also half
#               the journal sectors written since the last fdatasync put
#               back), kill -9, reopen on the backing directory:
#               verify --mode a, POWERCUTS times (default 20).
#   enospc      no room for the journal: the open fails with one line and
#               leaves nothing that breaks a later open; ENOSPC and EIO on
#               the read cache never fail a read; ENOSPC on the stats file
#               does not hurt I/O.
#
# Skips (77) without /dev/fuse, fusermount3 or the programs it needs
# (ninja -C build/core tests/faultfs/faultfs tests/crash/lsvd-crash).
# Environment: POWERCUTS (default 20), SEED (default 1), SECTIONS (default
# "a b c d": eio-write eio-fsync powercut enospc).
. "$(dirname "$0")/common.sh"

FAULTFS=${FAULTFS:-$top/build/core/tests/faultfs/faultfs}
CRASH="$top/build/core/tests/crash/lsvd-crash"
POWERCUTS=${POWERCUTS:-20}
SEED=${SEED:-1}
SECTIONS=${SECTIONS:-a b c d}

for b in "$FAULTFS" "$CRASH" "$QSD"; do
    [ -x "$b" ] || { echo "missing $b: build it first"; exit 77; }
done
[ -c /dev/fuse ] || { echo "no /dev/fuse"; exit 77; }
command -v fusermount3 >/dev/null || { echo "no fusermount3"; exit 77; }

# The cache directory of $LSVD_CONF ($T/cache) is the faultfs mount of
# $T/cback; BACK_CONF uses $T/cback directly (the state after a crash).
back="$T/cback"
mnt="$T/cache"
mkdir -p "$back" "$mnt"
BACK_CONF="$T/lsvd-back.conf"
sed "s|^dir = .*|dir = $back|" "$LSVD_CONF" > "$BACK_CONF"
cleanup_cmds+=("fusermount3 -u -z '$mnt' 2>/dev/null")

# A child that has been reaped leaves cleanup_pids: its PID may be reused.
forget_pid() {
    local p keep=()
    for p in "${cleanup_pids[@]+"${cleanup_pids[@]}"}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    cleanup_pids=("${keep[@]+"${keep[@]}"}")
}

# ---- faultfs ---------------------------------------------------------------

FF_PID=
ff_start() {
    "$FAULTFS" "$back" "$mnt" -f >>"$T/faultfs.log" 2>&1 &
    FF_PID=$!
    cleanup_pids+=("$FF_PID")
    wait_for 10 test -e "$mnt/.faultfs" ||
        { cat "$T/faultfs.log"; fail "faultfs did not mount"; }
}

# SIGTERM: libfuse unmounts, and fsyncs blocked by a power cut return.
ff_stop() {
    stop_child "$FF_PID" 10 || fail "faultfs ignored SIGTERM"
    forget_pid "$FF_PID"
    fusermount3 -u -z "$mnt" 2>/dev/null || true
    ! test -e "$mnt/.faultfs" || fail "faultfs still mounted"
}

ff() {
    printf '%s\n' "$*" > "$mnt/.faultfs" || fail "faultfs refused '$*'"
}

# ff_get injected KIND | ops KIND: one counter
ff_get() {
    awk -v a="$1" -v b="$2" '$1 == a && $2 == b { print $3 }' \
        "$mnt/.faultfs"
}

# ---- helpers -------------------------------------------------------------

QSD_PID=
qsd_start() {
    local vol=$1
    sock="$T/nbd.sock"
    url="nbd+unix:///vol?socket=$sock"
    rm -f "$sock"
    "$QSD" --blockdev driver=lsvd,volume="$vol",node-name=d0 \
        --nbd-server addr.type=unix,addr.path="$sock" \
        --export type=nbd,id=e0,node-name=d0,name=vol,writable=on \
        >>"$T/qsd.log" 2>&1 &
    QSD_PID=$!
    cleanup_pids+=("$QSD_PID")
    wait_for 20 test -S "$sock" || { cat "$T/qsd.log"; fail "no NBD socket"; }
}

qsd_stop() {
    stop_child "$QSD_PID" 30 || fail "qemu-storage-daemon ignored SIGTERM"
    forget_pid "$QSD_PID"
}

# io NAME ARGS...: run qemu-io, keep its output in $T/NAME.out
io() {
    local name=$1
    shift
    IO_RC=0
    "$QEMU_IO" -f raw "$@" > "$T/$name.out" 2>&1 || IO_RC=$?
    { grep -v 'ops/sec' "$T/$name.out" || true; } | sed "s/^/  $name: /"
    echo "  $name: exit $IO_RC"
}

# io_ok NAME ARGS...: qemu-io, and none of its commands failed (lsvd's
# own warnings, e.g. of a read cache that cannot be written, are not
# failures of a command)
io_ok() {
    io "$@"
    [ "$IO_RC" -eq 0 ] || fail "$1: qemu-io failed"
    ! grep -v 'warning: lsvd: ' "$T/$1.out" |
        grep -qiE 'fail|error|pattern verification' ||
        fail "$1: a command failed"
}

# The writer of the lsvd-crash checks, in the background: crash_start LOG
CRASH_PID=
crash_start() {
    "$CRASH" run --seed "$SEED" --log "$1" crash > "$1.out" 2>&1 &
    CRASH_PID=$!
    cleanup_pids+=("$CRASH_PID")
}

# kill -9 the writer; it finishes dying once nothing blocks it in faultfs
crash_kill() {
    kill -KILL "$CRASH_PID" 2>/dev/null || true
}

crash_reap() {
    wait "$CRASH_PID" 2>/dev/null || true
    forget_pid "$CRASH_PID"
}

# verify --mode a on the backing directory; the data must be right.  The
# verdict is VIOLATION whenever the run saw failed requests, so only the
# count of wrong sectors decides here.
crash_verify() {
    local log=$1 out
    out=$(LSVD_CONF=$BACK_CONF "$CRASH" verify --mode a --log "$log" crash \
          2>&1) || true
    echo "  $out" | tail -n 3
    printf '%s\n' "$out" | grep -qE ': 0 of [0-9]+ sectors wrong' ||
        fail "verify --mode a: $out"
}

fresh_crash_volume() {
    rm -rf "$T/store" "${back:?}"/*
    "$LSVD" create crash 64M >/dev/null
}

# A fresh volume written by the lsvd-crash writer into LOG, with faultfs
# rule RULE on from 0.7 s into the run, killed 0.5 s later, the rule
# cleared: crash_under_fault LOG RULE
crash_under_fault() {
    fresh_crash_volume
    crash_start "$1"
    sleep 0.7
    ff "$2"
    sleep 0.5
    crash_kill
    ff "clear"
    crash_reap
}

# Requests (writes and flushes) that completed with 0 although they were
# submitted after the first one that failed: with a fault that never
# clears, there must be none.  count_ok_after_failure LOG KIND (C or FC)
count_ok_after_failure() {
    awk -v kind="$2" '
        $1 == "S" || $1 == "FS" { sub_line[$2] = NR }
        ($1 == "C" || $1 == "FC") && $3 != 0 && !first { first = NR }
        $1 == kind && $3 == 0 && first && sub_line[$2] > first { n++ }
        END { print n + 0 }' "$1"
}

# ---- a. EIO on journal writes ----------------------------------------------

test_eio_write() {
    echo "== eio-write (qemu-storage-daemon, NBD)"
    "$QEMU_IMG" create -f raw lsvd:va 64M >/dev/null
    qsd_start va
    io_ok a1 -c 'write -P 0x11 0 1M' -c 'write -P 0x12 1M 1M' -c flush "$url"
    ff "eio-write *.journal"
    io a2 -c 'write -P 0x22 2M 64k' "$url"
    grep -q 'write failed: Input/output error' "$T/a2.out" ||
        fail "a write after the fault did not fail"
    io a3 -c 'write -P 0x23 3M 64k' -c 'write -P 0x24 4M 4k' "$url"
    [ "$(grep -c 'write failed' "$T/a3.out")" -eq 2 ] ||
        fail "later writes were not all failed"
    io_ok a4 -c 'read -P 0x11 0 1M' -c 'read -P 0x12 1M 1M' "$url"
    n=$(ff_get injected eio-write)
    echo "  injected eio-write: $n"
    [ "$n" -ge 1 ] || fail "no fault was injected"
    qsd_stop
    ff "clear"
    io_ok a5 -c 'read -P 0x11 0 1M' -c 'read -P 0x12 1M 1M' lsvd:va
    # what a failed write left is the old data or its own, never garbage
    for spec in '0x22 2M 64k' '0x23 3M 64k' '0x24 4M 4k'; do
        set -- $spec
        io a6 -c "read -P 0 $2 $3" lsvd:va
        if grep -q 'verification failed' "$T/a6.out"; then
            io_ok a6b -c "read -P $1 $2 $3" lsvd:va
        fi
    done
    io_ok a7 -c 'write -P 0x33 2M 64k' -c flush lsvd:va
    io_ok a8 -c 'read -P 0x33 2M 64k' -c 'read -P 0x11 0 1M' lsvd:va

    echo "== eio-write (lsvd-crash run, verify --mode a)"
    crash_under_fault "$T/log-a" "eio-write *.journal"
    n=$(grep -c '^C [0-9]* -' "$T/log-a" || true)
    echo "  failed requests: $n"
    [ "$n" -ge 1 ] || fail "the writer saw no failed request"
    n=$(count_ok_after_failure "$T/log-a" C)
    [ "$n" -eq 0 ] || fail "$n writes acknowledged after the journal failed"
    # nor flushes: a failed journal write may have left pages the kernel
    # dropped (lsvd-core before the volume.c fix of this branch said 0)
    n=$(count_ok_after_failure "$T/log-a" FC)
    [ "$n" -eq 0 ] || fail "$n flushes succeeded after the journal failed"
    crash_verify "$T/log-a"
}

# ---- b. EIO on fdatasync ---------------------------------------------------

test_eio_fsync() {
    echo "== eio-fsync (qemu-storage-daemon, NBD)"
    "$QEMU_IMG" create -f raw lsvd:vb 64M >/dev/null
    qsd_start vb
    io_ok b1 -c 'write -P 0x41 0 1M' -c flush "$url"
    ff "eio-fsync *.journal"
    # (qemu-io prints nothing when a flush fails: its exit status says it)
    io b2 -c 'write -P 0x42 1M 64k' "$url"
    grep -q 'wrote 65536/65536' "$T/b2.out" ||
        fail "the write before the flush failed"
    io b3 -c flush "$url"
    [ "$IO_RC" -ne 0 ] ||
        fail "a flush whose fdatasync failed was not reported as an error"
    io b4 -c flush "$url"
    [ "$IO_RC" -ne 0 ] || fail "a second flush succeeded"
    n=$(ff_get injected eio-fsync)
    echo "  injected eio-fsync: $n"
    [ "$n" -ge 1 ] || fail "no fault was injected"
    qsd_stop
    ff "clear"
    io_ok b5 -c 'read -P 0x41 0 1M' lsvd:vb

    echo "== eio-fsync (lsvd-crash run, verify --mode a)"
    crash_under_fault "$T/log-b" "eio-fsync *.journal"
    n=$(grep -c '^FC [0-9]* -' "$T/log-b" || true)
    echo "  failed flushes: $n"
    [ "$n" -ge 1 ] || fail "no flush was reported as failed"
    n=$(count_ok_after_failure "$T/log-b" FC)
    [ "$n" -eq 0 ] || fail "$n flushes succeeded after an fdatasync failed"
    crash_verify "$T/log-b"

    # One fdatasync fails and the kernel drops the journal's unsynced data
    # (track, lose=100); the later fdatasyncs succeed.  lsvd-core used to
    # report the later flushes as done, and verify found acknowledged,
    # flushed writes missing; every flush after the failure must fail.
    local i lost
    for i in 1 2 3; do
        echo "== eio-fsync once, unsynced data dropped ($i/3)"
        fresh_crash_volume
        ff "track *.journal"
        "$CRASH" run --seed $((SEED + 100 + i)) --log "$T/log-b$i" crash \
            > "$T/log-b$i.out" 2>&1 &
        CRASH_PID=$!
        cleanup_pids+=("$CRASH_PID")
        sleep 0.$((3 + 2 * i))
        lost=$(awk '$1 == "powercut" { print }' "$mnt/.faultfs" |
               sed 's/.* lost=\([0-9]*\).*/\1/')
        ff "eio-fsync *.journal count=1 lose=100"
        sleep 0.5
        crash_kill
        crash_reap
        n=$(awk '$1 == "powercut" { print }' "$mnt/.faultfs" |
            sed 's/.* lost=\([0-9]*\).*/\1/')
        ff "clear"
        echo "  sectors dropped: $((n - lost)); flushes done after the" \
             "failed one: $(count_ok_after_failure "$T/log-b$i" FC)"
        [ "$(count_ok_after_failure "$T/log-b$i" FC)" -eq 0 ] ||
            fail "flushes succeeded after a failed fdatasync"
        [ "$((n - lost))" -gt 0 ] || [ "$(grep -c '^FC [0-9]* -' \
            "$T/log-b$i")" -eq 0 ] || fail "a failed fdatasync dropped nothing"
        crash_verify "$T/log-b$i"
    done
}

# ---- c. power cut with a torn write ----------------------------------------

# One power cut at a seeded moment of a writer: powercut_one I LOSE; sets
# PC_TORN (1 if a write was torn), PC_LOST (journal sectors written since
# the last fdatasync and put back: with LOSE > 0, each with that
# probability in percent) and PC_OK (1 if verify --mode a held).
powercut_one() {
    local i=$1 lose=$2 log="$T/log-c$1" st out
    fresh_crash_volume
    ff_start
    [ "$lose" -eq 0 ] || ff "track *.journal"
    rm -f "$log"
    "$CRASH" run --seed $((SEED + i)) --log "$log" crash > "$log.out" 2>&1 &
    CRASH_PID=$!
    cleanup_pids+=("$CRASH_PID")
    # a seeded moment, 150..1350 ms in
    sleep "$(awk -v s=$((SEED * 7919 + i)) \
             'BEGIN { srand(s); printf "%.3f", 0.15 + rand() * 1.2 }')"
    ff "powercut seed=$((SEED + i)) lose=$lose"
    sleep 0.3
    st=$(awk '$1 == "powercut"' "$mnt/.faultfs")
    crash_kill
    ff_stop
    crash_reap
    echo "  $i: $st"
    PC_TORN=0
    case $st in *torn=1*) PC_TORN=1 ;; esac
    PC_LOST=$(printf '%s\n' "$st" | sed -n 's/.* lost=\([0-9]*\).*/\1/p')
    out=$(LSVD_CONF=$BACK_CONF "$CRASH" verify --mode a --log "$log" crash \
          2>&1) || true
    echo "  $i: $(printf '%s\n' "$out" | tail -n 1)"
    PC_OK=0
    if printf '%s\n' "$out" | grep -qE '^verify\(a\): ok: 0 of'; then
        PC_OK=1
    else
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
}

# Odd runs: a torn write, everything written before the cut kept.  Even
# runs: also each journal sector not yet fdatasynced put back with
# probability 1/2 (a volatile device cache that persists out of order).
test_powercut() {
    local torn=0 violations=0 lossy=0 lost=0
    echo "== powercut x $POWERCUTS"
    ff_stop
    for i in $(seq 1 "$POWERCUTS"); do
        powercut_one "$i" $(( i % 2 ? 0 : 50 ))
        torn=$((torn + PC_TORN))
        violations=$((violations + 1 - PC_OK))
        [ "${PC_LOST:-0}" -eq 0 ] || lossy=$((lossy + 1))
        lost=$((lost + ${PC_LOST:-0}))
    done
    echo "powercut: $POWERCUTS runs, $torn with a torn write, $lossy with" \
         "unsynced sectors lost ($lost sectors), $violations violations"
    [ "$torn" -ge $((POWERCUTS / 2)) ] || fail "too few power cuts tore a write"
    [ "$POWERCUTS" -lt 4 ] || [ "$lossy" -ge 1 ] ||
        fail "no power cut lost an unsynced sector"
    [ "$violations" -eq 0 ] || fail "$violations power cuts broke guarantee (a)"
    ff_start
}

# ---- d. ENOSPC -------------------------------------------------------------

test_enospc() {
    echo "== enospc: journal"
    fresh_crash_volume
    "$QEMU_IMG" create -f raw lsvd:vd 64M >/dev/null
    ff "enospc *.journal quota=1M"
    # the library of this tree: the open fails, one line
    expect_error 'cannot initialise journal .*No space left on device' \
        timeout 20 "$CRASH" run --seed 1 --log "$T/log-d" crash
    # through QEMU: the same, as QEMU's open error
    io d0 -c 'write -P 0x51 0 4M' lsvd:vd
    if [ "$IO_RC" -eq 0 ] || ! grep -q 'No space left' "$T/d0.out"; then
        cat "$T/d0.out"
        fail "QEMU opened a volume whose journal could not be allocated"
    fi
    ff "clear"
    io_ok d1 -c 'write -P 0x52 0 1M' -c flush lsvd:vd
    io_ok d2 -c 'read -P 0x52 0 1M' lsvd:vd
    rm -f "$T/log-d"
    timeout 1 "$CRASH" run --seed 1 --log "$T/log-d" crash >/dev/null 2>&1 ||
        [ $? -eq 124 ] || fail "the volume did not open after the fault"
    crash_verify "$T/log-d"

    echo "== enospc and eio-read: read cache"
    # in objects only: closed cleanly, journal and its map deleted, so
    # that reads miss and fill the read cache (ENOSPC), then hit it (EIO)
    io_ok d3 -c 'write -P 0x53 0 8M' -c flush lsvd:vd
    rm -f "$back/vd.journal" "$back/vd.jmap"
    ff "enospc *.rcache"
    io_ok d4 -c 'read -P 0x53 0 8M' lsvd:vd
    ff "clear"
    io_ok d5 -c 'read -P 0x53 0 8M' lsvd:vd
    ff "eio-read *.rcache"
    io_ok d6 -c 'read -P 0x53 0 8M' -c 'read -P 0x53 0 8M' lsvd:vd
    echo "  injected enospc $(ff_get injected enospc)," \
         "eio-read $(ff_get injected eio-read)"
    [ "$(ff_get injected enospc)" -ge 2 ] || fail "no ENOSPC on the read cache"
    [ "$(ff_get injected eio-read)" -ge 1 ] || fail "no EIO on the read cache"
    ff "clear"

    echo "== enospc: stats file"
    local before
    before=$(ff_get injected enospc)
    ff "enospc *.stats*"
    io_ok d7 -c 'write -P 0x54 8M 1M' -c flush -c 'read -P 0x54 8M 1M' \
        -c 'sleep 6000' -c 'read -P 0x53 0 8M' lsvd:vd
    io_ok d8 -c 'read -P 0x54 8M 1M' -c 'read -P 0x53 0 8M' lsvd:vd
    [ "$(ff_get injected enospc)" -gt "$before" ] ||
        fail "the stats file was never written"
    ff "clear"
}

ff_start
for s in $SECTIONS; do
    case $s in
        a) test_eio_write ;;
        b) test_eio_fsync ;;
        c) test_powercut ;;
        d) test_enospc ;;
        *) fail "unknown section '$s'" ;;
    esac
done
ff_stop
echo "test-cache-faults: ok"
