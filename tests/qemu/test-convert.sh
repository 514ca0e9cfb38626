#!/usr/bin/env bash
# qemu-img convert in and out, -blockdev/--image-opts, and an NBD export
# from qemu-storage-daemon.
. "$(dirname "$0")/common.sh"

# an image with data, holes and repeated data
head -c 3M /dev/urandom > "$T/src.raw"
truncate -s 24M "$T/src.raw"
dd if=/dev/urandom of="$T/src.raw" bs=1M seek=20 count=2 conv=notrunc status=none
"$QEMU_IMG" convert -p -f raw -O raw "$T/src.raw" lsvd:img
"$QEMU_IMG" info lsvd:img | grep -q '24 MiB' || fail "size after convert"
"$QEMU_IMG" compare -f raw -F raw "$T/src.raw" lsvd:img || fail "compare after convert in"
"$QEMU_IMG" convert -f raw -O raw lsvd:img "$T/out.raw"
cmp "$T/src.raw" "$T/out.raw" || fail "convert out differs"

# the same volume through -blockdev style options
"$QEMU_IO" --image-opts -c 'read -v 0 16' driver=lsvd,volume=img \
    | tee "$T/io" | head -2
"$QEMU_IO" --image-opts -c "write -P 0x77 1M 64k" driver=lsvd,volume=img
"$QEMU_IO" --image-opts -c "read -P 0x77 1M 64k" "driver=lsvd,volume=img,conf=$LSVD_CONF" \
    | grep -q 'read 65536/65536' || fail "image-opts read"

# qemu-storage-daemon exporting the volume over NBD on a unix socket
if [ -x "$QSD" ]; then
    sock="$T/nbd.sock"
    "$QSD" --blockdev driver=lsvd,volume=img,node-name=d0 \
        --nbd-server addr.type=unix,addr.path="$sock" \
        --export type=nbd,id=e0,node-name=d0,writable=on &
    cleanup_pids+=($!)
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || fail "qemu-storage-daemon did not start"
    "$QEMU_IO" -f raw -c 'write -P 0x42 2M 128k' -c flush "nbd+unix:///d0?socket=$sock"
    "$QEMU_IO" -f raw -c 'read -P 0x42 2M 128k' -c 'read -P 0x77 1M 64k' \
        "nbd+unix:///d0?socket=$sock" | tee "$T/nbd"
    [ "$(grep -c 'Pattern verification failed' "$T/nbd")" -eq 0 ] || fail "nbd data"
    kill "${cleanup_pids[-1]}"; wait "${cleanup_pids[-1]}" || true
    "$QEMU_IO" -c 'read -P 0x42 2M 128k' lsvd:img | grep -q 'read 131072/131072' \
        || fail "data written over NBD"
fi
echo PASS
