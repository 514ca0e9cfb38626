#!/usr/bin/env bash
# The walking skeleton end to end: create, write, flush, read back in a new
# process, info, and data in the store directory.
. "$(dirname "$0")/common.sh"

"$QEMU_IMG" create -f raw lsvd:v 1G
"$QEMU_IO" -c 'write -P 0x5a 0 4M' -c flush lsvd:v
"$QEMU_IO" -c 'read -P 0x5a 0 4M' lsvd:v | tee "$T/out"
grep -q 'read 4194304/4194304 bytes' "$T/out" || fail "read-back"
# a pattern check that must fail: proves read -P really compares
if "$QEMU_IO" -c 'read -P 0x5b 0 4M' lsvd:v | grep -q 'Pattern verification failed'; then
    :
else
    fail "read -P 0x5b did not report a mismatch"
fi
"$QEMU_IMG" info lsvd:v | tee "$T/info"
grep -q 'virtual size: 1 GiB (1073741824 bytes)' "$T/info" || fail "info size"
n=$(find "$T/store/v" -type f -name '0*' | wc -l)
echo "objects in store: $n"
[ "$n" -ge 1 ] || fail "no objects in $T/store/v"

# the volume needs no cache after a clean close
rm -rf "$T/cache"
"$QEMU_IO" -c 'read -P 0x5a 0 4M' -c 'read -P 0 4M 1M' lsvd:v | tee "$T/out2"
[ "$(grep -c 'Pattern verification failed' "$T/out2")" -eq 0 ] || fail "data lost without cache"

# sub-4K, unaligned-to-4K but 512-aligned writes and overwrites
"$QEMU_IO" -c 'write -P 0x11 512 512' -c 'write -P 0x22 1536 2560' \
    -c 'write -P 0x33 1024 1024' lsvd:v
"$QEMU_IO" -c 'read -P 0x11 512 512' -c 'read -P 0x33 1024 1024' \
    -c 'read -P 0x22 2048 2048' -c 'read -P 0x5a 4096 4096' lsvd:v | tee "$T/out3"
[ "$(grep -c 'Pattern verification failed' "$T/out3")" -eq 0 ] || fail "small writes"
echo PASS
