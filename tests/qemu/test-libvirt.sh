#!/usr/bin/env bash
# An lsvd volume in libvirt domains: qemu-storage-daemon exports it, and a
# domain (TCG, direct kernel boot of the guest of scripts/guest.sh, our
# qemu-system-x86_64 as <emulator>) has it as its virtio disk vda, twice:
#   lsvd-nbd    <disk type='network'>, protocol 'nbd' on a unix socket; the
#               guest also writes 4 KiB, which qemu-io then finds in the volume
#   lsvd-vhost  <disk type='vhostuser'> (vhost-user-blk), RAM a shared memfd
# Each guest prints the md5 of the disk's first 8 MiB on its serial console
# (a file), which must match what qemu-img reads from the volume.
#
# libvirt: our own libvirtd, in session mode as user nobody, with its whole
# state (config, qemu.conf, sockets, logs, domain XML) under the test
# directory: as root, libvirtd would be the system daemon, whose paths
# (/etc/libvirt, /run/libvirt, /var/lib/libvirt) cannot be moved.  virsh runs
# as nobody too, as the session's own user would.  See "libvirt" in
# docs/qemu.md.
. "$(dirname "$0")/common.sh"

QEMU_SYSTEM="$qb/qemu-system-x86_64"
for b in "$QSD" "$QEMU_SYSTEM"; do
    [ -x "$b" ] || { echo "missing $b: run 'make qemu' first"; exit 77; }
done
for b in libvirtd virsh setpriv; do
    command -v "$b" >/dev/null ||
        { echo "no $b: install libvirt-daemon libvirt-clients (scripts/setup-deps.sh)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "needs root (to run libvirtd as nobody)"; exit 77; }
bash "$top/scripts/guest.sh" || { echo "scripts/guest.sh failed: no guest"; exit 77; }
guest="$top/build/guest"

# nobody must reach the guest files, the emulator and the test directory
for f in "$guest/vmlinux" "$guest/initrd.img" "$QEMU_SYSTEM"; do
    setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$f" ||
        { echo "user nobody cannot read $f"; exit 77; }
done
chmod 755 "$T"

# --- the volume and its NBD export ----------------------------------------------

"$QEMU_IMG" create -f raw lsvd:v 64M
"$QEMU_IO" -f raw -c 'write -P 0x5a 0 4M' -c 'write -P 0xa5 4M 4M' lsvd:v
"$QEMU_IMG" dd -f raw -O raw if=lsvd:v of="$T/head.raw" bs=1M count=8
want_md5=$(md5sum < "$T/head.raw" | cut -d' ' -f1)

sock="$T/nbd.sock"
vsock="$T/vhost.sock"
"$QSD" --blockdev driver=lsvd,volume=v,node-name=d0 \
    --nbd-server addr.type=unix,addr.path="$sock" \
    --export type=nbd,id=e0,node-name=d0,name=vol,writable=on \
    --export type=vhost-user-blk,id=e1,addr.type=unix,addr.path="$vsock",node-name=d0,writable=on \
    >"$T/qsd.log" 2>&1 &
qsd_pid=$!
cleanup_pids+=("$qsd_pid")
wait_for 20 test -S "$sock" || { cat "$T/qsd.log"; fail "no NBD socket"; }
wait_for 20 test -S "$vsock" || { cat "$T/qsd.log"; fail "no vhost-user socket"; }
# QEMU in the domain runs as nobody: let it connect
chmod 666 "$sock" "$vsock"

# --- a private libvirtd -----------------------------------------------------------

L="$T/libvirt"
mkdir -p "$L"/{home,config/libvirt,run,cache,data,log}
cat > "$L/config/libvirt/libvirtd.conf" <<EOF
# only the unix socket in \$XDG_RUNTIME_DIR/libvirt (session mode)
log_outputs = "3:file:$L/log/libvirtd.log"
EOF
cat > "$L/config/libvirt/qemu.conf" <<EOF
# QEMU's stdout/stderr into a plain file, not through virtlogd (which would
# be one more daemon to start and stop)
stdio_handler = "file"
# no AppArmor/SELinux labelling of the files the domain uses
security_driver = "none"
EOF
chown -R nobody:nogroup "$L"

# Run as nobody with the session's directories under $L.  PATH has our
# QEMU first: libvirt's capability probe looks for qemu-system-x86_64 there.
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups
           env -i PATH="$qb:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$L/home"
           XDG_CONFIG_HOME="$L/config" XDG_RUNTIME_DIR="$L/run"
           XDG_CACHE_HOME="$L/cache" XDG_DATA_HOME="$L/data")
uri="qemu+unix:///session?socket=$L/run/libvirt/libvirt-sock"
vsh() {
    "${as_nobody[@]}" timeout 60 virsh -q -c "$uri" "$@"
}

# setpriv and env exec: $! is libvirtd's PID
"${as_nobody[@]}" libvirtd >"$T/libvirtd.out" 2>&1 &
lv_pid=$!
# On the way out, whatever happened: the domain's QEMU (destroyed, or
# killed by the PID libvirt recorded), then libvirtd
domains=()
libvirt_down() {
    local d qpid
    for d in "${domains[@]+"${domains[@]}"}"; do
        vsh destroy "$d" >/dev/null 2>&1 || true
        qpid=$(cat "$L/run/libvirt/qemu/run/$d.pid" 2>/dev/null || true)
        if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
            kill -KILL "$qpid" || true
        fi
    done
    stop_child "$lv_pid" 30 || true
}
cleanup_cmds+=(libvirt_down)
wait_for 30 test -S "$L/run/libvirt/libvirt-sock" ||
    { cat "$T/libvirtd.out"; fail "libvirtd did not start"; }
wait_for 30 vsh version >/dev/null 2>&1 ||
    { cat "$T/libvirtd.out" "$L/log/libvirtd.log"; fail "virsh cannot reach libvirtd"; }
vsh version

# --- the domains ----------------------------------------------------------------------

# Define, start and wait for a domain that boots the test guest with the
# volume as vda, check what the guest printed, undefine it:
# run_domain NAME MODE DISK-XML [MEMORY-BACKING-XML]
run_domain() {
    local name=$1 mode=$2 disk=$3 membacking=${4:-} xml="$L/$1.xml"
    local con="$L/console-$1.log" qlog="$L/cache/libvirt/qemu/log/$1.log" i start
    cat > "$xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>256</memory>
  $membacking
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom'>/usr/share/qemu/qboot.rom</loader>
    <kernel>$guest/vmlinux</kernel>
    <initrd>$guest/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet lsvdtest=$mode</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$QEMU_SYSTEM</emulator>
$disk
    <serial type='file'>
      <source path='$con'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
    chown nobody "$xml"
    vsh define "$xml"
    domains+=("$name")
    start=$(date +%s)
    vsh start "$name" || { cat "$L/log/libvirtd.log"; fail "$name: virsh start"; }
    # the guest powers off at its end (on_poweroff: destroy): shut off
    i=0
    until [ "$(vsh domstate "$name" 2>/dev/null)" = "shut off" ]; do
        i=$((i + 1))
        if [ $i -ge 120 ]; then
            cat "$con" 2>/dev/null || true
            fail "$name: the domain still runs after 120 s"
        fi
        sleep 1
    done
    echo "$name: domain ran in $(($(date +%s) - start)) s"
    # libvirt's log of the domain: the QEMU command line it ran
    awk '/^LC_ALL/ { on = 1 } on { print } on && !/\\$/ { exit }' "$qlog" || true
    cat "$con"
    grep -q "^GUEST: vda $((64 << 11))" "$con" ||
        { cat "$qlog" 2>/dev/null || true
          fail "$name: the guest did not see a 64 MiB vda"; }
    grep -q "^GUEST: md5 $want_md5" "$con" ||
        fail "$name: the guest read other data than qemu-img (want md5 $want_md5)"
    if [ "$mode" = write ]; then
        grep -q "^GUEST: wrote" "$con" || fail "$name: the guest's write failed"
    fi
    vsh undefine "$name"
}

# libvirt's own NBD client, over the unix socket
run_domain lsvd-nbd write "\
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='nbd' name='vol'>
        <host transport='unix' socket='$sock'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>"

# vhost-user-blk: the daemon serves the virtqueues itself, which needs the
# guest's RAM shared (a memfd)
run_domain lsvd-vhost read "\
    <disk type='vhostuser' device='disk'>
      <driver name='qemu' type='raw'/>
      <source type='unix' path='$vsock'/>
      <target dev='vda' bus='virtio'/>
    </disk>" "\
<memoryBacking>
    <source type='memfd'/>
    <access mode='shared'/>
  </memoryBacking>"

stop_child "$lv_pid" 30 || fail "libvirtd ignored SIGTERM"
if ls "$L/run/libvirt/qemu/run/"*.pid >/dev/null 2>&1; then
    fail "libvirt still has a QEMU pid file"
fi
stop_child "$qsd_pid" 30 || fail "qemu-storage-daemon ignored SIGTERM"
[ "$STOP_RC" = 0 ] || { cat "$T/qsd.log"; fail "qemu-storage-daemon exited with $STOP_RC"; }
out=$("$QEMU_IO" -f raw -c 'read -P 0x6b 8M 4k' -c 'read -P 0x5a 0 4M' lsvd:v 2>&1)
echo "$out"
! grep -q 'Pattern verification failed' <<<"$out" || fail "the guest's write is not in the volume"
echo PASS
