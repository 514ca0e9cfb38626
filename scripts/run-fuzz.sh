#!/bin/bash
# run-fuzz.sh - build the libFuzzer targets in tests/fuzz/ and run each one.
#
#   scripts/run-fuzz.sh [SECONDS]      (default 10 seconds per target)
#
# Each target is compiled with clang straight from the lsvd-core sources it
# needs, with -fsanitize=fuzzer,address,undefined (UB is fatal), into
# build/fuzz/.  A seed corpus of valid encoded structures is written by
# tests/fuzz/fuzz-seeds.c into build/fuzz/corpus-NAME (which also keeps
# what the fuzzer finds, across runs).  Crash inputs are saved as
# build/fuzz/NAME-crash-* (or -leak-, -timeout-, -oom-), logs as
# build/fuzz/fuzz-NAME.log.  The exit status is non-zero if any target
# crashed, leaked or failed to build; 77 (skip) if clang's libFuzzer is
# missing.
#
# Environment: CLANG (default clang), FUZZ_OUT (default build/fuzz),
# FUZZ_TARGETS (default: all), FUZZ_JOBS (parallel targets, default 1).

set -euo pipefail

secs=${1:-10}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$top/build/fuzz}
cc=${CLANG:-clang}
src=$top/lsvd-core/src
targets=${FUZZ_TARGETS:-"obj-header super ckpt journal jmap config names rcmap s3xml faultfs"}

case $secs in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run-fuzz: $cc not found; skipping" >&2
    exit 77
fi

mkdir -p "$out"
probe=$out/.probe
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)'\
'{ (void)d; (void)n; return 0; }\n' > "$probe.c"
if ! "$cc" -fsanitize=fuzzer "$probe.c" -o "$probe" 2>/dev/null; then
    echo "run-fuzz: $cc has no libFuzzer; skipping" >&2
    exit 77
fi
rm -f "$probe" "$probe.c"

pkgs="glib-2.0 liblz4 libisal liburing libcrypto libcurl"
# shellcheck disable=SC2086
cflags="-g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE
        -Wall -Wextra -Wno-missing-field-initializers
        -I$top/lsvd-core/include -I$src -I$top/tests/faultfs
        $(pkg-config --cflags $pkgs)"
# shellcheck disable=SC2086
libs="$(pkg-config --libs $pkgs) -lpthread"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all"

# The lsvd-core sources each target needs.
sources_for() {
    case $1 in
        obj-header|super|ckpt|journal|jmap|rcmap) echo "$src/format.c $src/util.c" ;;
        config) echo "$src/config.c $src/util.c" ;;
        s3xml) echo "$src/s3xml.c" ;;
        # the control commands of the test filesystem tests/faultfs
        faultfs) echo "$top/tests/faultfs/faultfs-rule.c" ;;
        # lsvd_name_valid() lives in volume.c, which needs every layer
        names) echo "$src"/*.c ;;
        *) echo "run-fuzz: unknown target $1" >&2; return 1 ;;
    esac
}

echo "run-fuzz: building in $out"
# shellcheck disable=SC2086
"$cc" $cflags $sanitize "$top/tests/fuzz/fuzz-seeds.c" $(sources_for super) \
    $libs -o "$out/fuzz-seeds"
"$out/fuzz-seeds" "$out"
# shellcheck disable=SC2086
"$cc" $cflags $sanitize "$top/tests/faultfs/faultfs-seeds.c" \
    $(sources_for faultfs) $libs -o "$out/faultfs-seeds"
mkdir -p "$out/corpus-faultfs"
"$out/faultfs-seeds" "$out/corpus-faultfs"

for t in $targets; do
    # shellcheck disable=SC2046,SC2086
    "$cc" $cflags $sanitize -fsanitize=fuzzer "$top/tests/fuzz/fuzz-$t.c" \
        $(sources_for "$t") $libs -o "$out/fuzz-$t"
done

run_one() {
    local t=$1 log=$out/fuzz-$1.log rc=0

    G_SLICE=always-malloc \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$out/fuzz-$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/$t-" \
        "$out/corpus-$t" >"$log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        echo "run-fuzz: $t FAILED (exit $rc); log $log" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
    echo "run-fuzz: $t ok: $(grep -E '^stat::number_of_executed_units' \
        "$log" | awk '{print $2}') runs, corpus $(find "$out/corpus-$t" \
        -type f | wc -l) inputs"
}

failed=0
jobs=${FUZZ_JOBS:-1}
pids=()
for t in $targets; do
    if [ "$jobs" -gt 1 ]; then
        run_one "$t" & pids+=($!)
        if [ ${#pids[@]} -ge "$jobs" ]; then
            wait "${pids[0]}" || failed=1
            pids=("${pids[@]:1}")
        fi
    else
        run_one "$t" || failed=1
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || failed=1
done

if [ $failed -ne 0 ]; then
    echo "run-fuzz: FAILED" >&2
    exit 1
fi
echo "run-fuzz: all targets ran ${secs}s without a crash"
