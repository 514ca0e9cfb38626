#!/usr/bin/env bash
# Bad input: one clear line, a non-zero exit, and no data touched.
. "$(dirname "$0")/common.sh"

"$QEMU_IMG" create -f raw lsvd:v 16M >/dev/null
"$QEMU_IO" -c 'write -P 0x5a 0 1M' lsvd:v >/dev/null
before=$(store_digest)

expect_error "volume" "$QEMU_IO" -c 'read 0 512' lsvd:
expect_error "bogus" "$QEMU_IO" -c 'read 0 512' lsvd:v:bogus=1
expect_error "'nope' does not exist" "$QEMU_IO" -c 'read 0 512' lsvd:nope
expect_error "invalid volume name" "$QEMU_IO" -c 'read 0 512' 'lsvd:../etc'
expect_error "cannot read config" "$QEMU_IO" -c 'read 0 512' "lsvd:v:conf=$T/missing.conf"
echo "[backend" > "$T/bad.conf"
expect_error "bad.conf" "$QEMU_IO" -c 'read 0 512' "lsvd:v:conf=$T/bad.conf"
printf '[cache]\nsize = lots\n' > "$T/bad2.conf"
expect_error "not a size" "$QEMU_IO" -c 'read 0 512' "lsvd:v:conf=$T/bad2.conf"
printf '[cache]\nsiz = 1G\n' > "$T/bad3.conf"
expect_error "unknown key 'siz'" "$QEMU_IO" -c 'read 0 512' "lsvd:v:conf=$T/bad3.conf"
expect_error "already exists" "$QEMU_IMG" create -f raw lsvd:v 1G
expect_failure "size" "$QEMU_IMG" create -f raw lsvd:w 1X   # QEMU's own message
expect_error "512" "$QEMU_IMG" create -f raw lsvd:w 1000
expect_error "does not exist" "$LSVD" info nope
expect_error "not a size" "$LSVD" create w 12Q
LSVD_CONF=$T/missing.conf expect_error "cannot read config" "$LSVD" ls

[ "$before" = "$(store_digest)" ] || fail "bad input changed the store or cache"
"$QEMU_IO" -c 'read -P 0x5a 0 1M' lsvd:v | grep -q 'read 1048576/1048576' || fail "data"
echo PASS
