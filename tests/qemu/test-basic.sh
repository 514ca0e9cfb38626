#!/usr/bin/env bash
# The walking skeleton end to end: create, write, flush, read back in a new
# process, info, and data in the store directory.
. "$(dirname "$0")/common.sh"

"$QEMU_IMG" create -f raw lsvd:v 1G
"$QEMU_IO" -c 'write -P 0x5a 0 4M' -c flush lsvd:v
"$QEMU_IO" -c 'read -P 0x5a 0 4M' lsvd:v | tee "$T/out"
grep -q 'read 4194304/4194304 bytes' "$T/out" || fail "read-back"
# a pattern check that must fail: proves read -P really compares
out=$("$QEMU_IO" -f raw -c 'read -P 0x5b 0 4M' lsvd:v 2>&1 || true)
grep -q 'Pattern verification failed' <<<"$out" ||
    fail "read -P 0x5b did not report a mismatch"
"$QEMU_IMG" info lsvd:v | tee "$T/info"
grep -q 'virtual size: 1 GiB (1073741824 bytes)' "$T/info" || fail "info size"
n=$(find "$T/store/v" -type f -name '0*' | wc -l)
echo "objects in store: $n"
[ "$n" -ge 1 ] || fail "no objects in $T/store/v"

# discard and write-zeroes read back as zeros, and survive reopening
"$QEMU_IO" -f raw -c 'discard 1M 512k' -c 'write -z 2M 4k' -c flush lsvd:v
"$QEMU_IO" -f raw -c 'read -P 0 1M 512k' -c 'read -P 0x5a 1536k 512k' \
    -c 'read -P 0 2M 4k' -c 'read -P 0x5a 2052k 4k' lsvd:v 2>&1 | tee "$T/outz"
[ "$(grep -c 'Pattern verification failed' "$T/outz")" -eq 0 ] || fail "discard/zeroes"
"$QEMU_IO" -f raw -c 'write -P 0x5a 1M 512k' -c 'write -P 0x5a 2M 4k' lsvd:v

# the volume needs no cache after a clean close
rm -rf "$T/cache"
"$QEMU_IO" -f raw -c 'read -P 0x5a 0 4M' -c 'read -P 0 4M 1M' lsvd:v 2>&1 | tee "$T/out2"
[ "$(grep -c 'Pattern verification failed' "$T/out2")" -eq 0 ] || fail "data lost without cache"

# sub-4K, unaligned-to-4K but 512-aligned writes and overwrites
"$QEMU_IO" -f raw -c 'write -P 0x11 512 512' -c 'write -P 0x22 1536 2560' \
    -c 'write -P 0x33 1024 1024' lsvd:v
"$QEMU_IO" -f raw -c 'read -P 0x11 512 512' -c 'read -P 0x33 1024 1024' \
    -c 'read -P 0x22 2048 2048' -c 'read -P 0x5a 4096 4096' lsvd:v 2>&1 | tee "$T/out3"
[ "$(grep -c 'Pattern verification failed' "$T/out3")" -eq 0 ] || fail "small writes"
echo PASS
