#!/usr/bin/env bash
# The driver's options and qemu-img's view of a volume: per-node options
# that take the place of configuration keys, qemu-img info (format-specific
# information), resize and map, and what a user gets wrong (bad option
# values, unknown options, shrinking below data, opening a volume for
# writing twice in one process).
. "$(dirname "$0")/common.sh"

# per-node options: another store and cache than the config's
mkdir -p "$T/other"
"$QEMU_IMG" create -f raw "lsvd:v" 64M
opts="driver=lsvd,volume=w,url=dir://$T/other/store,cache-dir=$T/other/cache"
cat > "$T/other.conf" <<EOC
[backend]
url = dir://$T/other/store
[cache]
dir = $T/other/cache
EOC
"$LSVD" --conf "$T/other.conf" create w 32M
"$QEMU_IO" --image-opts -c 'write -P 0x33 0 1M' -c flush \
    "$opts,cache-size=64M,read-cache-size=0,batch-size=2M,prefetch=256k"
[ -f "$T/other/cache/w.journal" ] || fail "cache-dir= not used"
[ ! -e "$T/other/cache/w.rcache" ] || fail "read-cache-size=0 not used"
[ "$(find "$T/other/store/w" -name '0*' | wc -l)" -ge 1 ] || fail "url= not used"
[ ! -e "$T/store/w" ] || fail "the config's store was used"
"$QEMU_IO" --image-opts -c 'read -P 0x33 0 1M' "$opts" | grep -q 'read 1048576/' ||
    fail "read back through url="

# bad values are checked like the config file's; unknown options refused
expect_failure 'option cache-size: .*size must be at least 64M' \
    "$QEMU_IO" --image-opts -c quit "$opts,cache-size=1M"
expect_failure 'option batch-size: .*batch_size must be between 1M and 32M' \
    "$QEMU_IO" --image-opts -c quit "$opts,batch-size=64M"
expect_failure 'option url: .*expected dir:///path or s3://' \
    "$QEMU_IO" --image-opts -c quit "driver=lsvd,volume=w,url=ftp://x"
expect_failure "Parameter 'colour' is unexpected|unexpected" \
    "$QEMU_IO" --image-opts -c quit "$opts,colour=blue"
expect_failure "Parameter 'cache-size' expects size" \
    "$QEMU_IO" --image-opts -c quit "$opts,cache-size=lots"

# qemu-img info: the driver's own information on the lsvd node
"$QEMU_IO" -f raw -c 'write -P 0x5a 0 4M' lsvd:v >/dev/null
"$QEMU_IMG" info --image-opts driver=lsvd,volume=v | tee "$T/info"
grep -q 'virtual size: 64 MiB' "$T/info" || fail "info: size"
grep -q 'Format specific information:' "$T/info" || fail "info: specific"
grep -q "volume: v" "$T/info" || fail "info: volume"
grep -q "backend: dir://$T/store" "$T/info" || fail "info: backend"
grep -qE 'objects: [1-9]' "$T/info" || fail "info: objects"
grep -qE 'stored bytes: [1-9]' "$T/info" || fail "info: stored bytes"
"$QEMU_IMG" info --output=json --image-opts driver=lsvd,volume=v |
    grep -q '"type": "lsvd"' || fail "info json: format-specific type"

# map: unwritten space is zero and not data; written data is data
"$QEMU_IO" -f raw -c 'write -z 8M 1M' lsvd:v >/dev/null
"$QEMU_IMG" map --output=json -f raw lsvd:v | tee "$T/map"
grep -q '"start": 0, "length": 4194304, .*"zero": false, "data": true' "$T/map" ||
    fail "map: data"
grep -q '"start": 4194304, "length": 62914560, .*"zero": true, "data": false' "$T/map" ||
    fail "map: unwritten and zeroed ranges"

# resize: grow, refuse to shrink below data, shrink an unwritten tail
"$QEMU_IMG" resize -f raw lsvd:v 128M
"$QEMU_IMG" info -f raw lsvd:v | grep -q 'virtual size: 128 MiB' || fail "grow"
expect_failure 'cannot shrink volume .v. to 4194304 bytes' \
    "$QEMU_IMG" resize -f raw --shrink lsvd:v 4M
"$QEMU_IMG" info -f raw lsvd:v | grep -q 'virtual size: 128 MiB' ||
    fail "a refused shrink changed the size"
"$QEMU_IMG" resize -f raw --shrink lsvd:v 9M
"$QEMU_IMG" info -f raw lsvd:v | grep -q 'virtual size: 9 MiB' || fail "shrink"
"$QEMU_IO" -f raw -c 'read -P 0x5a 0 4M' lsvd:v | grep -q 'read 4194304/' ||
    fail "data after resizes"

# qemu-img info while the volume is open for writing elsewhere: refused,
# unless -U (force-share), which reads the objects only
"$QSD" --blockdev driver=lsvd,volume=v,node-name=a \
    --nbd-server addr.type=unix,addr.path="$T/nbd.sock" \
    --export type=nbd,id=e0,node-name=a,writable=on &
cleanup_pids+=($!)
for _ in $(seq 100); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
[ -S "$T/nbd.sock" ] || fail "qemu-storage-daemon did not start"
expect_failure 'volume is in use' "$QEMU_IMG" info -f raw lsvd:v
"$QEMU_IMG" info -U -f raw lsvd:v | tee "$T/info-u"
grep -q 'virtual size: 9 MiB' "$T/info-u" || fail "info -U"
"$QEMU_IO" -U -r -f raw -c 'read -P 0x5a 0 4M' lsvd:v | grep -q 'read 4194304/' ||
    fail "read with -U"
kill "${cleanup_pids[-1]}"; wait "${cleanup_pids[-1]}" 2>/dev/null || true

# qemu-img create -o: another store; conflicting with the file name
"$QEMU_IMG" create -f raw -o "url=dir://$T/third" lsvd:x 16M
[ -f "$T/third/x/super" ] || fail "create -o url= did not use that store"
expect_failure 'conf given both in the file name and as an option' \
    "$QEMU_IMG" create -f raw -o "conf=$LSVD_CONF" "lsvd:y:conf=$LSVD_CONF" 16M
expect_failure 'option url: .*expected dir:///path' \
    "$QEMU_IMG" create -f raw -o url=nowhere lsvd:y 16M
[ ! -e "$T/store/y" ] || fail "a refused create left a volume"

# one process, the same volume writable twice: the second is refused
expect_failure 'volume .v. is in use|in use' \
    "$QSD" --blockdev driver=lsvd,volume=v,node-name=a \
    --blockdev driver=lsvd,volume=v,node-name=b
echo PASS
