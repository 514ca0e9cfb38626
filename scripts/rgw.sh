#!/usr/bin/env bash
# Single-node Ceph cluster (1 mon, 1 memstore OSD) + radosgw on 127.0.0.1,
# for the S3 backend's tests.  No systemd; every daemon is started here and
# tracked by a PID file under the state directory.
#
#   scripts/rgw.sh start [DIR]   start (no-op if already running); writes DIR/env, DIR/lsvd.conf
#   scripts/rgw.sh stop [DIR]    stop the daemons started by `start`, remove DIR
#   scripts/rgw.sh status [DIR]  show what is running
#   scripts/rgw.sh selftest      start, signed PUT/ranged GET/LIST/DELETE, bad-secret 403, stop
#
# DIR defaults to build/rgw in the repository (build/ is git-ignored).
# RGW_MEMSTORE_BYTES: the OSD's RAM store (default 2 GiB; make bench
# writes several GiB and takes 8).
# See docs/testing-s3.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKGS=(ceph-mon ceph-osd radosgw ceph-common)   # ceph-mgr is not needed by RGW
ACCESS_KEY=LSVDTESTACCESSKEY000
SECRET_KEY=lsvdTestSecretKey0000000000000000000000
BUCKET=lsvd-test
REGION=us-east-1
RGW_UID=lsvd-test

die() { echo "rgw.sh: $*" >&2; exit 1; }
log() { echo "rgw.sh: $*" >&2; }

# ---------------------------------------------------------------- packages
install_pkgs() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        { "${sudo[@]}" apt-get update -qq &&
          "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
        die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------- helpers
# Is 127.0.0.1:$1 free to bind?
port_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons do: TIME_WAIT is not "in use"
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# First free port at or above $1 (tries 200).
pick_port() {
    local p=$1 i
    for ((i = 0; i < 200; i++, p++)); do
        port_free "$p" && { echo "$p"; return 0; }
    done
    die "no free port near $1"
}

# PID from DIR/run/NAME.pid if that process is alive and is one of ours
# (its command line names our ceph.conf).
our_pid() {
    local f=$D/run/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$D/ceph.conf" || return 1
    echo "$pid"
}

ceph_cli() { timeout 20 ceph -c "$D/ceph.conf" --connect-timeout 10 "$@"; }

# Signed S3 request (SigV4, python3 stdlib).
#   s3 METHOD PATH [QUERY] [BODYFILE|-] [HEADER:VALUE...]
# Prints the HTTP status on the first line, then the response body.
# Uses ENDPOINT, AK, SK, REGION from the environment.
s3() {
    python3 -c '
import sys, os, hmac, hashlib, datetime, urllib.parse, http.client
method, path = sys.argv[1], sys.argv[2]
query = sys.argv[3] if len(sys.argv) > 3 else ""
bodyf = sys.argv[4] if len(sys.argv) > 4 else "-"
extra = sys.argv[5:]
ep = urllib.parse.urlparse(os.environ["ENDPOINT"])
ak, sk, region = os.environ["AK"], os.environ["SK"], os.environ["REGION"]
body = b"" if bodyf in ("-", "") else open(bodyf, "rb").read()
now = datetime.datetime.now(datetime.timezone.utc)
amzdate, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
phash = hashlib.sha256(body).hexdigest()
hdrs = {"host": ep.netloc, "x-amz-date": amzdate, "x-amz-content-sha256": phash}
for h in extra:
    k, v = h.split(":", 1)
    hdrs[k.strip().lower()] = v.strip()
q = urllib.parse.parse_qsl(query, keep_blank_values=True)
cq = "&".join(urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~") for k, v in sorted(q))
cpath = urllib.parse.quote(path, safe="/-_.~")
names = sorted(hdrs)
creq = "\n".join([method, cpath, cq] + [n + ":" + hdrs[n] for n in names] + ["", ";".join(names), phash])
scope = f"{day}/{region}/s3/aws4_request"
sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(creq.encode()).hexdigest()])
k = ("AWS4" + sk).encode()
for part in (day, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
sh = ";".join(names)
hdrs["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={sh}, Signature={sig}"
c = http.client.HTTPConnection(ep.hostname, ep.port, timeout=30)
c.request(method, cpath + ("?" + cq if cq else ""), body=body, headers=hdrs)
r = c.getresponse()
data = r.read()
sys.stdout.write(f"{r.status}\n")
sys.stdout.flush()
sys.stdout.buffer.write(data)
' "$@"
}

rgw_answers() { curl -s -m 2 -o /dev/null "http://127.0.0.1:$1/"; }

# ---------------------------------------------------------------- commands
do_status() {
    [ -f "$D/ceph.conf" ] || { echo "not running (no $D/ceph.conf)"; return 1; }
    local n pid rc=0
    for n in mon.a osd.0 client.rgw.a; do
        if pid=$(our_pid "$n"); then
            printf '%-13s pid %-7s rss %s\n' "$n" "$pid" "$(awk '/VmRSS/{print $2 " " $3}' "/proc/$pid/status")"
        else
            printf '%-13s not running\n' "$n"; rc=1
        fi
    done
    if [ -f "$D/env" ]; then
        # shellcheck disable=SC1091
        . "$D/env"
        if rgw_answers "${RGW_ENDPOINT##*:}"; then echo "rgw answers at $RGW_ENDPOINT (bucket $RGW_BUCKET)"
        else echo "rgw does not answer at $RGW_ENDPOINT"; rc=1; fi
    else
        echo "no $D/env (start did not finish)"; rc=1
    fi
    return $rc
}

kill_daemons() {
    local n pid pids=() i
    for n in client.rgw.a osd.0 mon.a; do
        if pid=$(our_pid "$n"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ ${#pids[@]} -gt 0 ]; then log "stopped pids ${pids[*]}"; fi
}

do_stop() {
    kill_daemons
    # Remove the state only if it looks like ours.
    if [ -d "$D" ]; then
        if [ -f "$D/ceph.conf" ] || [ -z "$(ls -A "$D")" ]; then
            rm -rf "$D"
        else
            die "$D does not look like an rgw.sh state dir; not removing it"
        fi
    fi
}

wait_for() { # SECONDS DESCRIPTION COMMAND...
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "timed out after ${secs}s waiting for $what (logs in $D/log)"
}

osd_up() { ceph_cli osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

do_start() {
    if do_status >/dev/null 2>&1; then
        log "already running in $D"
        do_status
        return 0
    fi
    install_pkgs
    local t0=$SECONDS
    # Leftovers of a half-started or crashed cluster: clean them up first.
    do_stop
    mkdir -p "$D"/{run,log,mon,osd,rgw,cache}
    # A failed start leaves nothing running (but keeps DIR/log for a look).
    trap 'kill_daemons; log "start failed; logs kept in $D/log"' EXIT

    local mon_port rgw_port fsid osd_uuid
    mon_port=$(pick_port 3300)
    rgw_port=$(pick_port 7480)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)

    cat >"$D/ceph.conf" <<EOF
# Generated by scripts/rgw.sh: single-node test cluster, everything on 127.0.0.1.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
auth allow insecure global id reclaim = false
run dir = $D/run
pid file = $D/run/\$name.pid
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
keyring = $D/keyring
osd objectstore = memstore
memstore device bytes = ${RGW_MEMSTORE_BYTES:-2147483648}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
mon max pg per osd = 1000
crash dir = $D/log
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $D/rgw
EOF

    # cephx, with every key in one keyring that all daemons read (test cluster).
    ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
        --cap mgr 'allow *' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$D/monmap" >/dev/null
    ceph-mon -c "$D/ceph.conf" -i a --mkfs --monmap "$D/monmap" --keyring "$D/keyring" 2>"$D/log/mkfs-mon.err" ||
        die "ceph-mon --mkfs failed: $(cat "$D/log/mkfs-mon.err")"
    timeout 60 ceph-mon -c "$D/ceph.conf" -i a || die "ceph-mon failed to start (see $D/log)"
    wait_for 30 "mon" ceph_cli mon stat

    local id osd_key
    osd_key=$(ceph-authtool --gen-print-key)
    ceph-authtool "$D/keyring" -n osd.0 --add-key "$osd_key" >/dev/null
    id=$(echo "{\"cephx_secret\": \"$osd_key\"}" | ceph_cli osd new "$osd_uuid" -i -) || die "ceph osd new failed"
    [ "$id" = 0 ] || die "unexpected OSD id $id"
    mkdir -p "$D/osd/ceph-0"
    ceph-osd -c "$D/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" --no-mon-config \
        >"$D/log/mkfs-osd.out" 2>&1 || die "ceph-osd --mkfs failed: $(cat "$D/log/mkfs-osd.out")"
    timeout 60 ceph-osd -c "$D/ceph.conf" -i 0 2>>"$D/log/osd-start.err" || die "ceph-osd failed to start (see $D/log)"
    wait_for 60 "osd.0 up" osd_up

    ceph_cli auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' >>"$D/keyring" ||
        die "ceph auth get-or-create client.rgw.a failed"
    timeout 60 radosgw -c "$D/ceph.conf" -n client.rgw.a || die "radosgw failed to start (see $D/log)"
    wait_for 60 "radosgw on 127.0.0.1:$rgw_port" rgw_answers "$rgw_port"

    timeout 60 radosgw-admin -c "$D/ceph.conf" user create --uid "$RGW_UID" --display-name "LSVD tests" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >"$D/log/user-create.json" 2>"$D/log/user-create.err" ||
        die "radosgw-admin user create failed: $(cat "$D/log/user-create.err")"

    local out
    out=$(ENDPOINT=http://127.0.0.1:$rgw_port AK=$ACCESS_KEY SK=$SECRET_KEY REGION=$REGION s3 PUT "/$BUCKET")
    [ "${out%%$'\n'*}" = 200 ] || die "bucket create failed: $out"

    cat >"$D/env" <<EOF
# Generated by scripts/rgw.sh start
export RGW_ENDPOINT=http://127.0.0.1:$rgw_port
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export RGW_BUCKET=$BUCKET
export RGW_REGION=$REGION
export CEPH_CONF=$D/ceph.conf
EOF
    cat >"$D/lsvd.conf" <<EOF
[backend]
url = s3://$BUCKET/lsvd
endpoint = http://127.0.0.1:$rgw_port
region = $REGION
access_key_id = $ACCESS_KEY
secret_access_key = $SECRET_KEY
[cache]
dir = $D/cache
size = 256M
EOF
    trap - EXIT
    log "started in $((SECONDS - t0)) s"
    echo "state:    $D"
    echo "endpoint: http://127.0.0.1:$rgw_port  bucket: $BUCKET  mon: 127.0.0.1:$mon_port"
    echo "env:      . $D/env"
    echo "config:   $D/lsvd.conf"
    echo "logs:     $D/log"
    do_status
}

check() { # DESCRIPTION EXPECTED-STATUS OUTPUT
    local st=${3%%$'\n'*}
    if [ "$st" = "$2" ]; then echo "ok   $1 ($st)"
    else echo "FAIL $1: expected $2, got: $3"; FAILED=1; fi
}

do_selftest() {
    FAILED=0
    do_start
    # shellcheck disable=SC1091
    . "$D/env"
    export ENDPOINT=$RGW_ENDPOINT AK=$AWS_ACCESS_KEY_ID SK=$AWS_SECRET_ACCESS_KEY REGION=$RGW_REGION
    local tmp out body key=selftest/obj-1
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    head -c 100000 /dev/urandom >"$tmp/obj"

    out=$(s3 PUT "/$RGW_BUCKET/$key" "" "$tmp/obj"); check "PUT 100000 bytes" 200 "$out"
    s3 GET "/$RGW_BUCKET/$key" "" - "Range: bytes=1000-1999" >"$tmp/range"
    check "ranged GET" 206 "$(head -n 1 "$tmp/range")"
    body=$(tail -c +5 "$tmp/range" | sha256sum)
    if [ "$body" = "$(tail -c +1001 "$tmp/obj" | head -c 1000 | sha256sum)" ]; then echo "ok   ranged GET content matches"
    else echo "FAIL ranged GET content differs"; FAILED=1; fi
    out=$(s3 GET "/$RGW_BUCKET" "list-type=2&prefix=selftest/"); check "LIST" 200 "$out"
    if grep -q "<Key>$key</Key>" <<<"$out"; then echo "ok   LIST shows $key"
    else echo "FAIL LIST does not show $key: $out"; FAILED=1; fi
    out=$(SK=wrong-secret s3 GET "/$RGW_BUCKET/$key"); check "GET with wrong secret rejected" 403 "$out"
    out=$(s3 PUT "/$RGW_BUCKET/$key" "" "$tmp/obj" "If-None-Match: *"); check "PUT If-None-Match: * on existing key" 412 "$out"
    out=$(s3 DELETE "/$RGW_BUCKET/$key"); check "DELETE" 204 "$out"
    out=$(s3 GET "/$RGW_BUCKET/$key"); check "GET after DELETE" 404 "$out"
    # curl --aws-sigv4 works too if x-amz-content-sha256 is added by hand.
    out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$RGW_REGION:s3" \
        --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$RGW_ENDPOINT/$RGW_BUCKET/")
    check "curl --aws-sigv4 LIST" 200 "$out"
    do_status || FAILED=1
    do_stop
    if [ "$FAILED" = 0 ]; then echo "selftest: PASS"; else echo "selftest: FAIL"; return 1; fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
[ $# -le 1 ] || die "too many arguments"
D=$(realpath -m "${1:-$ROOT/build/rgw}")
case $cmd in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
selftest)
    [ $# -eq 0 ] || die "selftest takes no DIR (it uses $ROOT/build/rgw-selftest)"
    D=$ROOT/build/rgw-selftest
    do_selftest ;;
*) echo "usage: $0 start|stop|status [DIR] | selftest" >&2; exit 2 ;;
esac
