#!/usr/bin/env bash
# Fetch QEMU's Debian source package at the pinned version into build/qemu-src.
# Idempotent: a tree that is already there at the pinned version is kept.
# Adds a deb-src twin of /etc/apt/sources.list.d/debian.sources when needed.
set -euo pipefail

QEMU_DEB_VERSION="1:7.2+dfsg-7+deb12u18"      # pinned: patches are made against it
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/build/qemu-src"
stamp="$dest/.lsvd-debian-version"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$QEMU_DEB_VERSION" ]; then
    echo "fetch-qemu: $dest already holds qemu $QEMU_DEB_VERSION"
    exit 0
fi

src_list=/etc/apt/sources.list.d/lsvd-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
   ! grep -qs '^deb-src' /etc/apt/sources.list; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fetch-qemu: no deb-src entry; run as root to add one" >&2
        exit 1
    fi
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$src_list"
    apt-get update -qq
fi

versions=$(apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p' | sort -uV)
avail=$(printf '%s\n' "$versions" | tail -n1)
if ! printf '%s\n' "$versions" | grep -qxF "$QEMU_DEB_VERSION"; then
    echo "fetch-qemu: the archive does not serve qemu $QEMU_DEB_VERSION (newest offered: ${avail:-none})." >&2
    echo "fetch-qemu: qemu-patches/ are made against $QEMU_DEB_VERSION; refresh them and the pin together." >&2
    exit 1
fi

work="$top/build/qemu-fetch"
rm -rf "$work" "$dest"
mkdir -p "$work"
(cd "$work" && apt-get source -qq "qemu=$QEMU_DEB_VERSION" >/dev/null)
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n1)
[ -n "$tree" ] || { echo "fetch-qemu: apt-get source produced no tree" >&2; exit 1; }
mv "$tree" "$dest"
rm -rf "$work"
echo "$QEMU_DEB_VERSION" > "$stamp"
echo "fetch-qemu: qemu $QEMU_DEB_VERSION in $dest"
