#!/usr/bin/env bash
# Build the tiny test guest: Debian's 6.1 kernel and a busybox initramfs
# whose init reads /dev/vda, prints what it saw on the serial console and
# powers off, or formats it ext4 and copies files, or checks it.  Used by
# tests/qemu/test-exports.sh, test-libvirt.sh and test-guest-fs.sh.
#
#   scripts/guest.sh [DIR]        (DIR defaults to build/guest)
#
# Results, cached in DIR until this script or the kernel package changes:
#   DIR/vmlinux     the uncompressed kernel (an ELF with a PVH entry point:
#                   QEMU boots it with -kernel straight into 64-bit mode,
#                   without decompressing a bzImage under TCG)
#   DIR/initrd.img  busybox-static, the virtio and ext4 modules, mke2fs and
#                   e2fsck (the host's, with their libraries), a tree to
#                   copy (/src, ~16 MiB) with its manifest /src.md5, /init
#
# Boot it with -bios qboot.rom (qemu-system-data's, which our QEMU finds
# through --firmwarepath, see build-qemu.sh): about 4 s to poweroff on TCG.
#
# The kernel comes from `apt-get download` of the package that
# linux-image-amd64 depends on (nothing is installed); busybox-static, cpio
# and xz-utils come from scripts/setup-deps.sh, and so does e2fsprogs.
#
# What /init does, on the kernel command line's word lsvdtest=MODE:
#   prints "GUEST: vda SECTORS" (the disk's size in 512-byte sectors) and
#   "GUEST: md5 HEX" (md5 of the disk's first 8 MiB); with MODE=write it then
#   writes 4 KiB of 'k' (0x6b) at 8 MiB, syncs and prints "GUEST: wrote";
#   finally "GUEST: done", and powers off.  A missing /dev/vda prints
#   "GUEST: no vda".
#
# The ext4 modes (tests/qemu/test-guest-fs.sh) print "GUEST: vda SECTORS"
# but no md5:
#   ext4-copy   mkfs.ext4 /dev/vda, mount it, then copy /src into /mnt/dN,
#               N = 1, 2, ..., printing "GUEST: copying N", "GUEST:
#               synced N" (after a sync, two rounds in three) and "GUEST:
#               copied N", until the host kills the guest: it never ends
#               by itself (see ext4_copy in /init for syncs and markers)
#   ext4-check  mount /dev/vda ("GUEST: mounted" or "GUEST: mount
#               failed"; "GUEST: ext4 journal replayed" if the mount
#               recovered ext4's journal), "GUEST: files N", "GUEST: in
#               /mnt: NAMES...", "GUEST: verified N copies, N bad" (the
#               copies whose marker survived, against /src.md5); with
#               lsvdsynced=N on the command line, "GUEST: synced copy N
#               complete" or "... lost" (/mnt/dN against /src.md5); "GUEST:
#               unmounted", e2fsck -fn's output and "GUEST: fsck STATUS"
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/guest}
mkdir -p "$out"

die() {
    echo "guest.sh: error: $*" >&2
    exit 1
}

for tool in apt-get apt-cache dpkg-deb cpio xz python3 ldd; do
    command -v "$tool" >/dev/null ||
        die "'$tool' is not installed (scripts/setup-deps.sh)"
done
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
    die "busybox-static is not installed (scripts/setup-deps.sh)"
[ -x /sbin/mke2fs ] && [ -x /sbin/e2fsck ] ||
    die "e2fsprogs is not installed (scripts/setup-deps.sh)"

# The kernel package that linux-image-amd64 stands for today.
kpkg_name() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}
kpkg=$(kpkg_name)
if [ -z "$kpkg" ]; then
    apt-get update -qq
    kpkg=$(kpkg_name)
fi
[ -n "$kpkg" ] || die "apt-cache cannot resolve linux-image-amd64"

stamp="$out/.stamp"
want="$kpkg $(sha256sum "$0" | cut -d' ' -f1) $(cat /bin/busybox /sbin/mke2fs /sbin/e2fsck | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
   [ -f "$out/vmlinux" ] && [ -f "$out/initrd.img" ]; then
    exit 0
fi
rm -f "$stamp"

# --- kernel -------------------------------------------------------------------

# the package stays in DIR/dl, so that a change to /init downloads nothing
dl="$out/dl"
rm -rf "$dl/x" "$dl/root"
mkdir -p "$dl"
if ls "$dl"/"$kpkg"_*.deb >/dev/null 2>&1; then
    :
elif echo "guest.sh: downloading $kpkg" &&
     ! (cd "$dl" && rm -f ./*.deb && apt-get download "$kpkg" >/dev/null 2>&1); then
    # stale package lists name a file the archive no longer has
    apt-get update -qq
    kpkg=$(kpkg_name)
    want="$kpkg ${want#* }"
    (cd "$dl" && apt-get download "$kpkg" >/dev/null) ||
        die "apt-get download $kpkg failed"
fi
dpkg-deb -x "$dl"/"$kpkg"_*.deb "$dl/x"
kver=${kpkg#linux-image-}
vmlinuz="$dl/x/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "$kpkg has no /boot/vmlinuz-$kver"

# The bzImage holds the kernel as one xz stream (CONFIG_KERNEL_XZ): find its
# magic and decompress just that stream.
python3 - "$vmlinuz" "$out/vmlinux.xz" <<'EOF' ||
import sys
data = open(sys.argv[1], 'rb').read()
i = data.find(b'\xfd7zXZ\x00')
if i < 0:
    sys.exit(1)
open(sys.argv[2], 'wb').write(data[i:])
EOF
    die "no xz stream in $vmlinuz (not CONFIG_KERNEL_XZ?)"
# xz stops at the end of the stream and ignores what follows it
xz -dc --single-stream "$out/vmlinux.xz" > "$out/vmlinux.tmp" ||
    die "cannot decompress the kernel in $vmlinuz"
rm -f "$out/vmlinux.xz"
[ "$(head -c 4 "$out/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
    die "the kernel extracted from $vmlinuz is not an ELF file"
mv "$out/vmlinux.tmp" "$out/vmlinux"

# --- initramfs ----------------------------------------------------------------

root="$dl/root"
mkdir -p "$root"/{bin,sbin,etc,dev,proc,sys,mnt,lib/modules}
cp /bin/busybox "$root/bin/busybox"

# Copy a module of the kernel package, uncompressed: mod NAME
mod() {
    local f
    f=$(find "$dl/x/lib/modules/$kver/kernel" -name "$1.ko*" | head -n1)
    [ -n "$f" ] || die "$kpkg has no module $1"
    case $f in
    *.ko) cp "$f" "$root/lib/modules/$1.ko" ;;
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/$1.ko" ;;
    *) die "cannot unpack module $f" ;;
    esac
}

# Debian builds virtio, the PCI transport and virtio_blk as modules; in the
# order they depend on each other
mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
# ext4 and what `modinfo -F depends` names for it (jbd2, mbcache, crc16),
# plus crc32c: ext4 and jbd2 ask the crypto API for "crc32c" (metadata_csum
# is on in Debian's mke2fs.conf), a soft dependency that modinfo omits
ext4mods="crc16 mbcache jbd2 crc32c_generic ext4"
for m in $mods $ext4mods; do
    mod "$m"
done

# e2fsprogs from the host (mke2fs, e2fsck), with the shared libraries and
# the loader they need, at the same paths as on the host
for b in mke2fs e2fsck; do
    cp /sbin/$b "$root/sbin/$b"
    ldd /sbin/$b |
        sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'
done | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
ln -s mke2fs "$root/sbin/mkfs.ext4"
cp /etc/mke2fs.conf "$root/etc/mke2fs.conf"
# mke2fs and e2fsck look here for what is mounted
ln -s /proc/mounts "$root/etc/mtab"

# The tree that mode ext4-copy copies over and over, the same in every boot
# (so that ext4-check verifies copies against its manifest /src.md5): the
# initramfs's own libraries and modules, busybox, and 300 files of mixed
# sizes (empty to 1 MiB, half random, half text) in nested directories:
# ~16 MiB in ~320 files.
mkdir -p "$root/src"
cp -a "$root/lib" "$root/sbin" "$root/src/"
cp "$root/bin/busybox" "$root/src/busybox"
python3 - "$root/src/gen" <<'PY' || die "cannot generate the copy tree"
import os, random, sys
rng = random.Random(4)
top = sys.argv[1]
words = [b'lsvd', b'journal', b'object', b'extent', b'batch', b'flush',
         b'ext4', b'inode', b'prefix', b'crash', b'\n']
for i in range(300):
    d = os.path.join(top, 'd%02d' % (i % 23), 'e%d' % (i % 3))
    os.makedirs(d, exist_ok=True)
    r = rng.random()
    size = (rng.randrange(0, 4096) if r < 0.6 else
            rng.randrange(4096, 48 << 10) if r < 0.98 else
            rng.randrange(256 << 10, 1 << 20))
    if i % 2:
        data = rng.randbytes(size)
    else:
        data = b' '.join(rng.choice(words) for _ in range(size // 5 + 1))
    open(os.path.join(d, 'f%03d' % i), 'wb').write(data[:size])
    if i % 50 == 0:
        os.symlink('f%03d' % i, os.path.join(d, 'l%03d' % i))
PY
(cd "$root/src" && find . -type f | sort | xargs md5sum) > "$root/src.md5"

{
    echo '#!/bin/busybox sh'
    echo "mods=\"$mods\""
    echo "ext4mods=\"$ext4mods\""
    cat <<'EOF'
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $mods; do
    insmod /lib/modules/$m.ko || echo "GUEST: insmod $m failed"
done
mode=$(sed -n 's/.*lsvdtest=\([a-z0-9-]*\).*/\1/p' /proc/cmdline)

ext4_load() {
    for m in $ext4mods; do
        insmod /lib/modules/$m.ko || echo "GUEST: insmod $m failed"
    done
}

# Format vda, then copy /src into d1, d2, ... until the host kills us.
# Two rounds of three end with a sync and then a marker done.N (which the
# next sync covers): a marker that survives says its copy is complete.
# From round 5 on, the copy four rounds back is deleted (marker first), so
# that the disk never fills and deletes are part of the mix.
ext4_copy() {
    ext4_load
    mkfs.ext4 -q -F /dev/vda || { echo "GUEST: mkfs failed"; return; }
    mount -t ext4 /dev/vda /mnt || { echo "GUEST: mount failed"; return; }
    n=1
    while :; do
        echo "GUEST: copying $n"
        cp -a /src /mnt/d$n || echo "GUEST: cp $n failed"
        if [ $((n % 3)) -ne 0 ]; then
            sync
            echo "GUEST: synced $n"
            echo $n > /mnt/done.$n
        fi
        echo "GUEST: copied $n"
        if [ $n -gt 4 ]; then
            rm -f /mnt/done.$((n - 4))
            rm -rf /mnt/d$((n - 4))
        fi
        n=$((n + 1))
    done
}

# After a crash: mounting replays ext4's journal, which e2fsck -n cannot
# do (read-only, it only reports that the journal needs recovery), so
# mount first, count, verify the marked copies, unmount, then e2fsck -fn.
ext4_check() {
    ext4_load
    if ! mount -t ext4 /dev/vda /mnt; then
        echo "GUEST: mount failed"
    else
        echo "GUEST: mounted"
        # did the crash leave ext4 a journal to replay?
        if dmesg | grep -q "EXT4-fs (vda): recovery complete"; then
            echo "GUEST: ext4 journal replayed"
        fi
        echo "GUEST: files $(find /mnt -type f | wc -l)"
        echo "GUEST: in /mnt:" $(ls /mnt)
        good=0 bad=0
        for m in /mnt/done.*; do
            [ -f "$m" ] || continue
            n=${m##*.}
            if (cd /mnt/d$n && md5sum -c -s /src.md5); then
                good=$((good + 1))
            else
                bad=$((bad + 1))
                echo "GUEST: copy $n differs from /src"
            fi
        done
        echo "GUEST: verified $good copies, $bad bad"
        # the copy the host saw synced, if it says so
        n=$(sed -n 's/.*lsvdsynced=\([0-9]*\).*/\1/p' /proc/cmdline)
        if [ -n "$n" ]; then
            if [ -d /mnt/d$n ] && (cd /mnt/d$n && md5sum -c -s /src.md5); then
                echo "GUEST: synced copy $n complete"
            else
                echo "GUEST: synced copy $n lost"
            fi
        fi
        umount /mnt && echo "GUEST: unmounted"
    fi
    e2fsck -fn /dev/vda 2>&1
    echo "GUEST: fsck $?"
}

i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -b /dev/vda ]; then
    echo "GUEST: vda $(cat /sys/block/vda/size)"
    case $mode in
    ext4-copy) ext4_copy ;;
    ext4-check) ext4_check ;;
    *)
        echo "GUEST: md5 $(dd if=/dev/vda bs=1M count=8 2>/dev/null | md5sum | cut -d' ' -f1)"
        if [ "$mode" = write ]; then
            dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\000' k |
                dd of=/dev/vda bs=4096 seek=2048 conv=fsync 2>/dev/null &&
                sync && echo "GUEST: wrote"
        fi
        ;;
    esac
else
    echo "GUEST: no vda"
fi
echo "GUEST: done"
poweroff -f
EOF
} > "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | sort | cpio -o -H newc --quiet) > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"

rm -rf "$dl/x" "$dl/root"
echo "$want" > "$stamp"
echo "guest.sh: $out/vmlinux ($kpkg), $out/initrd.img"
