#!/usr/bin/env bash
# Benchmarks (make bench).  Each writes what it measured, with the command
# and the machine, to docs/bench/NAME.txt.
#
#   extmap   bytes per extent and ns per operation of the extent map
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out="$top/docs/bench"
mkdir -p "$out" build/bench

header() {
    echo "# $1"
    echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
    echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
    echo "# command: $2"
}

cmd="gcc -O2 -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \$(pkg-config --cflags --libs glib-2.0) && ./extmap-bench 1000000"
# shellcheck disable=SC2046
gcc -O2 -Wall -Ilsvd-core/src bench/extmap-bench.c lsvd-core/src/extmap.c \
    $(pkg-config --cflags --libs glib-2.0) -o build/bench/extmap-bench
{
    header "extent map (lsvd-core/src/extmap.c)" "$cmd"
    build/bench/extmap-bench 1000000
} | tee "$out/extmap.txt"
echo "bench: results in docs/bench/"
