#!/usr/bin/env bash
# Install, idempotently, every Debian package the build and the tests need.
# Run as root on Debian 12 (bookworm).  Never uses `apt-get build-dep qemu`:
# that pulls ~250 packages and removes libcurl4-openssl-dev.
set -euo pipefail

PKGS=(
    # toolchain and build system
    build-essential pkg-config meson ninja-build ccache python3 git dpkg-dev
    e2fsprogs
    # lsvd-core
    libglib2.0-dev liburing-dev liblz4-dev libcurl4-openssl-dev libssl-dev
    libisal-dev
    # the crash test's NBD client of qemu-storage-daemon (tests/crash)
    libnbd-dev
    # QEMU (tools + x86_64 system emulator), see shared ENVIRONMENT.md
    libpixman-1-dev zlib1g-dev libfdt-dev libslirp-dev
    # QEMU's FUSE export (qemu-storage-daemon --export type=fuse); fuse3
    # brings fusermount3, which unmounts a FUSE export that lost its daemon
    libfuse3-dev fuse3
    # firmware for qemu-system-x86_64 (seabios's bios-256k.bin, qboot.rom,
    # the option ROMs for -kernel): Debian's QEMU source has no prebuilt
    # pc-bios/ binaries; build-qemu.sh points --firmwarepath at these
    seabios qemu-system-data
    # test guests (scripts/guest.sh): busybox for the initramfs, cpio to
    # pack it, xz to unpack the kernel
    busybox-static cpio xz-utils
    # tests/qemu/test-libvirt.sh: libvirtd and virsh only (no
    # libvirt-daemon-system: no services, no system daemon started)
    libvirt-daemon libvirt-clients
    # tests: fuzzing (libFuzzer ships with clang)
    clang
    # make bench (scripts/bench.sh): fio (its nbd and rbd engines), the
    # report's plots, s3backer as a system to compare with; the Ceph
    # packages come with scripts/rgw.sh (no ceph-mgr: RBD and the OSD's
    # perf counters need none)
    fio gnuplot-nox s3backer
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-deps: all ${#PKGS[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-deps: missing packages (${missing[*]}); run as root" >&2
    exit 1
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
