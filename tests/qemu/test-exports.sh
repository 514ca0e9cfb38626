#!/usr/bin/env bash
# qemu-storage-daemon serving an lsvd volume over its three kinds of export:
#
#   nbd             on a unix socket: write and read back with qemu-io
#                   (nbd+unix://), SIGTERM the daemon, and the data is in the
#                   volume when qemu-io opens lsvd:VOL directly
#   fuse            the volume as a regular file: dd into it (conv=fsync),
#                   read back, and the data is in the volume after the daemon
#                   stops (which unmounts it)
#   vhost-user-blk  a TCG guest (scripts/guest.sh) with vhost-user-blk-pci
#                   reads the disk and prints its size and the md5 of its
#                   first 8 MiB, compared with what qemu-img reads; twice:
#                   with the volume in the daemon's main loop, then in an
#                   iothread, where the guest also writes 4 KiB that qemu-io
#                   then finds in the volume
#
# Every wait is bounded; the daemons are stopped by PID on every way out.
. "$(dirname "$0")/common.sh"

QEMU_SYSTEM="$qb/qemu-system-x86_64"
[ -x "$QSD" ] || { echo "missing $QSD: run 'make qemu' first"; exit 77; }

# Start qemu-storage-daemon with the volume as node d0 plus ARGS, in the
# background: qsd_start LOG ARGS...; sets QSD_PID.
QSD_PID=
qsd_start() {
    local log=$1
    shift
    "$QSD" --blockdev driver=lsvd,volume=v,node-name=d0 "$@" >"$log" 2>&1 &
    QSD_PID=$!
    cleanup_pids+=("$QSD_PID")
}

# Stop it with SIGTERM, as a service manager would; it must exit 0 (it
# closes the volume, which writes the journal into the store).
qsd_stop() {
    local log=$1
    stop_child "$QSD_PID" 30 || { cat "$log"; fail "qemu-storage-daemon ignored SIGTERM"; }
    [ "$STOP_RC" = 0 ] || { cat "$log"; fail "qemu-storage-daemon exited with $STOP_RC"; }
}

# qemu-io must find no mismatch: io_ok NAME QEMU-IO-ARGS...
io_ok() {
    local name=$1 out
    shift
    out=$("$QEMU_IO" -f raw "$@" 2>&1) || { echo "$out"; fail "$name: qemu-io failed"; }
    echo "$out"
    if grep -q 'Pattern verification failed' <<<"$out"; then
        fail "$name: data mismatch"
    fi
}

"$QEMU_IMG" create -f raw lsvd:v 64M

# --- NBD on a unix socket -------------------------------------------------------

echo "== nbd"
sock="$T/nbd.sock"
url="nbd+unix:///vol?socket=$sock"
qsd_start "$T/qsd-nbd.log" \
    --nbd-server addr.type=unix,addr.path="$sock" \
    --export type=nbd,id=e0,node-name=d0,name=vol,writable=on
wait_for 20 test -S "$sock" || { cat "$T/qsd-nbd.log"; fail "no NBD socket"; }
io_ok "nbd write" -c 'write -P 0x5a 0 4M' -c 'write -P 0xa5 4M 4M' -c flush "$url"
io_ok "nbd read" -c 'read -P 0x5a 0 4M' -c 'read -P 0xa5 4M 4M' -c 'read -P 0 8M 1M' "$url"
# a second client while the first is gone: the export stays up
io_ok "nbd reconnect" -c 'read -P 0xa5 4M 4k' "$url"
qsd_stop "$T/qsd-nbd.log"
# (QEMU 7.2 leaves the socket file behind: a restart on the same path
# replaces it)
io_ok "after nbd" -c 'read -P 0x5a 0 4M' -c 'read -P 0xa5 4M 4M' lsvd:v

# An NBD export in an iothread (iothread=) is left out on purpose: QEMU
# 7.2's qemu-storage-daemon aborts when an NBD client of an export in an
# iothread disconnects, whatever the driver (driver=file too):
#   qemu-storage-daemon: ../qemu-src/blockdev-nbd.c:62:
#   nbd_blockdev_client_closed: Assertion `qemu_in_main_thread() &&
#   nbd_server' failed.
# The vhost-user-blk case below runs the volume in an iothread instead.

# --- FUSE ------------------------------------------------------------------------

echo "== fuse"
if [ ! -c /dev/fuse ]; then
    echo "no /dev/fuse: FUSE export not tested"
else
    mnt="$T/fuse.img"
    : > "$mnt"
    # if the daemon dies, the mount would outlive it; -z detaches it anyway
    cleanup_cmds+=("grep -q ' $mnt ' /proc/mounts && { fusermount3 -u -z '$mnt' || umount -l '$mnt'; }")
    qsd_start "$T/qsd-fuse.log" \
        --export type=fuse,id=e1,node-name=d0,mountpoint="$mnt",writable=on
    wait_for 20 grep -q " $mnt fuse" /proc/mounts ||
        { cat "$T/qsd-fuse.log"; fail "the FUSE export was not mounted"; }
    size=$(stat -c %s "$mnt")
    [ "$size" -eq $((64 << 20)) ] || fail "FUSE file is $size bytes, not 64 MiB"
    head -c 4M /dev/zero | tr '\000' '\303' > "$T/c3"
    timeout 60 dd if="$T/c3" of="$mnt" bs=1M seek=8 conv=fsync,notrunc status=none ||
        fail "dd into the FUSE export"
    # back through the export, and what the NBD step wrote
    timeout 60 dd if="$mnt" of="$T/c3.back" bs=1M skip=8 count=4 status=none ||
        fail "dd from the FUSE export"
    cmp "$T/c3" "$T/c3.back" || fail "FUSE read-back differs"
    timeout 60 dd if="$mnt" of="$T/5a.back" bs=1M count=4 status=none
    head -c 4M /dev/zero | tr '\000' '\132' | cmp - "$T/5a.back" ||
        fail "FUSE read of the NBD data differs"
    qsd_stop "$T/qsd-fuse.log"
    ! grep -q " $mnt " /proc/mounts || fail "$mnt still mounted after the daemon stopped"
    io_ok "after fuse" -c 'read -P 0x5a 0 4M' -c 'read -P 0xa5 4M 4M' \
        -c 'read -P 0xc3 8M 4M' -c 'read -P 0 12M 1M' lsvd:v
fi

# --- vhost-user-blk, read by a guest -----------------------------------------------

echo "== vhost-user-blk"
if [ ! -x "$QEMU_SYSTEM" ]; then
    echo "missing $QEMU_SYSTEM: vhost-user-blk not tested"
    exit 77
fi
bash "$top/scripts/guest.sh" || { echo "scripts/guest.sh failed: no guest"; exit 77; }
guest="$top/build/guest"

# what the guest must see: the volume's first 8 MiB, read by qemu-img
"$QEMU_IMG" dd -f raw -O raw if=lsvd:v of="$T/head.raw" bs=1M count=8
want_md5=$(md5sum < "$T/head.raw" | cut -d' ' -f1)

# Boot the guest against a vhost-user-blk export of the volume:
# vhost_guest NAME MODE QSD-ARGS...  (MODE: read, or write 4 KiB at 8 MiB)
vhost_guest() {
    local name=$1 mode=$2 vsock="$T/vhost-$1.sock" log="$T/console-$1.log" start
    shift 2
    qsd_start "$T/qsd-$name.log" "$@" \
        --export type=vhost-user-blk,id=e2,addr.type=unix,addr.path="$vsock",node-name=d0,writable=on${iothread:+,iothread=$iothread}
    wait_for 20 test -S "$vsock" || { cat "$T/qsd-$name.log"; fail "$name: no vhost-user socket"; }
    # vhost-user needs the guest's RAM shared with the daemon: a memfd
    start=$(date +%s)
    timeout 120 "$QEMU_SYSTEM" -accel tcg,thread=multi -M pc -nodefaults \
        -m 256 -object memory-backend-memfd,id=mem,size=256M,share=on \
        -numa node,memdev=mem \
        -chardev socket,id=c0,path="$vsock" \
        -device vhost-user-blk-pci,chardev=c0 \
        -kernel "$guest/vmlinux" -initrd "$guest/initrd.img" \
        -append "console=ttyS0 panic=-1 quiet lsvdtest=$mode" \
        -bios qboot.rom -display none -serial file:"$log" \
        -no-reboot >"$T/qemu-system-$name.log" 2>&1 ||
        { cat "$T/qemu-system-$name.log" "$log"; fail "$name: the guest did not run to its end"; }
    echo "$name: guest ran in $(($(date +%s) - start)) s"
    grep GUEST: "$log"
    grep -q "^GUEST: vda $((64 << 11))" "$log" ||
        { cat "$log"; fail "$name: the guest did not see a 64 MiB vda"; }
    grep -q "^GUEST: md5 $want_md5" "$log" ||
        fail "$name: the guest read other data than qemu-img (want md5 $want_md5)"
    if [ "$mode" = write ]; then
        grep -q "^GUEST: wrote" "$log" || fail "$name: the guest's write failed"
    fi
    qsd_stop "$T/qsd-$name.log"
}

# in the main loop, then in an iothread (the guest writes this time)
iothread='' vhost_guest main read
iothread=io0 vhost_guest iothread write --object iothread,id=io0
io_ok "after vhost-user-blk" -c 'read -P 0x6b 8M 4k' -c 'read -P 0xc3 8392704 4190208' \
    -c 'read -P 0x5a 0 4M' lsvd:v
echo PASS
