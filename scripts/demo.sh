#!/usr/bin/env bash
# The demo: a real filesystem image copied into an LSVD volume on the
# embedded default store (no configuration file at all), read back and
# verified.  Run by `make demo` after the build.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
qb="$top/build/qemu-build"
LSVD="$top/build/prefix/bin/lsvd"
vol=lsvd-demo
work="$top/build/demo"

# the embedded default: no LSVD_CONF, and no /etc/lsvd/lsvd.conf
unset LSVD_CONF
if [ -e /etc/lsvd/lsvd.conf ]; then
    echo "demo: note: /etc/lsvd/lsvd.conf exists and is used instead of the defaults"
fi

rm -rf "$work"
mkdir -p "$work/files"

echo "== 1. a real image: a 64 MiB ext4 filesystem holding this repository's sources"
cp -r "$top/lsvd-core" "$top/block" "$top/docs" "$top/README.md" "$work/files/" 2>/dev/null || true
cp -r /usr/share/common-licenses "$work/files/"
truncate -s 64M "$work/disk.raw"
mkfs.ext4 -q -F -d "$work/files" -L lsvd-demo "$work/disk.raw"

echo "== 2. copy it into volume '$vol' with qemu-img convert"
"$LSVD" rm "$vol" 2>/dev/null || true
"$qb/qemu-img" convert -p -f raw -O raw "$work/disk.raw" "lsvd:$vol"
echo

echo "== 3. what qemu-img and lsvd see"
"$qb/qemu-img" info "lsvd:$vol"
"$LSVD" info "$vol"

echo "== 4. read it back in a new process and verify"
rm -rf /var/lib/lsvd/cache/"$vol".journal   # no cache needed after a clean close
"$qb/qemu-img" convert -f raw -O raw "lsvd:$vol" "$work/readback.raw"
cmp "$work/disk.raw" "$work/readback.raw"
e2fsck -fn "$work/readback.raw" >/dev/null
echo "identical to the original ($(sha256sum < "$work/readback.raw" | cut -c1-16)...), and e2fsck finds the filesystem clean"

echo "== 5. where the data lives"
store=/var/lib/lsvd/store/$vol
echo "objects in $store:"
ls -l "$store" | sed 's/^/  /'
echo
echo "demo: done.  Remove the volume with: $LSVD rm $vol"
