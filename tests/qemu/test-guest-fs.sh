#!/usr/bin/env bash
# ext4 in a TCG guest survives kill -9 of QEMU and the loss of the cache
# (after the LSVD paper's Table 4): per round, on a new volume,
#   1. boot the guest of scripts/guest.sh with the volume as its virtio
#      disk, lsvdtest=ext4-copy: mkfs.ext4, mount, copy a ~16 MiB tree into
#      d1, d2, ... with syncs and deletes, until killed;
#   2. kill -9 QEMU at a seeded random moment, 3 to 13 s after the guest
#      printed "GUEST: copying 1"; objects of 1, 4 and 16 MiB in turn
#      (batch-size=), so that tens to hundreds of them reached the store
#      by then, and the journal holds more or less that they lack;
#   3. delete the cache directory: journal and read cache are gone, the
#      volume is what reached the object store, a prefix of the writes;
#   4. boot again, lsvdtest=ext4-check: mount (this replays ext4's journal:
#      e2fsck -n cannot, it opens the disk read-only and would only report
#      that the journal needs recovery), count the files, verify the copies
#      whose marker file survived against the tree's manifest, unmount, and
#      run e2fsck -fn.
# A round passes if the mount worked, there are files, no marked copy
# differs, the unmount worked and e2fsck exits 0 (clean).  Rounds
# alternate between the volume in QEMU's main loop and in an iothread, so
# six rounds make every pair of batch size and thread.
#
#   tests/qemu/test-guest-fs.sh [RUNS]   (default 3; make guest-fs RUNS=N)
#   GUEST_FS_SEED=N                      repeat the kill times of a run
#   LSVD_TEST_S3_CONF=FILE               an s3:// store (as scripts/rgw.sh
#                                        writes) instead of dir://, under a
#                                        prefix of its own
#   GUEST_FS_KEEP_CACHE=1                keep the cache instead (a crash of
#                                        QEMU alone): then the last copy
#                                        the guest saw synced must also be
#                                        complete (lsvd's flush is durable)
#   GUEST_FS_SABOTAGE=1                  a check of the test itself: after
#                                        the crash, zero 9-249 MiB of the
#                                        volume (file and directory data,
#                                        between the inode tables, which
#                                        end at 8.3 MiB, and ext4's journal
#                                        at 256 MiB); every round must fail
#
# Every console is kept in build/guest-fs/ (the last run's); the summary is
# "N runs, M failures".  Exits 1 if any round failed.
. "$(dirname "$0")/common.sh"

QEMU_SYSTEM="$qb/qemu-system-x86_64"
[ -x "$QEMU_SYSTEM" ] || { echo "missing $QEMU_SYSTEM: run 'make qemu' first"; exit 77; }
bash "$top/scripts/guest.sh" || { echo "scripts/guest.sh failed: no guest"; exit 77; }
guest="$top/build/guest"

# On S3: the [backend] of LSVD_TEST_S3_CONF, with common.sh's cache
if [ -n "${LSVD_TEST_S3_CONF:-}" ]; then
    [ -r "$LSVD_TEST_S3_CONF" ] || fail "cannot read $LSVD_TEST_S3_CONF"
    url=$(sed -n '/^\[backend\]/,/^\[/s/^url *= *//p' "$LSVD_TEST_S3_CONF")
    [[ $url == s3://* ]] || fail "$LSVD_TEST_S3_CONF has no s3:// url"
    {
        echo "[backend]"
        echo "url = $url/guestfs-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
        sed -n '/^\[backend\]/,/^\[/{/^\[/d; /^url *=/d; p}' "$LSVD_TEST_S3_CONF"
        sed -n '/^\[cache\]/,$p' "$LSVD_CONF"
    } > "$T/s3.conf"
    mv "$T/s3.conf" "$LSVD_CONF"
fi
store=$(sed -n 's/^url *= *//p' "$LSVD_CONF")

keep=${GUEST_FS_KEEP_CACHE:-}
runs=${1:-3}
[[ $runs =~ ^[1-9][0-9]*$ ]] || fail "RUNS must be a positive number, not '$runs'"
seed=${GUEST_FS_SEED:-$(( $(date +%s%N) % 1000000 ))}
RANDOM=$seed
echo "guest-fs: $runs runs on $store, seed $seed (GUEST_FS_SEED=$seed to repeat)"

logs="$top/build/guest-fs"
rm -rf "$logs"
mkdir -p "$logs"

# The QEMU command line of a guest on VOLUME: guest_cmd VOLUME MODE CONSOLE
# [IOTHREAD [BATCH [SYNCED]]]; sets GUEST_CMD.
GUEST_CMD=()
guest_cmd() {
    local vol=$1 mode=$2 con=$3 io=${4:-} batch=${5:-} synced=${6:-}
    GUEST_CMD=("$QEMU_SYSTEM" -accel tcg,thread=multi -M pc -nodefaults -m 256
        ${io:+-object iothread,id=$io}
        -blockdev driver=lsvd,node-name=d0,volume="$vol"${batch:+,batch-size=$batch}
        -device virtio-blk-pci,drive=d0${io:+,iothread=$io}
        -kernel "$guest/vmlinux" -initrd "$guest/initrd.img"
        -append "console=ttyS0 panic=-1 quiet lsvdtest=$mode${synced:+ lsvdsynced=$synced}"
        -bios qboot.rom -display none -serial file:"$con" -no-reboot)
}

# Is PID running (not gone, not a zombie)?
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null || true)
    [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# Wait up to SECONDS for LINE in the console while PID runs:
# wait_console PID CONSOLE LINE SECONDS
wait_console() {
    local pid=$1 con=$2 line=$3 i=0
    # (the serial console ends lines with \r\n)
    until tr -d '\r' 2>/dev/null <"$con" | grep -qx "$line"; do
        running "$pid" || return 1
        i=$((i + 1))
        [ $i -lt $(($4 * 10)) ] || return 1
        sleep 0.1
    done
}

# How many objects VOLUME has in the store (read-only: `lsvd info`).
objects() {
    "$LSVD" info "$1" | sed -n 's/^objects: *\([0-9]*\).*/\1/p'
}

# One round; prints why it failed and returns 1: round N
round() {
    local r=$1 vol="fs$1" io='' batch delay con1 con2 pid objs copied synced
    local what start files newest
    [ $((r % 2)) -eq 0 ] && io=io0
    # how much is lost with the cache: up to a batch and the PUTs in flight
    batch=$(( (r - 1) % 3 ))
    batch=$(( 1 << (batch * 2) ))M
    # 3.0 to 12.9 s after the first copy started
    delay=$((30 + RANDOM % 100))
    delay="$((delay / 10)).$((delay % 10))"
    con1="$logs/round$r-copy.log"
    con2="$logs/round$r-check.log"
    start=$(date +%s)
    "$LSVD" create "$vol" 512M >/dev/null || { echo "lsvd create $vol failed"; return 1; }

    guest_cmd "$vol" ext4-copy "$con1" "$io" "$batch"
    "${GUEST_CMD[@]}" >"$con1.qemu" 2>&1 &
    pid=$!
    cleanup_pids+=("$pid")
    if ! wait_console "$pid" "$con1" "GUEST: copying 1" 120; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        cat "$con1" "$con1.qemu"
        echo "the guest did not start copying"
        return 1
    fi
    sleep "$delay"
    running "$pid" || { cat "$con1" "$con1.qemu"; echo "QEMU died before the kill"; return 1; }
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    cleanup_pids=()
    sed -i 's/\r$//' "$con1"
    copied=$(sed -n 's/^GUEST: copied \([0-9]*\)$/\1/p' "$con1" | tail -n1)
    synced=$(sed -n 's/^GUEST: synced \([0-9]*\)$/\1/p' "$con1" | tail -n1)
    if grep -q "^GUEST: .*failed" "$con1"; then
        cat "$con1"
        echo "the guest's mkfs, mount or copy failed"
        return 1
    fi
    if [ "$keep" ]; then
        what="cache kept"
    else
        what="cache deleted"
        rm -rf "$T/cache"
    fi
    objs=$(objects "$vol")
    if [ -n "${GUEST_FS_SABOTAGE:-}" ]; then
        "$QEMU_IO" -f raw -c 'write -z 9M 240M' "lsvd:$vol" >/dev/null ||
            { echo "qemu-io could not sabotage $vol"; return 1; }
    fi

    # TCG: boot, mount, md5 of a few copies and e2fsck take ~10 s
    guest_cmd "$vol" ext4-check "$con2" "" "" "$synced"
    timeout 180 "${GUEST_CMD[@]}" >"$con2.qemu" 2>&1 ||
        { cat "$con2" "$con2.qemu"; echo "the check boot failed or took over 180 s"; return 1; }
    sed -i 's/\r$//' "$con2"
    files=$(sed -n 's/^GUEST: files \([0-9]*\)$/\1/p' "$con2")
    # the newest copy that survived (complete or not)
    newest=$(sed -n 's/^GUEST: in \/mnt://p' "$con2" | tr ' ' '\n' |
        sed -n 's/^d\([0-9]*\)$/\1/p' | sort -n | tail -n1)
    echo "round $r: killed ${delay} s into the copy (${copied:-0} copies done," \
        "${objs:-?} objects of $batch, ${io:-main loop}), $what;" \
        "$(grep -c '^GUEST: mounted$' "$con2") mount" \
        "($(grep -q '^GUEST: ext4 journal replayed$' "$con2" && echo "journal replayed" ||
            echo "no journal replay")), ${files:-no} files," \
        "newest copy d${newest:-none}, last synced" \
        "$(sed -n "s/^GUEST: synced copy \([0-9]* .*\)$/d\1/p" "$con2")," \
        "$(sed -n 's/^GUEST: verified //p' "$con2")," \
        "$(grep '^GUEST: fsck' "$con2" | cut -c8-); $(($(date +%s) - start)) s"
    grep -q "^GUEST: mounted$" "$con2" || { cat "$con2"; echo "mount failed"; return 1; }
    [ "${files:-0}" -gt 0 ] || { cat "$con2"; echo "no files after the crash"; return 1; }
    grep -q "^GUEST: verified [0-9]* copies, 0 bad$" "$con2" ||
        { cat "$con2"; echo "a marked copy differs"; return 1; }
    if [ "$keep" ] && [ -n "$synced" ] &&
       ! grep -q "^GUEST: synced copy $synced complete$" "$con2"; then
        cat "$con2"
        echo "copy $synced was synced (a flush was acknowledged) but is not complete"
        return 1
    fi
    grep -q "^GUEST: unmounted$" "$con2" || { cat "$con2"; echo "unmount failed"; return 1; }
    grep -q "^GUEST: fsck 0$" "$con2" || { cat "$con2"; echo "e2fsck -fn found errors"; return 1; }
    [ "${objs:-0}" -gt 0 ] || { echo "no object reached the store"; return 1; }
    # free the store; keep the consoles
    "$LSVD" rm "$vol" >/dev/null || { echo "lsvd rm $vol failed"; return 1; }
}

failures=0
total_start=$(date +%s)
for r in $(seq 1 "$runs"); do
    if ! round "$r"; then
        failures=$((failures + 1))
        echo "round $r: FAILED (seed $seed; consoles in $logs/round$r-*.log)"
    fi
done
echo "guest-fs: $runs runs, $failures failures, $(($(date +%s) - total_start)) s (seed $seed)"
[ "$failures" -eq 0 ] || fail "$failures of $runs rounds failed"
echo PASS
