# Sourced by tests/qemu/test-*.sh: paths to the patched QEMU's tools, a
# private store and cache per test (LSVD_CONF), and helpers.
# A test exits 0 on success, 77 to skip, anything else on failure.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
qb="$top/build/qemu-build"
QEMU_IMG="$qb/qemu-img"
QEMU_IO="$qb/qemu-io"
QEMU_NBD="$qb/qemu-nbd"
QSD="$qb/storage-daemon/qemu-storage-daemon"
LSVD="$top/build/prefix/bin/lsvd"

for b in "$QEMU_IMG" "$QEMU_IO" "$LSVD"; do
    if [ ! -x "$b" ]; then
        echo "missing $b: run 'make qemu' first"
        exit 77
    fi
done

T=$(mktemp -d /tmp/lsvd-test.XXXXXX)
# Background children to stop (stop_child) and commands to run after that
# (unmounts), on every way out.
cleanup_pids=()
cleanup_cmds=()
cleanup() {
    local p c
    for p in "${cleanup_pids[@]+"${cleanup_pids[@]}"}"; do
        stop_child "$p" 10 || true
    done
    for c in "${cleanup_cmds[@]+"${cleanup_cmds[@]}"}"; do
        eval "$c" || true
    done
    rm -rf "$T"
}
trap cleanup EXIT

# Stop a background child of this shell: SIGTERM, then up to SECONDS for it
# to exit, then SIGKILL.  Sets STOP_RC to its exit status; returns 1 if it
# had to be killed.  stop_child PID [SECONDS]
STOP_RC=
stop_child() {
    local pid=$1 secs=${2:-10} i=0 st
    STOP_RC=
    kill -TERM "$pid" 2>/dev/null || return 0
    while [ $i -lt $((secs * 10)) ]; do
        st=$(ps -o stat= -p "$pid" 2>/dev/null || true)
        # gone, or a zombie waiting for us to reap it
        [ -z "$st" ] || [ "${st#Z}" != "$st" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    if [ $i -ge $((secs * 10)) ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        STOP_RC=killed
        return 1
    fi
    wait "$pid" 2>/dev/null && STOP_RC=0 || STOP_RC=$?
    return 0
}

# Wait up to SECONDS for a command to succeed: wait_for SECONDS CMD...
wait_for() {
    local secs=$1 i=0
    shift
    until "$@"; do
        i=$((i + 1))
        [ $i -lt $((secs * 10)) ] || return 1
        sleep 0.1
    done
}

export LSVD_CONF="$T/lsvd.conf"
cat > "$LSVD_CONF" <<EOC
[backend]
url = dir://$T/store
[cache]
dir = $T/cache
size = 256M
[log]
batch_size = 1M
EOC

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Run a command that must fail with exactly one line on stderr that
# matches a pattern: expect_error PATTERN CMD...
expect_error() {
    local pat=$1 out rc lines
    shift
    set +e
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    set -e
    lines=$(printf '%s\n' "$out" | grep -c . || true)
    echo "\$ $*"
    echo "  -> rc=$rc: $out"
    [ "$rc" -ne 0 ] || fail "'$*' succeeded"
    [ "$lines" -eq 1 ] || fail "'$*' printed $lines lines, expected one"
    printf '%s\n' "$out" | grep -qE "$pat" || fail "'$*': '$out' !~ /$pat/"
}

# The same, for messages that QEMU itself prints (not always one line).
expect_failure() {
    local pat=$1 out rc
    shift
    set +e
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    set -e
    echo "\$ $*"
    echo "  -> rc=$rc: $out"
    [ "$rc" -ne 0 ] || fail "'$*' succeeded"
    printf '%s\n' "$out" | grep -qE "$pat" || fail "'$*': '$out' !~ /$pat/"
}

# A digest of everything in the store and cache: "touches no data" checks.
store_digest() {
    (cd "$T" && find store cache -type f 2>/dev/null | sort |
        xargs -r sha256sum) | sha256sum
}
