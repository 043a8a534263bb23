#!/usr/bin/env bash
# The plain-libvirt test bed of cloudops.leveller: two real libvirt/QEMU hosts on this one
# machine, lvhost1 and lvhost2, for live migration without OpenStack. Each host is a network
# namespace on the bridge lvbr0 (10.213.77.0/24: this machine .1, lvhost1 .11, lvhost2 .12) with
# its own libvirtd (Debian's, QEMU driver), its own configuration, state, runtime and log
# directories and its own host UUID, listening on TCP 16509 of its address without
# authentication (auth_tcp = "none": a test bed only, never do this on a real host). Guests
# are diskless: a 145-byte multiboot program fills their RAM with pseudo-random bytes and
# halts, so a migration copies the whole RAM and costs no CPU afterwards.
# See docs/docsite/rst/local_cloud.rst, "Plain libvirt hosts".
#
#   libvirt.sh install   Debian packages (QEMU, libvirt daemon and clients), only those missing
#   libvirt.sh up        namespaces, bridge, both daemons, the guests, the storage pool
#                        (idempotent)
#   libvirt.sh down      stop the guests and daemons, delete namespaces and links (idempotent)
#   libvirt.sh status [--anywhere]   one line per daemon and per guest; exit 0 only if both
#                        daemons answer and each guest runs exactly once, on its home host
#                        (with --anywhere: on either host), and there is no other domain
#   libvirt.sh reset     the daemons up if needed, then exactly the known guests, each
#                        running on its home host, and no volume in the pool but the base;
#                        prints one "reset:" line per change
#   libvirt.sh env       export lines: LEVELLER_LIBVIRT_URIS (JSON host -> URI) & co.
#   libvirt.sh rss       resident memory of the daemons and guests
#   libvirt.sh check     check.py: migrations both ways and an aborted one, timed
#
# Everything lives under ${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}/libvirt: <host>/
# (etc, run, lib, cache, log: bound onto /etc/libvirt, /run/libvirt, /var/lib/libvirt,
# /var/cache/libvirt and /var/log/libvirt in the daemon's own mount namespace, with a copy of
# /etc/passwd and /etc/group), pids/, log/ (daemon output, guest consoles), guest/ (the guest
# program). Needs root (namespaces, bind mounts); no systemd and no system-wide libvirtd are
# used. LEVELLER_LIBVIRT_ACCEL=kvm|tcg overrides the accelerator probe (KVM if a guest boots
# under it in time, TCG otherwise).
# Each host also has a dir storage pool leveller-pool (<host>/pool) holding a 16 MiB qcow2
# base volume leveller-base.qcow2, for the scaling group tests (their members are overlays of
# it; libvirt makes qcow2 volumes with qemu-img, hence qemu-utils).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
BASE=$LEVELLER_HOME/libvirt
PIDS=$BASE/pids
LOGD=$BASE/log
NET=10.213.77        # /24; the bridge is .1
BRIDGE=lvbr0
PORT=16509
HOSTS=(lvhost1 lvhost2)
declare -A ADDR=([lvhost1]=$NET.11 [lvhost2]=$NET.12)
# libvirt refuses to migrate to a host with its own UUID (it would be itself)
declare -A HOST_UUID=([lvhost1]=10213770-0000-4000-8000-000000000011
                      [lvhost2]=10213770-0000-4000-8000-000000000012)
# guest: home host, memory in MiB, UUID (fixed, so every run and every reset sees the same)
GUESTS=(lv-a lv-b lv-c lv-d)
declare -A HOME_OF=([lv-a]=lvhost1 [lv-b]=lvhost1 [lv-c]=lvhost1 [lv-d]=lvhost2)
declare -A MEM=([lv-a]=32 [lv-b]=48 [lv-c]=64 [lv-d]=32)
declare -A GUUID=([lv-a]=10213770-0000-4000-8000-00000000000a
                  [lv-b]=10213770-0000-4000-8000-00000000000b
                  [lv-c]=10213770-0000-4000-8000-00000000000c
                  [lv-d]=10213770-0000-4000-8000-00000000000d)
QEMU=/usr/bin/qemu-system-x86_64
GUEST_BIN=$BASE/guest/leveller-guest.bin
POOL=leveller-pool
POOL_BASE=leveller-base.qcow2
POOL_BASE_SIZE=16M
MIGRATE_FLAGS=(--live --p2p --persistent --undefinesource)
TOOLS_PY=${LEVELLER_VENV:-$LEVELLER_HOME/venv}/bin/python   # has libvirt-python (make deps)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

say() { echo "libvirt: $*"; }
die() { echo "libvirt: ERROR: $*" >&2; exit 1; }
T0=$EPOCHREALTIME
el() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
uri() { echo "qemu+tcp://${ADDR[$1]}/system"; }
vsh() {  # host, virsh arguments...: through the host's TCP listener, as the controller does
  local h=$1; shift
  timeout 120 virsh -q -c "$(uri "$h")" "$@"
}
other() { if [ "$1" = lvhost1 ]; then echo lvhost2; else echo lvhost1; fi; }

# ---------------------------------------------------------------- processes
alive() {  # host -> 0 if its libvirtd runs (the pid file is written by the daemon's shell)
  local pf=$PIDS/$1.pid pid
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] || return 1
  # a daemon killed with -9 stays a zombie until init reaps it, and kill -0 still succeeds
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
ns_pids() {  # host -> every process in its network namespace (all of them are ours)
  # the namespace by its name, and by its daemon's (it outlives a deleted name)
  local ids=" " self
  self=$(stat -L -c %i /proc/self/ns/net)
  [ -e "/run/netns/$1" ] && ids+="$(stat -L -c %i "/run/netns/$1") "
  alive "$1" && ids+="$(stat -L -c %i "/proc/$(cat "$PIDS/$1.pid")/ns/net" 2>/dev/null) "
  ids=${ids// $self / }   # never this machine's own namespace
  [ -n "${ids// /}" ] || return 0
  stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null \
    | awk -v ids="$ids" 'index(ids, " " $1 " ") { split($2, f, "/"); print f[3] }' || true
}
answering() { (exec 3<>"/dev/tcp/${ADDR[$1]}/$PORT") 2>/dev/null; }
stop_pids() {  # pids...: TERM, up to $GRACE s (10), then KILL
  local p i any
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 1 $(( ${GRACE:-10} * 10 ))); do
    any=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && any=1; done
    [ $any = 0 ] && return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
  sleep 0.2
}
is_qemu() { [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$QEMU" ]; }

# ---------------------------------------------------------------- install
cmd_install() {
  local pkgs=() p
  for p in qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients iproute2 \
           util-linux; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || pkgs+=("$p")
  done
  if [ ${#pkgs[@]} -eq 0 ]; then say "install: the packages are installed"; return 0; fi
  say "install: apt packages ${pkgs[*]}"
  $SUDO apt-get update -q
  # libvirt-daemon has no service of its own (libvirt-daemon-system would add one; not wanted)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
  say "install: done"
}

# ---------------------------------------------------------------- guest program
# A multiboot (a.out kludge) program, loaded by QEMU at 1 MiB in 32-bit protected mode:
#   cli; cld; mov esi,[ebx+8] (mem_upper, KiB); shl esi,10; add esi,1 MiB; mov edi,2 MiB
#   mov eax,0x12345678; loop: xorshift32 eax; stosd; cmp edi,esi; jb loop
#   mov esi,msg; mov ecx,44; mov dx,0x3f8; rep outsb; halt: hlt; jmp halt
#   msg: "leveller test guest: memory filled, halted\r\n"
# so the RAM from 2 MiB up is incompressible (QEMU sends a zero page as a few bytes, and an
# idle guest would migrate in no time whatever the bandwidth cap), then the CPU is halted.
GUEST_HEX=02b0ad1b02000100fc4f51e40000100000001000000000000000000020001000fafc8b7308c1e60a81c6000010\
00bf00002000b87856341289c2c1e20d31d089c2c1ea1131d089c2c1e20531d0ab39f772e6be65001000b92c00000066ba\
f803f36ef4ebfd6c6576656c6c657220746573742067756573743a206d656d6f72792066696c6c65642c2068616c746564\
0d0a
write_guest_bin() {
  mkdir -p "$(dirname "$GUEST_BIN")"
  local esc
  # shellcheck disable=SC2001  # every byte pair, not one pattern
  esc=$(sed 's/../\\x&/g' <<< "$GUEST_HEX")
  # shellcheck disable=SC2059
  printf "$esc" > "$GUEST_BIN.tmp"
  cmp -s "$GUEST_BIN.tmp" "$GUEST_BIN" 2>/dev/null && { rm -f "$GUEST_BIN.tmp"; return 0; }
  mv "$GUEST_BIN.tmp" "$GUEST_BIN"
}

# KVM when a guest boots under it and fills its RAM in time. /dev/kvm opening is not enough:
# nested setups (kvm-pvm, for one) accept KVM and then emulate this guest's unpaged protected
# mode one instruction at a time, 100 times slower than TCG.
accel() {
  case ${LEVELLER_LIBVIRT_ACCEL:-auto} in
    kvm|tcg) echo "$LEVELLER_LIBVIRT_ACCEL"; return 0 ;;
    auto) ;;
    *) die "LEVELLER_LIBVIRT_ACCEL must be kvm, tcg or auto, not '$LEVELLER_LIBVIRT_ACCEL'" ;;
  esac
  local key f=$BASE/accel a=tcg log pid i
  key="$(uname -r) $("$QEMU" --version | sed -n 1p) $(ls -l /dev/kvm 2>&1 || true)"
  if [ -f "$f" ] && [ "$(tail -n +2 "$f")" = "$key" ]; then head -1 "$f"; return 0; fi
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    log=$BASE/log/kvm-probe.out; rm -f "$log"
    "$QEMU" -accel kvm -machine pc -m 32 -nodefaults -no-user-config -display none \
      -monitor none -kernel "$GUEST_BIN" -serial "file:$log" > "$BASE/log/kvm-probe.err" 2>&1 &
    pid=$!
    for i in $(seq 1 30); do  # TCG takes 0.6 s: a KVM slower than 3 s is worse than none
      grep -q 'memory filled' "$log" 2>/dev/null && { a=kvm; break; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  fi
  printf '%s\n%s\n' "$a" "$key" > "$f"
  echo "$a"
}

# ---------------------------------------------------------------- network
net_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local h veth
  for h in "${HOSTS[@]}"; do
    veth=lvv-$h
    if [ ! -e "/run/netns/$h" ]; then
      # a name deleted under a running daemon: name its namespace again rather than a new one
      if alive "$h"; then ip netns attach "$h" "$(cat "$PIDS/$h.pid")"; else ip netns add "$h"; fi
    fi
    if ! ip -n "$h" link show lv0 >/dev/null 2>&1; then
      ip link del "$veth" 2>/dev/null || true   # its peer went with an older namespace
      ip link add "$veth" type veth peer name lv0 netns "$h"
    fi
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$h" addr replace "${ADDR[$h]}/24" dev lv0
    ip -n "$h" link set lv0 up
    ip -n "$h" link set lo up
  done
}
net_down() {
  local h
  for h in "${HOSTS[@]}"; do
    [ -e "/run/netns/$h" ] && ip netns del "$h"
    ip link del "lvv-$h" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

# ---------------------------------------------------------------- daemons
write_config() {  # host
  local h=$1 d=$BASE/$1
  mkdir -p "$d"/{etc,run,lib,cache,log} "$PIDS" "$LOGD"
  cat > "$d/etc/libvirtd.conf" <<EOC
# written by libvirt.sh: test bed only (no authentication on TCP)
listen_tls = 0
listen_tcp = 1
listen_addr = "${ADDR[$h]}"
tcp_port = "$PORT"
auth_tcp = "none"
auth_unix_rw = "none"
unix_sock_rw_perms = "0700"
host_uuid = "${HOST_UUID[$h]}"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOC
  # The QEMU driver looks its build-time user up before it reads qemu.conf (which says root):
  # the daemon sees a passwd and group with libvirt-qemu and kvm (the accounts
  # libvirt-daemon-system would add), and this machine's accounts stay as they are.
  cp /etc/passwd "$d/etc/passwd"; cp /etc/group "$d/etc/group"
  getent group kvm >/dev/null || echo "kvm:x:64054:" >> "$d/etc/group"
  getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:" >> "$d/etc/group"
  getent passwd libvirt-qemu >/dev/null \
    || echo "libvirt-qemu:x:64055:64054:libvirt-qemu (test bed):/var/lib/libvirt:/usr/sbin/nologin" >> "$d/etc/passwd"
  # root QEMU without cgroups, per-domain mount namespaces, security drivers or virtlogd
  # (none of them exists or works in a container without systemd); migrations go to this
  # host's address, since both namespaces share one host name
  cat > "$d/etc/qemu.conf" <<EOC
# written by libvirt.sh
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_address = "${ADDR[$h]}"
migration_host = "${ADDR[$h]}"
migration_port_min = 49152
migration_port_max = 49215
EOC
}

kill_strays() {  # host: processes in its namespace that a new libvirtd would not take back
  local h=$1 p known=" " f strays=()
  for f in "$BASE/$h/run/qemu/"*.pid; do [ -f "$f" ] && known+="$(cat "$f") "; done
  for p in $(ns_pids "$h"); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = libvirtd ]; then strays+=("$p")
    elif is_qemu "$p" && [[ $known != *" $p "* ]]; then strays+=("$p")
    fi
  done
  [ ${#strays[@]} -eq 0 ] && return 0
  say "$h: stopping processes of an earlier run that no pid file names: ${strays[*]}"
  GRACE=5 stop_pids "${strays[@]}"
}

start_daemon() {  # host: its own session, network namespace and mount namespace
  local h=$1 d=$BASE/$1 i
  alive "$h" && return 0
  rm -f "$PIDS/$h.pid"
  kill_strays "$h"
  for i in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
    [ -d "$i" ] || mkdir -p "$i"   # mount points only; nothing is written there
  done
  # one PID all along: the shell writes it, then execs ip, unshare, bash and libvirtd in turn
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$PIDS/$h.pid" \
    ip netns exec "$h" unshare --mount --propagation private -- bash -c '
      d=$0
      mount --bind "$d/etc" /etc/libvirt && mount --bind "$d/run" /run/libvirt &&
      mount --bind "$d/lib" /var/lib/libvirt && mount --bind "$d/cache" /var/cache/libvirt &&
      mount --bind "$d/log" /var/log/libvirt &&
      mount --bind "$d/etc/passwd" /etc/passwd && mount --bind "$d/etc/group" /etc/group || exit 1
      exec libvirtd --listen -f "$d/etc/libvirtd.conf" --pid-file "$d/run/libvirtd.pid"' "$d" \
    > "$LOGD/$h.out" 2>&1 < /dev/null 9>&- &
  for i in $(seq 1 50); do [ -s "$PIDS/$h.pid" ] && break; sleep 0.1; done
  [ -s "$PIDS/$h.pid" ] || die "libvirtd for $h did not start (log $LOGD/$h.out)"
}
wait_daemon() {  # host
  local h=$1 i
  for i in $(seq 1 300); do
    answering "$h" && vsh "$h" version >/dev/null 2>&1 && return 0
    alive "$h" || die "libvirtd for $h exited; read $LOGD/$h.out and $BASE/$h/log/libvirtd.log"
    sleep 0.1
  done
  die "libvirtd for $h did not answer on $(uri "$h") within 30 s; read $BASE/$h/log/libvirtd.log"
}

# ---------------------------------------------------------------- guests
guest_xml() {  # guest accel
  local g=$1 a=$2 type=qemu features="<features><tcg><tb-cache unit='MiB'>8</tb-cache></tcg></features>"
  if [ "$a" = kvm ]; then type=kvm; features=""; fi
  cat <<EOX
<domain type='$type'>
  <name>$g</name>
  <uuid>${GUUID[$g]}</uuid>
  <title>cloudops.leveller test guest (home ${HOME_OF[$g]})</title>
  <memory unit='MiB'>${MEM[$g]}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST_BIN</kernel>
  </os>
  $features
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$QEMU</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='$LOGD/$g.console.log' append='on'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOX
}
domains() { vsh "$1" list --all --name | sed '/^$/d'; }   # host
dom_state() { vsh "$1" domstate "$2" 2>/dev/null | sed -n 1p || true; }   # host guest
define_start() {  # host guest accel
  local h=$1 g=$2 f
  f=$(mktemp); guest_xml "$g" "$3" > "$f"
  vsh "$h" define "$f" >/dev/null || { rm -f "$f"; die "defining $g on $h failed (XML $f kept)"; }
  rm -f "$f"
  : > "$LOGD/$g.console.log"   # wait_filled reads this boot's line
  vsh "$h" start "$g" >/dev/null || die "starting $g on $h failed; read $BASE/$h/log/qemu/$g.log"
}
remove() {  # host guest
  vsh "$1" destroy "$2" >/dev/null 2>&1 || true
  vsh "$1" undefine "$2" >/dev/null 2>&1 || true
  if vsh "$1" domstate "$2" >/dev/null 2>&1; then die "removing $2 from $1 failed"; fi
}
# Is the domain on host exactly ours: our type, UUID and size, persistent, no metadata added?
pristine() {  # host guest accel
  local xml type=qemu
  [ "$3" = kvm ] && type=kvm
  xml=$(vsh "$1" dumpxml "$2" 2>/dev/null) || return 1
  grep -q "<domain type='$type'" <<< "$xml" || return 1
  grep -q "<uuid>${GUUID[$2]}</uuid>" <<< "$xml" || return 1
  grep -q "<memory unit='KiB'>$(( MEM[$2] * 1024 ))</memory>" <<< "$xml" || return 1
  ! grep -q '<metadata' <<< "$xml" || return 1
  # not "virsh | grep -q": grep leaves early, virsh gets SIGPIPE, and pipefail fails the test
  grep -Eq '^Persistent: +yes' <<< "$(vsh "$1" dominfo "$2" 2>/dev/null)"
}

ensure_guests() {  # accel: every guest defined somewhere and running (up keeps moved guests)
  local a=$1 g h where st jobs=() j failed=0
  local -A on=()
  for h in "${HOSTS[@]}"; do for g in $(domains "$h"); do on[$g]+="$h "; done; done
  # in parallel: a QEMU start through libvirt takes about 2 s, mostly waiting
  for g in "${GUESTS[@]}"; do
    where=${on[$g]:-}
    if [ -z "$where" ]; then
      define_start "${HOME_OF[$g]}" "$g" "$a" & jobs+=($!); continue
    fi
    for h in $where; do
      st=$(dom_state "$h" "$g")
      case $st in
        running) ;;
        paused) vsh "$h" resume "$g" >/dev/null & jobs+=($!) ;;
        *) : > "$LOGD/$g.console.log"
           { vsh "$h" start "$g" >/dev/null \
               || die "starting $g on $h failed; read $BASE/$h/log/qemu/$g.log"; } & jobs+=($!) ;;
      esac
    done
  done
  for j in "${jobs[@]}"; do wait "$j" || failed=1; done
  [ $failed = 0 ] || die "not every guest could be started (above)"
}

wait_filled() {  # the guests have filled their RAM (their console says so), up to 30 s
  local g i
  for g in "${GUESTS[@]}"; do
    for i in $(seq 1 300); do
      grep -q 'memory filled' "$LOGD/$g.console.log" 2>/dev/null && break
      sleep 0.1
    done
  done
}

# ---------------------------------------------------------------- storage pool
POOL_CHANGES=0
pool_say() {  # mode message: "reset" says every change (and counts it), "up" stays quiet
  [ "$1" = reset ] || return 0
  say "reset: $2"; POOL_CHANGES=$((POOL_CHANGES + 1))
}
ensure_pool() {  # host mode: the dir pool $POOL under <host>/pool, active, with its base volume
  local h=$1 mode=$2 dir=$BASE/$1/pool
  mkdir -p "$dir"
  if ! vsh "$h" pool-info "$POOL" >/dev/null 2>&1; then
    vsh "$h" pool-define-as "$POOL" dir --target "$dir" >/dev/null || die "defining the pool $POOL on $h failed"
    pool_say "$mode" "defined the storage pool $POOL on $h ($dir)"
  fi
  if ! grep -Eq '^State: +running' <<< "$(vsh "$h" pool-info "$POOL" 2>/dev/null)"; then
    vsh "$h" pool-start "$POOL" >/dev/null || die "starting the pool $POOL on $h failed (is $dir there?)"
    pool_say "$mode" "started the storage pool $POOL on $h"
  fi
  grep -Eq '^Autostart: +yes' <<< "$(vsh "$h" pool-info "$POOL" 2>/dev/null)" \
    || vsh "$h" pool-autostart "$POOL" >/dev/null
  vsh "$h" pool-refresh "$POOL" >/dev/null
  if ! vsh "$h" vol-info --pool "$POOL" "$POOL_BASE" >/dev/null 2>&1; then
    vsh "$h" vol-create-as "$POOL" "$POOL_BASE" "$POOL_BASE_SIZE" --format qcow2 >/dev/null \
      || die "creating $POOL_BASE in $POOL on $h failed (qcow2 needs qemu-img: run '$0 install')"
    pool_say "$mode" "created the base volume $POOL_BASE ($POOL_BASE_SIZE qcow2) in $POOL on $h"
  fi
}
clear_pool() {  # host: every volume of $POOL but the base (what scaling group members left)
  local h=$1 v
  for v in $(vsh "$h" vol-list "$POOL" 2>/dev/null | awk 'NF {print $1}'); do
    [ "$v" = "$POOL_BASE" ] && continue
    vsh "$h" vol-delete --pool "$POOL" "$v" >/dev/null || die "deleting the volume $v of $POOL on $h failed"
    pool_say reset "deleted the volume $v from $POOL on $h"
  done
}

# ---------------------------------------------------------------- up
preflight() {
  if ! command -v libvirtd >/dev/null || ! command -v virsh >/dev/null || [ ! -x "$QEMU" ]; then
    die "QEMU or libvirt is missing: run '$0 install' first"
  fi
  [ "$(id -u)" = 0 ] || die "this needs root (network namespaces, bind mounts)"
  mkdir -p "$PIDS" "$LOGD"
  write_guest_bin
}
daemons_answer() {
  local h
  for h in "${HOSTS[@]}"; do [ -e "/run/netns/$h" ] && alive "$h" && answering "$h" || return 1; done
}
ACCEL=""
daemons_up() {  # the network, then each daemon not running; sets ACCEL
  say "starting (state under $BASE, logs in $LOGD)"
  local h prev=""
  ACCEL=$(accel)
  net_up
  # One after the other: a daemon without a cache probes both QEMU binaries (i386, x86_64),
  # with TCG and KVM, 10-20 s on two CPUs; the second one starts from the first one's cache
  # (same binaries, same machine, so libvirt takes it as valid).
  for h in "${HOSTS[@]}"; do
    if ! alive "$h"; then
      write_config "$h"
      if [ -n "$prev" ] && ! ls "$BASE/$h/cache/qemu/capabilities/"*.xml >/dev/null 2>&1; then
        mkdir -p "$BASE/$h/cache/qemu/capabilities"
        cp -p "$BASE/$prev/cache/qemu/capabilities/"*.xml "$BASE/$h/cache/qemu/capabilities/" 2>/dev/null || true
      fi
      start_daemon "$h"
    fi
    wait_daemon "$h"; prev=$h
  done
  printf '  [%ss] libvirtd answering on %s and %s (accelerator %s)\n' "$(el)" \
    "$(uri lvhost1)" "$(uri lvhost2)" "$ACCEL"
  # peer-to-peer migration: each daemon connects to the other one
  if ! ip netns exec lvhost1 bash -c "(exec 3<>/dev/tcp/${ADDR[lvhost2]}/$PORT)" 2>/dev/null \
     || ! ip netns exec lvhost2 bash -c "(exec 3<>/dev/tcp/${ADDR[lvhost1]}/$PORT)" 2>/dev/null; then
    die "lvhost1 and lvhost2 do not reach each other on $BRIDGE (a firewall on bridged traffic?)"
  fi
}

cmd_up() {
  preflight
  local h
  if daemons_answer && cmd_status --anywhere >/dev/null 2>&1; then
    for h in "${HOSTS[@]}"; do ensure_pool "$h" up; done
    say "already up ($(uri lvhost1), $(uri lvhost2); 'libvirt.sh status' for details)"
    return 0
  fi
  daemons_up
  for h in "${HOSTS[@]}"; do ensure_pool "$h" up; done
  ensure_guests "$ACCEL"
  wait_filled
  say "up in $(el) s: ${GUESTS[*]} running ('eval \"\$($0 env)\"' to use them)"
}

# ---------------------------------------------------------------- down
cmd_down() {
  local h pids=() stopped=()
  for h in "${HOSTS[@]}"; do
    local p=() q
    # shellcheck disable=SC2207
    p=($(ns_pids "$h"))
    if [ -f "$PIDS/$h.pid" ]; then
      q=$(cat "$PIDS/$h.pid")
      alive "$h" && [[ " ${p[*]} " != *" $q "* ]] && p+=("$q")
      rm -f "$PIDS/$h.pid"
    fi
    [ ${#p[@]} -gt 0 ] && stopped+=("$h(${#p[@]} processes)")
    pids+=("${p[@]}")
  done
  # the state is dropped below: no graceful shutdown of the guests is needed
  [ ${#pids[@]} -gt 0 ] && GRACE=5 stop_pids "${pids[@]}"
  net_down
  for h in "${HOSTS[@]}"; do rm -rf "${BASE:?}/$h/run" "${BASE:?}/$h/lib" "${BASE:?}/$h/etc" "${BASE:?}/$h/pool"; done
  if [ ${#stopped[@]} -gt 0 ]; then say "stopped: ${stopped[*]}; namespaces and $BRIDGE deleted (logs kept in $LOGD)"
  else say "nothing was running; namespaces and $BRIDGE deleted"; fi
}

# ---------------------------------------------------------------- status
cmd_status() {  # [--anywhere]: a guest running once on either host is as expected
  local h g ok=0 st pid anywhere=0
  [ "${1:-}" = --anywhere ] && anywhere=1
  local -A up=() on=()
  for h in "${HOSTS[@]}"; do
    pid=-; [ -f "$PIDS/$h.pid" ] && pid=$(cat "$PIDS/$h.pid")
    if alive "$h" && answering "$h"; then st=up; up[$h]=1
    elif alive "$h"; then st="down (running, $(uri "$h") not answering)"; ok=1
    else st=down; ok=1; fi
    printf '%-8s libvirtd %-6s pid %-8s %s\n' "$h" "$st" "$pid" "$(uri "$h")"
  done
  for h in "${HOSTS[@]}"; do
    [ -n "${up[$h]:-}" ] || continue
    for g in $(domains "$h"); do on[$g]+="$h "; done
  done
  for g in "${GUESTS[@]}"; do
    local line="" n=0
    for h in ${on[$g]:-}; do
      st=$(dom_state "$h" "$g"); n=$((n + 1))
      line+="${st:-unknown} on $h, "
      [ "$st" = running ] || ok=1
      if [ "$h" != "${HOME_OF[$g]}" ]; then
        line+="away from home, "; [ "$anywhere" = 1 ] || ok=1
      fi
    done
    if [ $n = 0 ]; then
      line="missing, "; ok=1
      [ ${#up[@]} = ${#HOSTS[@]} ] || line="not seen (a libvirtd is down), "
    fi
    if [ $n -gt 1 ]; then line+="on $n hosts, "; ok=1; fi
    printf '%-8s guest    %s (home %s, %d MiB)\n' "$g" "${line%, }" "${HOME_OF[$g]}" "${MEM[$g]}"
  done
  for g in "${!on[@]}"; do
    [ -n "${HOME_OF[$g]:-}" ] && continue
    printf '%-8s guest    unexpected domain on %s\n' "$g" "${on[$g]% }"; ok=1
  done
  return $ok
}

# ---------------------------------------------------------------- reset
cmd_reset() {  # every change it makes is one "reset:" line (up would make them silently)
  preflight
  local a h g o st changes=0
  if daemons_answer; then a=$(accel); else daemons_up; a=$ACCEL; fi
  for h in "${HOSTS[@]}"; do
    for g in $(domains "$h"); do
      if [ -z "${HOME_OF[$g]:-}" ]; then
        remove "$h" "$g"; say "reset: removed the domain $g from $h"; changes=$((changes + 1))
      elif grep -Eq '^Job type: +(Bounded|Unbounded)' <<< "$(vsh "$h" domjobinfo "$g" 2>/dev/null)"; then
        vsh "$h" domjobabort "$g" >/dev/null 2>&1 || true
        say "reset: aborted the job of $g on $h"; changes=$((changes + 1))
      fi
    done
  done
  # the storage pool: scaling group members are gone with the unknown domains above; their
  # volumes go now, the base stays (and is made again if it went)
  for h in "${HOSTS[@]}"; do
    ensure_pool "$h" reset
    clear_pool "$h"
  done
  # maintenance marks (libvirt secrets written by evacuate_host state=drained): the test hosts hold no other
  for h in "${HOSTS[@]}"; do
    for o in $(vsh "$h" secret-list 2>/dev/null | awk 'NF {print $1}'); do
      vsh "$h" secret-undefine "$o" >/dev/null && say "reset: removed the secret $o (a maintenance mark) from $h"
      changes=$((changes + 1))
    done
  done
  for g in "${GUESTS[@]}"; do
    h=${HOME_OF[$g]}; o=$(other "$h")
    if vsh "$o" domstate "$g" >/dev/null 2>&1; then
      st=$(dom_state "$o" "$g")
      if [ "$st" = running ] && ! vsh "$h" domstate "$g" >/dev/null 2>&1 \
         && vsh "$o" migrate "${MIGRATE_FLAGS[@]}" "$g" "$(uri "$h")" >/dev/null 2>&1; then
        say "reset: migrated $g from $o back to $h"
      else
        remove "$o" "$g"; say "reset: removed $g from $o (not its home, $st there)"
      fi
      changes=$((changes + 1))
    fi
    if vsh "$h" domstate "$g" >/dev/null 2>&1 && ! pristine "$h" "$g" "$a"; then
      remove "$h" "$g"; say "reset: removed $g from $h to recreate it (its type, UUID, size, metadata or persistence changed)"
      changes=$((changes + 1))
    fi
    if ! vsh "$h" domstate "$g" >/dev/null 2>&1; then
      define_start "$h" "$g" "$a"; say "reset: defined and started $g on $h"; changes=$((changes + 1))
      continue
    fi
    st=$(dom_state "$h" "$g")
    case $st in
      running) ;;
      paused) vsh "$h" resume "$g" >/dev/null; say "reset: resumed $g on $h"; changes=$((changes + 1)) ;;
      *) : > "$LOGD/$g.console.log"; vsh "$h" start "$g" >/dev/null; say "reset: started $g on $h (was $st)"; changes=$((changes + 1)) ;;
    esac
  done
  wait_filled
  cmd_status >/dev/null || { cmd_status >&2 || true; die "reset did not reach the known state"; }
  changes=$((changes + POOL_CHANGES))
  say "reset: done, $changes change(s); ${GUESTS[*]} running on their home hosts"
}

# ---------------------------------------------------------------- env, rss
cmd_env() {
  local g homes="" uuids="" sep=""
  for g in "${GUESTS[@]}"; do
    homes+="$sep\"$g\": \"${HOME_OF[$g]}\""; uuids+="$sep\"$g\": \"${GUUID[$g]}\""; sep=", "
  done
  cat <<EOE
export LEVELLER_LIBVIRT_URIS='{"lvhost1": "$(uri lvhost1)", "lvhost2": "$(uri lvhost2)"}'
export LEVELLER_LIBVIRT_URI_LVHOST1=$(uri lvhost1)
export LEVELLER_LIBVIRT_URI_LVHOST2=$(uri lvhost2)
export LEVELLER_LIBVIRT_HOMES='{$homes}'
export LEVELLER_LIBVIRT_UUIDS='{$uuids}'
export LEVELLER_LIBVIRT_RUN=$BASE
EOE
}

cmd_rss() {
  local h p kb total=0 name
  printf '%-8s %-24s %8s %9s\n' host process pid RSS_MiB
  for h in "${HOSTS[@]}"; do
    for p in $(ns_pids "$h"); do
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
      [ -n "$kb" ] || continue
      name=$(cat "/proc/$p/comm" 2>/dev/null)
      if is_qemu "$p"; then
        name="qemu $(tr '\0' '\n' < "/proc/$p/cmdline" | sed -n 's/^guest=\([^,]*\).*/\1/p')"
      fi
      printf '%-8s %-24s %8s %9.1f\n' "$h" "$name" "$p" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
      total=$((total + kb))
    done
  done
  printf '%-8s %-24s %8s %9.1f\n' TOTAL '' '' "$(awk -v k="$total" 'BEGIN { print k / 1024 }')"
}

lock() {  # one install/up/down/reset at a time (daemons do not inherit fd 9)
  mkdir -p "$BASE"
  exec 9> "$BASE/.lock"
  flock -w 600 9 || die "another libvirt.sh holds $BASE/.lock"
}

case ${1:-} in
  install|up|down|reset) lock ;;
esac
case ${1:-} in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) shift; cmd_status "$@" ;;
  reset) cmd_reset ;;
  env) cmd_env ;;
  rss) cmd_rss ;;
  check) shift; cmd_status --anywhere >/dev/null || die "not up as expected: run '$0 up' (or reset) first"
         "$TOOLS_PY" "$HERE/check.py" "$@" ;;
  *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && exit 2; exit 0 ;;
esac
