#!/usr/bin/env bash
# Build QEMU with the lsvd block driver.
#
#   scripts/build-qemu.sh
#
# 1. fetches QEMU's Debian source into build/qemu-src (scripts/fetch-qemu.sh);
# 2. applies qemu-patches/*.patch with patch -p1, once: the tree records a
#    hash of the series, and a tree patched with another series (or left
#    half-patched) is fetched again from scratch before the new series goes on;
# 3. links block/lsvd.c of this repository into the tree as block/lsvd.c, and
#    the tests in qemu-iotests/ into tests/qemu-iotests/tests/;
# 4. configures build/qemu-build against the installed core
#    (build/prefix/lib/pkgconfig/lsvd.pc; LSVD_PREFIX overrides build/prefix),
#    again only when the configure options changed;
# 5. builds qemu-img, qemu-io, qemu-nbd, qemu-storage-daemon and
#    qemu-system-x86_64 with ninja (through ccache when it is installed).
#
# Idempotent: a second run with nothing changed only runs ninja.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
src="$top/build/qemu-src"
bld="$top/build/qemu-build"
patches="$top/qemu-patches"
prefix="${LSVD_PREFIX:-$top/build/prefix}"
pcdir="$prefix/lib/pkgconfig"
patch_stamp="$src/.lsvd-patches"
conf_stamp="$bld/.lsvd-configure"

step="starting"
trap 'echo "build-qemu: FAILED while $step" >&2' ERR

die() {
    echo "build-qemu: error: $*" >&2
    exit 1
}

# --- prerequisites -----------------------------------------------------------

step="checking prerequisites"
for tool in patch ninja meson pkg-config sha256sum; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed (see scripts/setup-deps.sh)"
done
[ -f "$pcdir/lsvd.pc" ] ||
    die "the lsvd core is not installed: $pcdir/lsvd.pc is missing.
Build and install it first (make core), or by hand:
  meson setup build/core --prefix=\$PWD/build/prefix --libdir=lib -Ddefault_library=static
  ninja -C build/core install"
PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
pkg-config --exists --print-errors lsvd ||
    die "pkg-config cannot use $pcdir/lsvd.pc (missing Requires?)"

shopt -s nullglob
series=("$patches"/*.patch)
shopt -u nullglob
[ ${#series[@]} -gt 0 ] || die "no patches in $patches"
series_hash=$(cd "$patches" && sha256sum -- *.patch | sha256sum | cut -d' ' -f1)

# --- source tree --------------------------------------------------------------

step="fetching the QEMU source"
if [ -d "$src" ] && [ "$(cat "$patch_stamp" 2>/dev/null)" != "$series_hash" ] &&
   [ -e "$patch_stamp" ]; then
    # Patched with another series, or a previous application failed midway:
    # start again from a pristine tree.
    echo "build-qemu: qemu-patches/ changed since $src was patched; fetching a pristine tree"
    rm -rf "$src"
fi
"$top/scripts/fetch-qemu.sh"
[ -f "$src/configure" ] || die "$src does not hold a QEMU source tree"

if [ "$(cat "$patch_stamp" 2>/dev/null)" != "$series_hash" ]; then
    step="applying qemu-patches/ to $src"
    echo "in-progress" > "$patch_stamp"
    for p in "${series[@]}"; do
        echo "build-qemu: applying $(basename "$p")"
        if ! patch -p1 -s --forward --force --fuzz=0 --no-backup-if-mismatch -d "$src" < "$p"; then
            die "$(basename "$p") does not apply to $src.
The tree is marked as half-patched; the next run fetches it again."
        fi
    done
    echo "$series_hash" > "$patch_stamp"
fi

step="linking block/lsvd.c into the tree"
[ -f "$top/block/lsvd.c" ] || die "$top/block/lsvd.c is missing"
# A relative link keeps working if the repository moves.
ln -sfn ../../../block/lsvd.c "$src/block/lsvd.c"
[ -e "$src/block/lsvd.c" ] || die "dangling link $src/block/lsvd.c"

# Our iotests; run them in build/qemu-build/tests/qemu-iotests with
#   ./check -lsvd -raw lsvd-basic
step="linking qemu-iotests/ into the tree"
for t in "$top"/qemu-iotests/*; do
    [ -f "$t" ] || continue
    link="$src/tests/qemu-iotests/tests/$(basename "$t")"
    ln -sfn "../../../../../qemu-iotests/$(basename "$t")" "$link"
    [ -e "$link" ] || die "dangling link $link"
done

# --- configure ----------------------------------------------------------------

cc=gcc
cxx=g++
if command -v ccache >/dev/null; then
    cc="ccache gcc"
    cxx="ccache g++"
    # paths relative to the repository in ccache's hashes, so that another
    # clone (CI's) hits the cache too
    export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=true
fi
configure_args=(
    "--cc=$cc"
    "--cxx=$cxx"
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-tools
    --enable-kvm
    --enable-linux-io-uring
    --enable-slirp
    # the storage daemon's exports (docs/qemu.md): FUSE, and vhost-user-blk
    # (its server, and vhost-user-blk-pci in qemu-system-x86_64)
    --enable-fuse
    --enable-vhost-user
    --enable-vhost-user-blk-server
    # the firmware of Debian's seabios and qemu-system-data (7.2, the same
    # QEMU): without it qemu-system-x86_64 finds no BIOS to start a guest
    --firmwarepath=/usr/share/qemu:/usr/share/seabios
    --disable-docs
    --disable-user
    --enable-lsvd
    --enable-werror
)
# QEMU's meson caches the lsvd dependency it found: when the library's
# link line changes (a new dependency), configure again
fingerprint=$(printf '%s\n' "PKG_CONFIG_PATH=$PKG_CONFIG_PATH" "${configure_args[@]}" \
              "$(pkg-config --libs --static lsvd 2>/dev/null)")

if [ ! -f "$bld/build.ninja" ] || [ "$(cat "$conf_stamp" 2>/dev/null)" != "$fingerprint" ]; then
    step="configuring QEMU in $bld"
    rm -rf "$bld"
    mkdir -p "$bld"
    echo "build-qemu: configuring in $bld (log: $bld/configure.log)"
    if ! (cd "$bld" && "$src/configure" "${configure_args[@]}") > "$bld/configure.log" 2>&1; then
        tail -n 30 "$bld/configure.log" >&2
        die "configure failed; see $bld/configure.log"
    fi
    grep -q "^#define CONFIG_LSVD" "$bld/config-host.h" ||
        die "configure did not enable the lsvd driver; see $bld/configure.log"
    grep -q "^#define CONFIG_FUSE" "$bld/config-host.h" ||
        die "configure did not enable FUSE exports (libfuse3-dev); see $bld/configure.log"
    grep -q "^#define CONFIG_VHOST_USER_BLK_SERVER" "$bld/config-host.h" ||
        die "configure did not enable the vhost-user-blk server; see $bld/configure.log"
    echo "$fingerprint" > "$conf_stamp"
fi

# --- build ----------------------------------------------------------------------

step="building QEMU"
targets=(qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon
         qemu-system-x86_64)
# ninja does not know that the binaries depend on liblsvd.a (it comes in
# as -llsvd): when the library changes, remove them so they are relinked
lib_stamp="$bld/.lsvd-lib"
lib_hash=$(cat "$prefix/lib/liblsvd.a" "$pcdir/lsvd.pc" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$lib_stamp" 2>/dev/null)" != "$lib_hash" ]; then
    for t in "${targets[@]}"; do
        rm -f "$bld/$t"
    done
fi
ninja -C "$bld" "${targets[@]}"
echo "$lib_hash" > "$lib_stamp"

# Run from the build tree, QEMU looks for the --firmwarepath directories
# relocated under qemu-bundle/ (where an uninstalled build keeps its data):
# link them there, so that qemu-system-x86_64 finds its BIOS and option ROMs
step="linking the firmware into qemu-bundle/"
for d in /usr/share/qemu /usr/share/seabios; do
    mkdir -p "$bld/qemu-bundle$(dirname "$d")"
    ln -sfn "$d" "$bld/qemu-bundle$d"
done
trap - ERR

echo "build-qemu: done; binaries:"
for t in "${targets[@]}"; do
    echo "  $bld/$t"
done
