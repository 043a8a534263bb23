#!/usr/bin/env bash
# The local test cloud of cloudops.leveller: a real Keystone, Placement,
# Glance and Nova (api, conductor, scheduler, NCOMPUTE fake nova-compute hosts
# compute1..N) from PyPI, MariaDB and RabbitMQ from Debian, a read-only Neutron
# stand-in, a real Prometheus + Pushgateway fed with per-host series, and a
# Redfish and an IPMI BMC whose power is each host's nova-compute, all on
# 127.0.0.1. See docs/docsite/rst/local_cloud.rst.
#
#   cloud.sh install             cloud venv (idempotent, stamp-keyed)
#   cloud.sh up                  start everything (idempotent), wait until ready
#   cloud.sh down                stop everything this script started
#   cloud.sh status              one line per service; exit 0 only if all up
#   cloud.sh reset [--dry-run]   up, then back to the known start (no instance, every host
#                                enabled, no load override); prints what it removed
#   cloud.sh env                 export lines for OS_CLOUD & co.
#   cloud.sh compute stop|kill|start N   simulate a host failure / recovery
#   cloud.sh signal NAME STOP|CONT       stop (freeze) or continue one service's process group
#   cloud.sh load [--host H] [--cpu X] [--memory Y] [--absent] [--reset] [--show]
#   cloud.sh rss                 resident memory of every process we started
#   cloud.sh smoke               boot, live-migrate, PromQL and fault checks
#   cloud.sh bmc-check           power hosts off and on through the Redfish and IPMI BMCs
#   cloud.sh bmc-fault [computeN none|stuck-on|unreachable|lying-off]   BMCs that answer wrong
#
# Everything lives under ${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}/cloud:
# venv/, cache/ (db-init snapshots), run/ (state, etc/, log/, pids/). The BMCs run
# with the tools venv's python (scripts/install-tools.sh: sushy-tools, pyghmi).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
BASE=$LEVELLER_HOME/cloud
VENV=$BASE/venv
RUN=$BASE/run
CACHE=$BASE/cache
LOGD=$RUN/log
PIDS=$RUN/pids
NCOMPUTE=${NCOMPUTE:-4}
PY=$VENV/bin/python
DB_PASS=leveller
RABBIT_PASS=leveller
ADMIN_PASS="admin"
TOOLS_PY=${LEVELLER_VENV:-$LEVELLER_HOME/venv}/bin/python
REDFISH_PORT=${LEVELLER_REDFISH_PORT:-18000}
IPMI_PORT_BASE=${LEVELLER_IPMI_PORT_BASE:-16230}  # computeN: UDP base + N
export NCOMPUTE LEVELLER_CLOUD_RUN=$RUN LEVELLER_CLOUD_VENV=$VENV
export OS_CLIENT_CONFIG_FILE=$HERE/clouds.yaml OS_CLOUD=leveller
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

say() { echo "cloud: $*"; }
die() { echo "cloud: ERROR: $*" >&2; exit 1; }
T0=$(date +%s.%N)
el() { echo "$(date +%s.%N) - $T0" | bc | xargs printf '%5.1f'; }
ts() { printf '  [%ss] %s\n' "$(el)" "$*"; }

# ---------------------------------------------------------------- helpers
alive() {  # name -> 0 if its process group is alive
  local pf=$PIDS/$1.pid pid
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -n "$pid" ] && kill -0 -- "-$pid" 2>/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start() {  # name, command... (own session: PID = process group id)
  local name=$1 i; shift
  if alive "$name"; then return 0; fi
  rm -f "$PIDS/$name.pid"
  # setsid forks when its caller leads a process group, and then $! is not the daemon: let the
  # daemon's own shell write its PID (it is the session leader) before it execs the command.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$PIDS/$name.pid" "$@" \
    > "$LOGD/$name.out" 2>&1 < /dev/null 9>&- &
  for i in $(seq 1 50); do [ -s "$PIDS/$name.pid" ] && return 0; sleep 0.1; done
  die "$name did not start (log $LOGD/$name.out)"
}
stop_group() {  # pids...: TERM the groups, wait up to $GRACE s (10), then KILL
  local p alive_any i
  for p in "$@"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 1 $(( ${GRACE:-10} * 5 ))); do
    alive_any=0
    for p in "$@"; do kill -0 -- "-$p" 2>/dev/null && alive_any=1; done
    [ $alive_any = 0 ] && return 0
    sleep 0.2
  done
  for p in "$@"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}
wait_http() {  # name url log timeout
  local name=$1 url=$2 log=$3 n=$(( ${4:-90} * 5 )) i
  for i in $(seq 1 $n); do
    curl -s -o /dev/null --max-time 2 "$url" && return 0
    alive "$name" || die "$name exited before answering on $url; read $log and $LOGD/$name.out"
    sleep 0.2
  done
  die "$name did not answer on $url within ${4:-90} s; read $log and $LOGD/$name.out"
}
check_port_free() {  # name port
  if ! alive "$1" && port_open "$2"; then
    die "port 127.0.0.1:$2 (for $1) is in use by a process this script did not start; stop it first"
  fi
}
db_key() {  # what the db-init snapshot depends on
  { cat "$HERE/constraints.txt" "$HERE"/etc/*.conf
    sed -n '/^def register/,/^def resources/p' "$HERE/cloudctl.py"
    mariadbd --version 2>/dev/null || true; echo "dbinit-v2"; } | sha256sum | cut -c1-16
}
our_epmd() {
  local e
  for e in $(pgrep -x epmd 2>/dev/null || true); do
    { tr "\0" "\n" < "/proc/$e/environ"; } 2>/dev/null | grep -qx "HOME=$RUN/rabbit" && echo "$e"
  done
  return 0
}
services() {  # name:port (port - when none)
  echo mysqld:3306 rabbitmq:5672 keystone:5000 placement:8778 glance-api:9292 \
       nova-api:8774 fake-neutron:9696 nova-conductor:- nova-scheduler:-
  local i; for i in $(seq 1 "$NCOMPUTE"); do echo "nova-compute$i:-"; done
  echo prometheus:9090 pushgateway:9091 feeder:- "bmc-redfish:$REDFISH_PORT" \
       "bmc-ipmi:udp/$((IPMI_PORT_BASE + 1))-$((IPMI_PORT_BASE + NCOMPUTE))"
}

# ---------------------------------------------------------------- install
cmd_install() {
  local stamp
  stamp=$(cat "$HERE/constraints.txt" "$HERE/leveller_fake.py" | sha256sum | cut -c1-16)
  if [ -f "$VENV/.leveller-stamp" ] && [ "$(cat "$VENV/.leveller-stamp")" = "$stamp" ]; then
    say "install: $VENV is up to date"; return 0
  fi
  local pkgs=() p
  for p in mariadb-server rabbitmq-server prometheus prometheus-pushgateway curl bc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    say "install: apt packages ${pkgs[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
  fi
  mkdir -p "$BASE"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip uv
  # the services have no lines in the constraints; their versions are pinned here
  "$VENV/bin/uv" pip install -q --compile-bytecode --python "$PY" -c "$HERE/constraints.txt" \
    nova==33.0.2 openstack-placement==15.0.0 keystone==29.1.0 glance==32.0.0 \
    openstacksdk python-openstackclient PyMySQL gunicorn
  local site
  site=$("$PY" -c 'import nova.virt, os; print(os.path.dirname(nova.virt.__file__))')
  cp "$HERE/leveller_fake.py" "$site/leveller_fake.py"  # nova loads drivers from nova.virt only
  "$PY" -m compileall -q "$site/leveller_fake.py"
  echo "$stamp" > "$VENV/.leveller-stamp"
  say "install: $VENV ready"
}

# ---------------------------------------------------------------- config
write_config() {
  mkdir -p "$RUN"/etc/{keystone,placement,glance,nova} "$RUN"/keystone \
           "$RUN"/glance/{images,staging,tasks} "$RUN"/nova/lock "$LOGD" "$PIDS" \
           "$RUN"/prometheus/data "$RUN"/mysql "$RUN"/rabbit/mnesia
  local f
  for f in keystone placement; do
    sed "s#@RUN@#$RUN#g" "$HERE/etc/$f.conf" > "$RUN/etc/$f/$f.conf"
  done
  sed "s#@RUN@#$RUN#g" "$HERE/etc/glance-api.conf" > "$RUN/etc/glance/glance-api.conf"
  cp "$VENV/etc/glance/glance-api-paste.ini" "$RUN/etc/glance/"
  sed "s#@RUN@#$RUN#g" "$HERE/etc/nova.conf" > "$RUN/etc/nova/nova.conf"
  cp "$VENV/etc/nova/api-paste.ini" "$RUN/etc/nova/"
  local i
  for i in $(seq 1 "$NCOMPUTE"); do
    mkdir -p "$RUN/nova/compute$i/instances"
    cat > "$RUN/etc/nova/compute$i.conf" <<EOC
[DEFAULT]
host = compute$i
state_path = $RUN/nova/compute$i
instances_path = $RUN/nova/compute$i/instances
log_file = $LOGD/nova-compute$i.log
EOC
  done
  # Prometheus: scrape the pushgateway every 2 s; the collection's recording
  # rules are loaded when the file exists (a glob matching nothing is fine)
  cat > "$RUN/prometheus/prometheus.yml" <<EOC
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $TOP/roles/prometheus_hypervisor/files/leveller_rules.y*ml
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:9091']
EOC
  cat > "$RUN/my.cnf" <<EOC
[mysqld]
user=$(id -un)
datadir=$RUN/mysql/data
socket=$RUN/mysql/mysqld.sock
pid-file=$RUN/mysql/mysqld.pid
bind-address=127.0.0.1
port=3306
skip-name-resolve
max_connections=1000
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
innodb_flush_log_at_trx_commit=0
innodb_doublewrite=0
sync_binlog=0
performance_schema=OFF
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
log-error=$LOGD/mysqld.log
[client]
socket=$RUN/mysql/mysqld.sock
EOC
  echo "[]." > "$RUN/rabbit/enabled_plugins"
  cat > "$RUN/rabbit/rabbitmq.conf" <<EOC
listeners.tcp.default = 127.0.0.1:5672
loopback_users = none
default_user = openstack
default_pass = $RABBIT_PASS
EOC
}

mysql_wait() {
  local i
  for i in $(seq 1 150); do
    mariadb --defaults-file="$RUN/my.cnf" -uroot -e 'select 1' >/dev/null 2>&1 && return 0
    alive mysqld || die "mysqld exited; read $LOGD/mysqld.log"
    sleep 0.2
  done
  die "mysqld did not answer within 30 s; read $LOGD/mysqld.log"
}

start_mysqld() {
  alive mysqld && return 0
  check_port_free mysqld 3306
  if [ ! -d "$RUN/mysql/data/mysql" ]; then
    mariadb-install-db --defaults-file="$RUN/my.cnf" --auth-root-authentication-method=normal \
      --skip-test-db > "$LOGD/mysql-install.log" 2>&1 \
      || die "mariadb-install-db failed; read $LOGD/mysql-install.log"
  fi
  start mysqld /usr/sbin/mariadbd --defaults-file="$RUN/my.cnf"
}

start_rabbitmq() {
  alive rabbitmq && return 0
  check_port_free rabbitmq 5672
  HOME=$RUN/rabbit RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 ERL_EPMD_ADDRESS=127.0.0.1 \
  RABBITMQ_MNESIA_BASE=$RUN/rabbit/mnesia RABBITMQ_LOG_BASE=$LOGD \
  RABBITMQ_CONFIG_FILE=$RUN/rabbit/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$RUN/rabbit/enabled_plugins \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    start rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
}

infra_dbs() {
  mariadb --defaults-file="$RUN/my.cnf" -uroot <<EOS
CREATE USER IF NOT EXISTS 'os'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON *.* TO 'os'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS keystone;
CREATE DATABASE IF NOT EXISTS placement;
CREATE DATABASE IF NOT EXISTS glance;
CREATE DATABASE IF NOT EXISTS nova_api;
CREATE DATABASE IF NOT EXISTS nova_cell0;
CREATE DATABASE IF NOT EXISTS nova;
FLUSH PRIVILEGES;
EOS
}

db_init() {  # keystone bootstrap, then the other schema syncs in parallel
  local KC=(--config-file "$RUN/etc/keystone/keystone.conf") NC=(--config-file "$RUN/etc/nova/nova.conf")
  local log=$LOGD/dbinit.log
  {
    keystone-manage "${KC[@]}" db_sync
    keystone-manage "${KC[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    keystone-manage "${KC[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    keystone-manage "${KC[@]}" bootstrap --bootstrap-password "$ADMIN_PASS" \
      --bootstrap-admin-url http://127.0.0.1:5000/v3/ \
      --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
      --bootstrap-public-url http://127.0.0.1:5000/v3/ \
      --bootstrap-region-id RegionOne
  } >> "$log" 2>&1 || die "keystone db init failed; read $log"
  placement-manage --config-file "$RUN/etc/placement/placement.conf" db sync \
    > "$LOGD/placement-manage.log" 2>&1 & local p1=$!
  glance-manage --config-file "$RUN/etc/glance/glance-api.conf" db_sync \
    > "$LOGD/glance-manage.log" 2>&1 & local p2=$!
  ( nova-manage "${NC[@]}" api_db sync
    nova-manage "${NC[@]}" cell_v2 map_cell0 --database_connection "mysql+pymysql://os:$DB_PASS@127.0.0.1/nova_cell0"
    nova-manage "${NC[@]}" cell_v2 create_cell --name cell1 --verbose
    nova-manage "${NC[@]}" db sync ) > "$LOGD/nova-manage.log" 2>&1 & local p3=$!
  wait $p1 || die "placement db sync failed; read $LOGD/placement-manage.log"
  wait $p2 || die "glance db sync failed; read $LOGD/glance-manage.log"
  wait $p3 || die "nova db sync failed; read $LOGD/nova-manage.log"
}

snapshot_save() {  # stop mysqld cleanly, tar datadir + keystone keys, restart
  local snap=$1 pid
  pid=$(cat "$PIDS/mysqld.pid")
  stop_group "$pid"; rm -f "$PIDS/mysqld.pid"
  mkdir -p "$CACHE"
  tar -C "$RUN" -czf "$snap.tmp" mysql/data keystone && mv "$snap.tmp" "$snap"
  start_mysqld; mysql_wait
}

# The BMCs (bmc.py): their power actions call 'cloud.sh compute', so they are daemons like
# the others and never hold the lock. bmc.json keeps its password until 'down'.
start_bmcs() {
  alive bmc-redfish && alive bmc-ipmi && return 0
  check_port_free bmc-redfish "$REDFISH_PORT"
  "$TOOLS_PY" "$HERE/bmc.py" init "$NCOMPUTE" "$REDFISH_PORT" "$IPMI_PORT_BASE" \
    || die "writing $RUN/bmc.json failed (bmc.py init)"
  start bmc-redfish "$TOOLS_PY" "$HERE/bmc.py" redfish
  start bmc-ipmi "$TOOLS_PY" "$HERE/bmc.py" ipmi
}
wait_bmc_ipmi() {  # UDP has no connect check: the launcher logs once its ports are bound
  local i
  for i in $(seq 1 150); do
    grep -q 'ipmi: listening' "$LOGD/bmc-ipmi.out" 2>/dev/null && return 0
    alive bmc-ipmi || die "bmc-ipmi exited (UDP ports $((IPMI_PORT_BASE + 1))-$((IPMI_PORT_BASE + NCOMPUTE)) in use?); read $LOGD/bmc-ipmi.out"
    sleep 0.2
  done
  die "bmc-ipmi did not bind its UDP ports within 30 s; read $LOGD/bmc-ipmi.out"
}

# ---------------------------------------------------------------- up
cmd_up() {
  if [ ! -x "$PY" ] || [ ! -f "$VENV/.leveller-stamp" ]; then
    die "the cloud venv is missing: run '$0 install' first"
  fi
  "$TOOLS_PY" -c 'import sushy_tools, pyghmi, bcrypt' 2>/dev/null \
    || die "the BMCs need sushy-tools and pyghmi in $TOOLS_PY: run scripts/install-tools.sh (make deps)"
  export PATH=$VENV/bin:$PATH
  local all_up=1 s
  for s in $(services); do alive "${s%%:*}" || { all_up=0; break; }; done
  if [ $all_up = 1 ] && [ -f "$RUN/.ready" ]; then
    # pick up recording rules added to the checkout since the start
    curl -s -o /dev/null -X POST --max-time 5 http://127.0.0.1:9090/-/reload || true
    say "already up (all $(services | wc -w) services running; 'cloud.sh status' for details)"
    return 0
  fi
  say "starting (state under $RUN, logs in $LOGD)"
  local fresh=0 key snap restored=0
  key=$(db_key); snap=$CACHE/dbinit-$key.tgz
  if [ ! -f "$RUN/.dbinit-done" ]; then
    # no initialised cloud here: stop leftovers of an interrupted start, begin clean
    cmd_down >/dev/null 2>&1 || true
    rm -rf "$RUN"; fresh=1
  fi
  rm -f "$RUN/.ready"
  write_config
  # Prometheus, the pushgateway and the feeder depend on nothing else (the
  # feeder pushes idle hosts until Nova answers): start them first
  check_port_free prometheus 9090; check_port_free pushgateway 9091
  start prometheus prometheus --config.file="$RUN/prometheus/prometheus.yml" \
    --storage.tsdb.path="$RUN/prometheus/data" --web.listen-address=127.0.0.1:9090 \
    --web.enable-lifecycle --log.level=warn
  start pushgateway prometheus-pushgateway --web.listen-address=127.0.0.1:9091 --log.level=warn
  start feeder "$PY" "$HERE/feeder.py"
  if [ $fresh = 1 ] && [ -f "$snap" ]; then
    tar -C "$RUN" -xzf "$snap"; restored=1
    ts "db-init snapshot restored ($(basename "$snap"))"
  fi
  start_mysqld; start_rabbitmq
  mysql_wait; infra_dbs
  ts "mariadb 127.0.0.1:3306 up"
  local GUNI=(gunicorn --pythonpath "$HERE/wsgi" --workers 1 --threads 8 --worker-class gthread
              --timeout 120 --graceful-timeout 5 --no-control-socket)
  for s in keystone:5000 placement:8778 glance-api:9292 nova-api:8774 fake-neutron:9696; do
    check_port_free "${s%%:*}" "${s##*:}"
  done
  if [ ! -f "$RUN/.dbinit-done" ] && [ $restored = 0 ]; then
    # cold: schemas, keystone bootstrap, service users and catalog, then
    # save all of it as the db-init snapshot for the next cold start
    db_init; ts "databases initialised (keystone bootstrap, placement/glance/nova syncs)"
    OS_KEYSTONE_CONFIG_DIR=$RUN/etc/keystone start keystone "${GUNI[@]}" --bind 127.0.0.1:5000 keystone_app:application
    wait_http keystone http://127.0.0.1:5000/v3 "$LOGD/keystone.log" 120
    "$PY" "$HERE/cloudctl.py" register > "$LOGD/register.log" 2>&1 \
      || die "registering service users in keystone failed; read $LOGD/register.log and $LOGD/keystone.log"
    ts "service users and catalog registered in keystone"
    snapshot_save "$snap"; ts "db-init snapshot saved to $snap"
  fi
  touch "$RUN/.dbinit-done"
  # the WSGI APIs only need the database at start
  OS_KEYSTONE_CONFIG_DIR=$RUN/etc/keystone start keystone "${GUNI[@]}" --bind 127.0.0.1:5000 keystone_app:application
  start fake-neutron "$PY" "$HERE/fake_neutron.py" 9696
  OS_PLACEMENT_CONFIG_DIR=$RUN/etc/placement start placement "${GUNI[@]}" --bind 127.0.0.1:8778 placement_app:application
  OS_GLANCE_CONFIG_DIR=$RUN/etc/glance start glance-api "${GUNI[@]}" --bind 127.0.0.1:9292 glance_app:application
  OS_NOVA_CONFIG_DIR=$RUN/etc/nova start nova-api "${GUNI[@]}" --bind 127.0.0.1:8774 nova_api_app:application
  local i
  for i in $(seq 1 300); do
    port_open 5672 && break
    alive rabbitmq || die "rabbitmq exited; read $LOGD/rabbitmq.out and $LOGD/rabbit@localhost.log"
    sleep 0.2
  done
  port_open 5672 || die "rabbitmq did not listen on 127.0.0.1:5672 within 60 s; read $LOGD/rabbit@localhost.log"
  ts "rabbitmq 127.0.0.1:5672 up"
  # conductor, scheduler and computes exit at start if keystone or placement
  # do not answer (or the service users are missing): start them after
  wait_http keystone http://127.0.0.1:5000/v3 "$LOGD/keystone.log" 120
  wait_http placement http://127.0.0.1:8778/ "$LOGD/placement.log" 120
  ts "keystone and placement answering"
  local NC=(--config-file "$RUN/etc/nova/nova.conf")
  start nova-conductor nova-conductor "${NC[@]}" --log-file "$LOGD/nova-conductor.log"
  start nova-scheduler nova-scheduler "${NC[@]}" --log-file "$LOGD/nova-scheduler.log"
  for i in $(seq 1 "$NCOMPUTE"); do
    start "nova-compute$i" nova-compute "${NC[@]}" --config-file "$RUN/etc/nova/compute$i.conf"
  done
  start_bmcs
  wait_http nova-api http://127.0.0.1:8774/ "$LOGD/nova-api.log" 120
  wait_http glance-api http://127.0.0.1:9292/ "$LOGD/glance-api.log" 120
  wait_http fake-neutron http://127.0.0.1:9696/ "$LOGD/fake-neutron.out" 30
  wait_http prometheus http://127.0.0.1:9090/-/ready "$LOGD/prometheus.out" 60
  wait_http pushgateway http://127.0.0.1:9091/-/ready "$LOGD/pushgateway.out" 60
  wait_http bmc-redfish "http://127.0.0.1:$REDFISH_PORT/redfish/v1/" "$LOGD/bmc-redfish.out" 60
  wait_bmc_ipmi
  ts "APIs answering (nova-api, glance, neutron stand-in, prometheus, pushgateway, BMCs)"
  # flavors, image, demo user: in the background while the computes start
  "$PY" "$HERE/cloudctl.py" resources > "$LOGD/resources.log" 2>&1 & local res=$!
  "$PY" "$HERE/cloudctl.py" wait services "$NCOMPUTE" 240 || {
    for s in nova-conductor nova-scheduler $(seq -f 'nova-compute%g' 1 "$NCOMPUTE"); do
      alive "$s" || echo "cloud: $s is not running; read $LOGD/$s.log and $LOGD/$s.out" >&2
    done; exit 1; }
  ts "$NCOMPUTE nova-compute services up"
  # the scheduler maps new hosts into cell1 every 2 s (nova.conf); fall back
  # to nova-manage if that has not happened soon
  if ! "$PY" "$HERE/cloudctl.py" wait hypervisors "$NCOMPUTE" 15 2>/dev/null; then
    nova-manage "${NC[@]}" cell_v2 discover_hosts > "$LOGD/discover_hosts.log" 2>&1 \
      || die "nova-manage cell_v2 discover_hosts failed; read $LOGD/discover_hosts.log"
    "$PY" "$HERE/cloudctl.py" wait hypervisors "$NCOMPUTE" 60
  fi
  ts "hosts mapped to cell1, hypervisors listed"
  wait $res || { cat "$LOGD/resources.log" >&2; die "creating flavors/image/demo user failed; read $LOGD/resources.log"; }
  cat "$LOGD/resources.log"
  alive feeder || die "the telemetry feeder exited; read $LOGD/feeder.out"
  "$PY" "$HERE/cloudctl.py" wait-prometheus "$NCOMPUTE" 60
  touch "$RUN/.ready"
  say "cloud ready in $(printf '%.0f' "$(el)") s ($NCOMPUTE computes; 'eval \"\$($0 env)\"' to use it)"
}

# ---------------------------------------------------------------- down
cmd_down() {
  local pf pids=() names=()
  for pf in "$PIDS"/*.pid; do
    [ -f "$pf" ] || continue
    pids+=("$(cat "$pf")"); names+=("$(basename "$pf" .pid)"); rm -f "$pf"
  done
  # the state is dropped below, so no service needs a long graceful stop
  # (nova-compute would wait minutes): TERM, 3 s, KILL
  [ ${#pids[@]} -gt 0 ] && GRACE=3 stop_group "${pids[@]}"
  # epmd was daemonised by RabbitMQ into its own session: stop it only if ours
  local e; e=$(our_epmd)
  [ -n "$e" ] && { kill "$e" 2>/dev/null || true; names+=(epmd); }
  if [ -d "$RUN" ]; then
    # drop the cloud's state (the next up starts clean, from the db-init
    # snapshot); keep the logs of this run for reading
    find "$RUN" -mindepth 1 -maxdepth 1 ! -name log -exec rm -rf {} +
  fi
  if [ ${#names[@]} -gt 0 ]; then say "stopped: ${names[*]} (logs kept in $LOGD)"
  else say "nothing was running"; fi
}

# ---------------------------------------------------------------- status
cmd_status() {
  local s name port pid st ok=0
  for s in $(services); do
    name=${s%%:*}; port=${s##*:}; pid=-
    [ -f "$PIDS/$name.pid" ] && pid=$(cat "$PIDS/$name.pid")
    if alive "$name"; then
      st=up
      if [[ $port =~ ^[0-9]+$ ]] && ! port_open "$port"; then st="down (running, port $port not answering)"; ok=1; fi
    else st=down; ok=1; fi
    printf '%-16s %-6s pid %-8s port %s\n' "$name" "$st" "$pid" "$port"
  done
  return $ok
}

# ---------------------------------------------------------------- reset
cmd_reset() {
  # A process left stopped (SIGSTOP) by an interrupted fault case still counts as alive: wake
  # every group of ours first, then start whatever is not running.
  local pf
  for pf in "$PIDS"/*.pid; do
    if [ -f "$pf" ]; then kill -CONT -- "-$(cat "$pf")" 2>/dev/null || true; fi
  done
  # BMC fault modes (bmc-fault) left by a fault case: every host's BMCs answer true again
  local faults dry=()
  [ "${1:-}" = --dry-run ] && dry=(--dry-run)
  faults=$(python3 "$HERE/bmc.py" fault --clear "${dry[@]}") || die "clearing the BMC faults failed ($RUN/bmc/faults.json)"
  [ -z "$faults" ] || say "reset: ${1:+would }clear the BMC faults $faults"
  [ "${1:-}" = --dry-run ] || cmd_up
  export PATH=$VENV/bin:$PATH
  "$PY" "$HERE/cloudctl.py" reset "$@"
  local overrides
  overrides=$(python3 -c 'import json, sys
try:
    h = json.load(open(sys.argv[1])).get("hosts") or {}
except (OSError, ValueError):
    h = {}
print(json.dumps(h, sort_keys=True) if h else "")' "$RUN/load.json")
  if [ -n "$overrides" ]; then
    say "reset: ${1:+would }clear the load overrides $overrides"
    [ "${1:-}" = --dry-run ] || cmd_load --reset >/dev/null
  fi
  [ "${1:-}" = --dry-run ] && return 0
  "$PY" "$HERE/cloudctl.py" wait services "$NCOMPUTE" 120 >/dev/null
  say "reset: done, $NCOMPUTE computes enabled and up, no instance"
}

cmd_env() {
  cat <<EOE
export OS_CLIENT_CONFIG_FILE=$HERE/clouds.yaml
export OS_CLOUD=leveller
export LEVELLER_PROMETHEUS_URL=http://127.0.0.1:9090
export LEVELLER_PUSHGATEWAY_URL=http://127.0.0.1:9091
export LEVELLER_CLOUD_RUN=$RUN
export LEVELLER_CLOUD_VENV=$VENV
export LEVELLER_BMC_FILE=$RUN/bmc.json
export LEVELLER_REDFISH_URL=http://127.0.0.1:$REDFISH_PORT
export LEVELLER_IPMI_PORT_BASE=$IPMI_PORT_BASE
EOE
  # the BMC password is made by 'up' (bmc.json, mode 0600) and kept until 'down'
  [ -f "$RUN/bmc.json" ] && python3 -c 'import json, shlex, sys
c = json.load(open(sys.argv[1]))
print("export LEVELLER_BMC_USERNAME=%s\nexport LEVELLER_BMC_PASSWORD=%s" % (shlex.quote(c["username"]), shlex.quote(c["password"])))' "$RUN/bmc.json"
  return 0
}

# ---------------------------------------------------------------- signal
cmd_signal() {  # NAME STOP|CONT: a process frozen, as a hung host or a stuck API is (fault cases)
  local name=${1:-} sig=${2:-} pf
  case $sig in STOP|CONT) ;; *) die "usage: cloud.sh signal NAME STOP|CONT" ;; esac
  pf=$PIDS/$name.pid
  services | tr ' ' '\n' | grep -q "^$name:" || die "unknown service $name (cloud.sh status lists them)"
  alive "$name" || die "$name is not running (pid file $pf)"
  kill "-$sig" -- "-$(cat "$pf")"
  say "$name: SIG$sig sent to process group $(cat "$pf")"
}

# ---------------------------------------------------------------- compute
cmd_compute() {
  local action=${1:-} n=${2:-}
  [[ "$n" =~ ^[0-9]+$ ]] || die "usage: cloud.sh compute stop|kill|start N"
  local name=nova-compute$n pf=$PIDS/nova-compute$n.pid
  case $action in
    stop|kill)
      alive "$name" || { say "$name is not running"; return 0; }
      local pid; pid=$(cat "$pf")
      # nova-compute's graceful stop can take minutes: TERM (or KILL), 10 s, KILL
      if [ "$action" = kill ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
      stop_group "$pid"; rm -f "$pf"; say "$name (compute$n) ${action/stop/stopp}ed" ;;
    start)
      [ -f "$RUN/etc/nova/compute$n.conf" ] || die "compute$n is not configured (NCOMPUTE=$NCOMPUTE, cloud up?)"
      alive "$name" && { say "$name already running"; return 0; }
      PATH=$VENV/bin:$PATH start "$name" nova-compute --config-file "$RUN/etc/nova/nova.conf" \
        --config-file "$RUN/etc/nova/compute$n.conf"
      say "$name started (reports up after ~5-10 s; log $LOGD/$name.log)" ;;
    *) die "usage: cloud.sh compute stop|kill|start N" ;;
  esac
}

# ---------------------------------------------------------------- load
cmd_load() {
  [ -d "$RUN" ] || die "the cloud is not up"
  python3 - "$RUN/load.json" "$@" <<'EOP'
import json, os, sys
path, args = sys.argv[1], sys.argv[2:]
try:
    data = json.load(open(path))
except FileNotFoundError:
    data = {}
hosts = data.setdefault('hosts', {})
host, show = None, not args
i = 0
while i < len(args):
    a = args[i]
    if a == '--reset':
        if host: hosts.pop(host, None)
        else: hosts.clear()
    elif a == '--host': i += 1; host = args[i]
    elif a in ('--cpu', '--memory'):
        i += 1
        if not host: sys.exit('cloud load: %s needs --host first' % a)
        v = float(args[i])
        if not 0 <= v <= 1: sys.exit('cloud load: %s must be in 0..1' % a)
        e = hosts.setdefault(host, {}); e.pop('absent', None); e[a[2:]] = v
    elif a == '--absent':
        if not host: sys.exit('cloud load: --absent needs --host first')
        hosts[host] = {'absent': True}
    elif a == '--present':
        if host: hosts.get(host, {}).pop('absent', None)
    elif a == '--show': show = True
    else: sys.exit('usage: cloud.sh load [--host H] [--cpu X] [--memory Y] [--absent|--present] [--reset] [--show]')
    i += 1
hosts = {h: v for h, v in hosts.items() if v}
data['hosts'] = hosts
tmp = path + '.tmp'
json.dump(data, open(tmp, 'w'), indent=1, sort_keys=True)
os.replace(tmp, path)
print('overrides: %s' % json.dumps(hosts, sort_keys=True))
if show:
    st = os.path.join(os.path.dirname(path), 'feeder-state.json')
    if os.path.exists(st):
        for h, v in sorted(json.load(open(st))['hosts'].items()):
            print('%-10s cpu %.3f memory %.3f%s' % (h, v['cpu'], v['memory'], ' ABSENT' if v['absent'] else ''))
EOP
}

cmd_rss() {
  local total=0 pf g name kb n e r
  printf '%-16s %6s %9s\n' service procs RSS_MiB
  for pf in "$PIDS"/*.pid; do
    [ -f "$pf" ] || continue
    g=$(cat "$pf"); name=$(basename "$pf" .pid)
    read -r kb n < <(ps -eo pgid=,rss= | awk -v g="$g" '$1==g {s+=$2; c++} END {print s+0, c+0}')
    printf '%-16s %6s %9.1f\n' "$name" "$n" "$(echo "$kb/1024" | bc -l)"
    total=$((total + kb))
  done
  e=$(our_epmd)
  if [ -n "$e" ]; then
    r=$(ps -o rss= -p "$e"); total=$((total + r))
    printf '%-16s %6s %9.1f\n' epmd 1 "$(echo "$r/1024" | bc -l)"
  fi
  printf '%-16s %6s %9.1f\n' TOTAL '' "$(echo "$total/1024" | bc -l)"
}

cmd_smoke() {
  [ -f "$RUN/.ready" ] || die "the cloud is not up: run '$0 up' first"
  "$PY" "$HERE/smoke.py" "$@"
}

cmd_bmc_check() {  # no lock: the BMCs' power actions take it ('cloud.sh compute')
  [ -f "$RUN/.ready" ] || die "the cloud is not up: run '$0 up' first"
  "$TOOLS_PY" "$HERE/bmc_check.py" "$@"
}

cmd_bmc_fault() {  # [computeN MODE]: both BMCs of a host answer wrong, at once (run/bmc/faults.json)
  [ -f "$RUN/bmc.json" ] || die "the cloud is not up: run '$0 up' first"
  python3 "$HERE/bmc.py" fault "$@"
}

lock() {  # one install/up/down/compute at a time (daemons do not inherit fd 9)
  mkdir -p "$BASE"
  exec 9> "$BASE/.lock"
  flock -w 600 9 || die "another cloud.sh holds $BASE/.lock"
}

case ${1:-} in
  install|up|down|compute|reset) lock ;;
esac
case ${1:-} in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) shift; cmd_reset "$@" ;;
  env) cmd_env ;;
  compute) shift; cmd_compute "$@" ;;
  signal) shift; cmd_signal "$@" ;;
  load) shift; cmd_load "$@" ;;
  rss) cmd_rss ;;
  smoke) shift; cmd_smoke "$@" ;;
  bmc-check) shift; cmd_bmc_check "$@" ;;
  bmc-fault) shift; cmd_bmc_fault "$@" ;;
  *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && exit 2; exit 0 ;;
esac
