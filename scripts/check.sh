#!/usr/bin/env bash
# Run the test suites and print one summary line: "N passed, N failed".
#
#   scripts/check.sh            every suite
#   scripts/check.sh SUITE...   some of: core asan s3 fuzz crash qemu
#
# core:  unit tests of lsvd-core (meson test, build/core), except suite s3
# asan:  the same under AddressSanitizer + UBSan (build/asan)
# s3:    meson suite s3 (build/core, then build/asan) and, once QEMU is
#        built, tests/qemu/test-s3.sh and tests/fault/test-s3-faults.sh
#        (faults injected by a proxy), against a single-node Ceph RGW on
#        127.0.0.1: scripts/rgw.sh start build/rgw-check (installs the
#        ceph packages if missing), LSVD_TEST_S3_CONF=build/rgw-check/
#        lsvd.conf, and the RGW is stopped again whatever happens
# fuzz:  every fuzz target for FUZZ_SECONDS (default 5) each
# crash: kill -9 at CRASH_POINTS (default 50) points per mode with the
#        library writer, then CRASH_NBD_POINTS (default 200) per mode
#        through qemu-storage-daemon over NBD on dir:// (once QEMU is
#        built); the s3 suite runs CRASH_S3_POINTS (default 200) per mode
#        through NBD on its RGW
# qemu:  tests/qemu/*.sh against the patched QEMU in build/qemu-build, then
#        QEMU's iotests with -lsvd -raw: ours (qemu-iotests/) and the
#        generic ones listed in qemu-iotests/generic.list; then with
#        -lsvd -qcow2 those listed in qemu-iotests/generic-qcow2.list
#
# Exit status: 0 only if nothing failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(core asan s3 fuzz crash qemu)

passed=0 failed=0 skipped=0
failures=()

# Add the counts from a `meson test` log.
count_meson() {
    local log=$1 name=$2 ok fail to skip
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
    fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
    to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
    skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
    if [ -z "$ok" ]; then
        failed=$((failed + 1)); failures+=("$name: meson test did not run")
        return
    fi
    passed=$((passed + ok)); skipped=$((skipped + ${skip:-0}))
    failed=$((failed + ${fail:-0} + ${to:-0}))
    if [ "${fail:-0}" != 0 ] || [ "${to:-0}" != 0 ]; then
        failures+=("$name: see $log")
    fi
}

# Configure (once) and build a meson build directory; a failure is counted
# and returns 1.
build_meson() {
    local name=$1 dir=$2; shift 2
    mkdir -p "$top/build"
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null || {
            failed=$((failed + 1)); failures+=("$name: meson setup failed")
            return 1; }
    fi
    if ! ninja -C "$dir" >"$top/build/$name-build.log" 2>&1; then
        tail -n 30 "$top/build/$name-build.log"
        failed=$((failed + 1)); failures+=("$name: build failed"); return 1
    fi
}

# meson test -C DIR ARGS..., logged to build/NAME-test.log and counted.
test_meson() {
    local name=$1 dir=$2; shift 2
    local log="$top/build/$name-test.log"
    echo "== $name: meson test -C $dir $*"
    meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$log" |
        grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):'
    count_meson "$log" "$name"
}

core_setup=(--prefix="$top/build/prefix" --libdir=lib -Ddefault_library=static)
asan_setup=(-Db_sanitize=address,undefined -Db_lundef=false
            --prefix="$top/build/prefix-asan" --libdir=lib
            -Ddefault_library=static)

# Run one test script (exit 0 pass, 77 skip, else fail), log in
# build/qemu-tests/.
run_script() {
    local t=$1 log rc
    log="build/qemu-tests/$(basename "$t" .sh).log"
    mkdir -p build/qemu-tests
    bash "$t" >"$log" 2>&1
    rc=$?
    case $rc in
    0) passed=$((passed + 1)); echo "ok   $t" ;;
    77) skipped=$((skipped + 1)); echo "skip $t ($(tail -n1 "$log"))" ;;
    *) failed=$((failed + 1)); failures+=("$t: see $log")
       echo "FAIL $t"; tail -n 20 "$log" | sed 's/^/    /' ;;
    esac
}

# QEMU's iotests: run_iotests FORMAT "TESTS" runs ./check -lsvd -FORMAT,
# logged to build/iotests-FORMAT.log, and counts passes and failures.
run_iotests() {
    local fmt=$1 list=$2 log p f n
    log=build/iotests-$fmt.log
    echo "== qemu iotests: check -lsvd -$fmt ($(echo $list | wc -w) tests)"
    # shellcheck disable=SC2086
    (cd "$iot" && PATH="$top/build/prefix/bin:$PATH" \
        ./check -lsvd -$fmt $list) >"$log" 2>&1
    p=$(grep -cE '^[^ ]+ +\.\.\. .* pass ' "$log")
    f=$(grep -cE '^[^ ]+ +\.\.\. .* fail ' "$log")
    n=$(grep -cE '^[^ ]+ +\.\.\. .* not run ' "$log")
    echo "iotests -$fmt: $p passed, $f failed, $n not run"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + n))
    if [ "$f" -ne 0 ] || [ "$p" -eq 0 ]; then
        [ "$p" -ne 0 ] || failed=$((failed + 1))
        grep -E 'fail|Failures' "$log" | head -n 20
        failures+=("iotests -$fmt: see $log")
    fi
}

# scripts/crash.sh ARGS..., logged to build/check-crash-NAME.log and
# counted: run_crash NAME ARGS...  (RGW_DIR passes through for s3)
run_crash() {
    local name=$1 log rc line
    shift
    log=build/check-crash-$name.log
    local env=()
    # through NBD, the settings of crash_nbd_env
    [[ " $* " != *" --transport nbd "* ]] || env=("${crash_nbd_env[@]}")
    echo "== crash: ${env[*]+${env[*]} }scripts/crash.sh $*"
    env "${env[@]+"${env[@]}"}" bash scripts/crash.sh "$@" >"$log" 2>&1
    rc=$?
    grep -E '^crash\((a|b)\): .*(violations|through NBD)|^crash: .* in [0-9]+ s' "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
    if [ -n "$line" ]; then
        passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
        failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
    fi
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        [ -n "$line" ] || failed=$((failed + 1))
        tail -n 30 "$log"
        failures+=("crash $name: see $log")
    fi
}
qsd_exe=build/qemu-build/storage-daemon/qemu-storage-daemon
# the NBD crash points: 8 per volume and kills within 300 ms, which keeps
# the 800 of them near 9 minutes (a volume's end costs a clean stop and,
# on s3, a removal)
crash_nbd_env=(CRASH_CHAIN="${CRASH_CHAIN:-8}" CRASH_MAX_MS="${CRASH_MAX_MS:-300}")

# The RGW of suite s3, stopped on every way out (failure, ^C, kill).
rgw_dir=
stop_rgw() {
    if [ -n "$rgw_dir" ]; then
        bash scripts/rgw.sh stop "$rgw_dir" >>build/s3-rgw.log 2>&1 ||
            echo "check.sh: scripts/rgw.sh stop $rgw_dir failed (see build/s3-rgw.log)" >&2
        rgw_dir=
    fi
}
trap stop_rgw EXIT
trap 'stop_rgw; exit 130' INT
trap 'stop_rgw; exit 143' TERM

for s in "${suites[@]}"; do
    case $s in
    core)
        build_meson core build/core "${core_setup[@]}" &&
            test_meson core build/core --no-suite s3
        ;;
    asan)
        build_meson asan build/asan "${asan_setup[@]}" &&
            test_meson asan build/asan --no-suite s3
        ;;
    s3)
        build_meson core build/core "${core_setup[@]}" || continue
        echo "== s3: scripts/rgw.sh start build/rgw-check"
        rgw_dir=$top/build/rgw-check
        if bash scripts/rgw.sh start "$rgw_dir" >build/s3-rgw.log 2>&1; then
            grep -E '^(rgw.sh: started|endpoint:)' build/s3-rgw.log
            export LSVD_TEST_S3_CONF=$rgw_dir/lsvd.conf
            test_meson s3 build/core --suite s3
            # under ASan + UBSan too: only here do the S3 paths run
            build_meson asan build/asan "${asan_setup[@]}" &&
                test_meson s3-asan build/asan --suite s3
            # QEMU on S3, when QEMU is built (make check builds it first)
            if [ -x build/qemu-build/qemu-img ]; then
                run_script tests/qemu/test-s3.sh
                # faults between lsvd and this RGW (tests/fault/s3proxy.py)
                run_script tests/fault/test-s3-faults.sh
            fi
            # crash points through qemu-storage-daemon on s3:// (a fresh
            # key prefix per mode, on this RGW)
            if [ -x "$qsd_exe" ]; then
                RGW_DIR=$rgw_dir run_crash nbd-s3 --transport nbd \
                    --backend s3 "${CRASH_S3_POINTS:-200}"
            fi
            unset LSVD_TEST_S3_CONF
        else
            # keep the daemons' logs: stopping removes the state directory
            rm -rf build/s3-rgw-logs
            [ -d "$rgw_dir/log" ] && cp -r "$rgw_dir/log" build/s3-rgw-logs
            tail -n 20 build/s3-rgw.log
            failed=$((failed + 1))
            failures+=("s3: RGW did not start: see build/s3-rgw.log and build/s3-rgw-logs/")
        fi
        stop_rgw
        ;;
    fuzz)
        echo "== fuzz: scripts/run-fuzz.sh ${FUZZ_SECONDS:-5}"
        if [ ! -f scripts/run-fuzz.sh ]; then
            failed=$((failed + 1)); failures+=("fuzz: scripts/run-fuzz.sh missing")
        elif bash scripts/run-fuzz.sh "${FUZZ_SECONDS:-5}" >build/fuzz.log 2>&1; then
            passed=$((passed + 1)); tail -n 5 build/fuzz.log
        else
            tail -n 40 build/fuzz.log
            failed=$((failed + 1)); failures+=("fuzz: see build/fuzz.log")
        fi
        ;;
    crash)
        run_crash lib "${CRASH_POINTS:-50}"
        if [ -x "$qsd_exe" ]; then
            run_crash nbd-dir --transport nbd "${CRASH_NBD_POINTS:-200}"
        else
            skipped=$((skipped + 1))
            echo "skip crash through NBD: no $qsd_exe (make qemu)"
        fi
        ;;
    qemu)
        for t in tests/qemu/test-*.sh; do
            # test-s3.sh needs the RGW of suite s3, which runs it
            [ "$t" = tests/qemu/test-s3.sh ] && continue
            run_script "$t"
        done
        iot="$top/build/qemu-build/tests/qemu-iotests"
        if [ -x "$iot/check" ]; then
            # shellcheck disable=SC2046
            list=$(cd qemu-iotests && ls | grep -v -e '\.' -e '^generic' ;
                   grep -v -e '^#' -e '^$' generic.list)
            run_iotests raw "$list"
            list=$(grep -v -e '^#' -e '^$' qemu-iotests/generic-qcow2.list)
            run_iotests qcow2 "$list"
        fi
        ;;
    *)
        echo "check.sh: unknown suite '$s'" >&2
        exit 2
        ;;
    esac
done

for f in "${failures[@]+"${failures[@]}"}"; do
    echo "failed: $f"
done
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
