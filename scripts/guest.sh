#!/usr/bin/env bash
# Build the tiny test guest: Debian's 6.1 kernel and a busybox initramfs
# whose init reads /dev/vda, prints what it saw on the serial console and
# powers off.  Used by tests/qemu/test-exports.sh and test-libvirt.sh.
#
#   scripts/guest.sh [DIR]        (DIR defaults to build/guest)
#
# Results, cached in DIR until this script or the kernel package changes:
#   DIR/vmlinux     the uncompressed kernel (an ELF with a PVH entry point:
#                   QEMU boots it with -kernel straight into 64-bit mode,
#                   without decompressing a bzImage under TCG)
#   DIR/initrd.img  busybox-static, the virtio modules, /init
#
# Boot it with -bios qboot.rom (qemu-system-data's, which our QEMU finds
# through --firmwarepath, see build-qemu.sh): about 4 s to poweroff on TCG.
#
# The kernel comes from `apt-get download` of the package that
# linux-image-amd64 depends on (nothing is installed); busybox-static, cpio
# and xz-utils come from scripts/setup-deps.sh.
#
# What /init does, on the kernel command line's word lsvdtest=MODE:
#   prints "GUEST: vda SECTORS" (the disk's size in 512-byte sectors) and
#   "GUEST: md5 HEX" (md5 of the disk's first 8 MiB); with MODE=write it then
#   writes 4 KiB of 'k' (0x6b) at 8 MiB, syncs and prints "GUEST: wrote";
#   finally "GUEST: done", and powers off.  A missing /dev/vda prints
#   "GUEST: no vda".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/guest}
mkdir -p "$out"

die() {
    echo "guest.sh: error: $*" >&2
    exit 1
}

for tool in apt-get apt-cache dpkg-deb cpio xz python3; do
    command -v "$tool" >/dev/null ||
        die "'$tool' is not installed (scripts/setup-deps.sh)"
done
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
    die "busybox-static is not installed (scripts/setup-deps.sh)"

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
want="$kpkg $(sha256sum "$0" | cut -d' ' -f1) $(sha256sum /bin/busybox | cut -d' ' -f1)"
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
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
cp /bin/busybox "$root/bin/busybox"
# Debian builds virtio, the PCI transport and virtio_blk as modules; in the
# order they depend on each other
mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
for m in $mods; do
    f=$(find "$dl/x/lib/modules/$kver/kernel/drivers" -name "$m.ko*" | head -n1)
    [ -n "$f" ] || die "$kpkg has no module $m"
    case $f in
    *.ko) cp "$f" "$root/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *) die "cannot unpack module $f" ;;
    esac
done

cat > "$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $mods; do
    insmod /lib/modules/\$m.ko || echo "GUEST: insmod \$m failed"
done
mode=\$(sed -n 's/.*lsvdtest=\([a-z]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do
    sleep 0.1
    i=\$((i + 1))
done
if [ -b /dev/vda ]; then
    echo "GUEST: vda \$(cat /sys/block/vda/size)"
    echo "GUEST: md5 \$(dd if=/dev/vda bs=1M count=8 2>/dev/null | md5sum | cut -d' ' -f1)"
    if [ "\$mode" = write ]; then
        dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\000' k |
            dd of=/dev/vda bs=4096 seek=2048 conv=fsync 2>/dev/null &&
            sync && echo "GUEST: wrote"
    fi
else
    echo "GUEST: no vda"
fi
echo "GUEST: done"
poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | sort | cpio -o -H newc --quiet) > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"

rm -rf "$dl/x" "$dl/root"
echo "$want" > "$stamp"
echo "guest.sh: $out/vmlinux ($kpkg), $out/initrd.img"
