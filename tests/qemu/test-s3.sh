#!/usr/bin/env bash
# QEMU on an S3 store (Ceph RGW): qemu-img create/convert/info and qemu-io
# round trips, credentials from a QEMU secret object (key-secret=), the
# errors a user meets (wrong secret, missing secret object, missing bucket,
# key-secret with a dir:// store), and a restart served from the read
# cache (counted with `lsvd stats`).
#
# Needs LSVD_TEST_S3_CONF, an s3:// config such as scripts/rgw.sh writes;
# skips (77) without it.  Everything goes under a prefix of its own.
. "$(dirname "$0")/common.sh"

if [ -z "${LSVD_TEST_S3_CONF:-}" ] || [ ! -r "$LSVD_TEST_S3_CONF" ]; then
    echo "LSVD_TEST_S3_CONF is not set: no S3 store to test"
    exit 77
fi

# [backend] key of the given config
key() {
    sed -n "/^\[backend\]/,/^\[/s/^$1 *= *//p" "$LSVD_TEST_S3_CONF" | head -n1
}
url=$(key url)
endpoint=$(key endpoint)
region=$(key region)
ak=$(key access_key_id)
sk=$(key secret_access_key)
[ -n "$url" ] && [ -n "$ak" ] && [ -n "$sk" ] ||
    fail "$LSVD_TEST_S3_CONF lacks url or keys"
bucket=${url#s3://}
bucket=${bucket%%/*}
url="$url/qemu-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
echo "store: $url at $endpoint"

# the full config, and one without the secret (for key-secret=)
cat > "$LSVD_CONF" <<EOC
[backend]
url = $url
endpoint = $endpoint
region = $region
access_key_id = $ak
secret_access_key = $sk
[cache]
dir = $T/cache
size = 64M
read_size = 64M
[log]
batch_size = 1M
EOC
grep -v '^secret_access_key' "$LSVD_CONF" > "$T/nosecret.conf"
sed "s|^url = .*|url = s3://no-such-bucket-$RANDOM|" "$LSVD_CONF" > "$T/nobucket.conf"
sed "s|^secret_access_key = .*|secret_access_key = wrong$sk|" "$LSVD_CONF" > "$T/wrong.conf"
cleanup_s3() {
    "$LSVD" rm v >/dev/null 2>&1 || true
    "$LSVD" rm w >/dev/null 2>&1 || true
}
trap 'cleanup_s3; cleanup' EXIT

# create, write, read back in a new process, info
"$QEMU_IMG" create -f raw lsvd:v 256M
"$QEMU_IO" -f raw -c 'write -P 0x5a 0 4M' -c 'write -P 0x11 100M 1M' \
    -c flush lsvd:v
"$QEMU_IO" -f raw -c 'read -P 0x5a 0 4M' -c 'read -P 0x11 100M 1M' \
    -c 'read -P 0 4M 1M' lsvd:v 2>&1 | tee "$T/out"
[ "$(grep -c 'Pattern verification failed' "$T/out")" -eq 0 ] || fail "read-back"
"$QEMU_IMG" info lsvd:v | tee "$T/info"
grep -q 'virtual size: 256 MiB' "$T/info" || fail "info size"
"$LSVD" ls | grep -qx v || fail "lsvd ls does not list v"

# convert a local image in and back out, with the cache gone in between
head -c 8M /dev/urandom > "$T/src.raw"
"$QEMU_IMG" convert -f raw -O raw "$T/src.raw" lsvd:w
rm -rf "$T/cache"
"$QEMU_IMG" convert -f raw -O raw lsvd:w "$T/back.raw"
cmp "$T/src.raw" "$T/back.raw" || fail "convert round trip differs"

# credentials from a secret object; the config has only the key ID
"$QEMU_IO" --object "secret,id=s3key,data=$sk" --image-opts \
    -c 'read -P 0x5a 0 4M' \
    "driver=lsvd,volume=v,conf=$T/nosecret.conf,key-secret=s3key" 2>&1 |
    tee "$T/out2"
[ "$(grep -c 'Pattern verification failed' "$T/out2")" -eq 0 ] ||
    fail "read with key-secret"
grep -q 'read 4194304/4194304' "$T/out2" || fail "read with key-secret"
"$QEMU_IO" --object "secret,id=s3key,data=$sk" -f raw \
    -c 'read -P 0x11 100M 1M' "lsvd:v:conf=$T/nosecret.conf:key-secret=s3key" \
    2>&1 | grep -q 'read 1048576/1048576' || fail "key-secret in a filename"

# what a user gets wrong
expect_failure 'access denied.*SignatureDoesNotMatch' \
    "$QEMU_IO" --object "secret,id=s3key,data=wrong$sk" --image-opts -c quit \
    "driver=lsvd,volume=v,conf=$T/nosecret.conf,key-secret=s3key"
expect_failure "No secret with id 'nokey'" \
    "$QEMU_IO" --image-opts -c quit \
    "driver=lsvd,volume=v,conf=$T/nosecret.conf,key-secret=nokey"
expect_failure 'no secret' \
    "$QEMU_IO" -c quit "lsvd:v:conf=$T/nosecret.conf"
expect_failure 'access denied' "$QEMU_IMG" info "lsvd:v:conf=$T/wrong.conf"
expect_failure "bucket 'no-such-bucket-[0-9]+' does not exist" \
    "$QEMU_IMG" info "lsvd:v:conf=$T/nobucket.conf"
expect_error "bucket 'no-such-bucket-[0-9]+' does not exist" \
    "$LSVD" --conf "$T/nobucket.conf" ls
cat > "$T/dir.conf" <<EOC
[backend]
url = dir://$T/store
EOC
expect_failure 'key-secret is only for an s3:// store' \
    "$QEMU_IO" --object "secret,id=s3key,data=x" --image-opts -c quit \
    "driver=lsvd,volume=v,conf=$T/dir.conf,key-secret=s3key"

# A restart is served from the read cache.  Reads reach it only once the
# journal is gone, so drop the journal (the data is in objects after a
# clean close) but keep the read cache.
drop_journal() { rm -f "$T/cache/w.journal" "$T/cache/w.jmap"; }
drop_journal
"$QEMU_IO" -f raw -c 'read 0 8M' lsvd:w >/dev/null
"$LSVD" stats w | tee "$T/stats1"
grep -q '^rc_misses 128$' "$T/stats1" || fail "first read: 128 misses expected"
drop_journal
"$QEMU_IO" -f raw -c 'read 0 8M' lsvd:w >/dev/null
"$LSVD" stats w | tee "$T/stats2"
grep -q '^rc_misses 0$' "$T/stats2" || fail "restart: read cache misses"
grep -q '^rc_hits 128$' "$T/stats2" || fail "restart: 128 hits expected"
"$LSVD" info w | tee "$T/info2"
grep -q 'read cache:.*128 hits, 0 misses' "$T/info2" || fail "lsvd info"

"$LSVD" rm v
"$LSVD" rm w
expect_error "does not exist" "$LSVD" info v
echo PASS
