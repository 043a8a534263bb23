#!/usr/bin/env bash
# Runs the shipped rulebook extensions/eda/rulebooks/recover_on_host_down.yml with a real
# ansible-rulebook (its own venv, Java 17) and the collection's alertmanager event source.
# 0. The event source's own checks (test_alertmanager_source.py).
# 1. Without a token the rulebook refuses to start; with insecure_no_auth it accepts a call
#    without one, and host_regex maps a label.
# 2. Posts Alertmanager webhook payloads over HTTP: the recovery playbook runs exactly once per
#    failed host, although the alert for compute1 arrives twice; resolved alerts, other alert
#    names, bad payloads, a missing or wrong bearer token and host labels that are not plain host
#    names start nothing; host_map maps a label. A label "{{ lookup('pipe', ...) }}" is never
#    evaluated: refused as a host, and never handed to the playbook in ansible_eda.
# 3. A real Prometheus evaluates the collection's HypervisorDown rule (installed by the
#    prometheus_hypervisor role) for a scrape target nobody serves, a real Alertmanager sends
#    and repeats the alert to the rulebook: recovery runs once for that host.
# In 1-3 the recovery playbook is replaced by marker.yml (leveller_recover_playbook), which leaves
# a marker file per run, holding what it was given, instead of evacuating a host.
# 4. End to end on the local cloud: an instance is booted on a compute host, the host is powered
#    off through its Redfish BMC; its node target (host_exporter.py, up while the host's
#    nova-compute runs) goes down, Prometheus fires HypervisorDown, Alertmanager sends and repeats
#    it, and the rulebook runs the real cloudops.leveller.recover with leveller_bmcs from the
#    cloud's bmc.json: the instance is ACTIVE on another host, exactly once, the instance count
#    is unchanged, recovery ran once. Then the host is powered on through its BMC,
#    cloudops.leveller.restore re-enables it and brings the instance home, and the instance is deleted.
# Needs: ansible-rulebook 1.3 in LEVELLER_EDA_VENV (default ~/.cache/cloudops-leveller/eda-venv),
# Java 17 (Debian default-jre-headless), Debian prometheus and prometheus-alertmanager, the
# collection on ANSIBLE_COLLECTIONS_PATH, ansible-playbook on PATH, and for 4 the local cloud
# (tests/integration/cloud/cloud.sh up) and a Python with the collection's requirements
# (LEVELLER_VENV, default ~/.cache/cloudops-leveller/venv). Part 4 powers a compute host off:
# nothing else may use the cloud meanwhile. Runs under ansible-test (which passes
# -e @integration_config.yml) or alone; LEVELLER_TEST_EDA_PARTS="0 1 2 3" runs only those parts,
# LEVELLER_TEST_EDA_KEEP=1 keeps the logs.
# Ports (127.0.0.1): 15001, 19190, 19193, 19201-19204.
set -eu -o pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
EDA_VENV=${LEVELLER_EDA_VENV:-$HOME/.cache/cloudops-leveller/eda-venv}
TOOLS_VENV=${LEVELLER_VENV:-$HOME/.cache/cloudops-leveller/venv}
if [ ! -x "$EDA_VENV/bin/ansible-rulebook" ]; then
  echo "FAIL: no ansible-rulebook in $EDA_VENV (pip install 'ansible-rulebook>=1.3,<1.4' aiohttp there)" >&2
  exit 1
fi
if [ -z "${JAVA_HOME:-}" ]; then
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  export JAVA_HOME
fi
cfg=()
for a in "$@"; do case $a in @*integration_config.yml) cfg=(-e "$a");; esac; done
[ ${#cfg[@]} -gt 0 ] || { f=$(ls ../../integration_config.yml 2>/dev/null) && cfg=(-e "@$f"); } || true
PORT=${LEVELLER_TEST_EDA_PORT:-15001}
PROM_PORT=${LEVELLER_TEST_EDA_PROMETHEUS_PORT:-19190}
AM_PORT=${LEVELLER_TEST_EDA_ALERTMANAGER_PORT:-19193}
EXPORTER_PORT_BASE=${LEVELLER_TEST_EDA_EXPORTER_PORT_BASE:-19200}
TOKEN=leveller-ci-token-$$-$RANDOM
TEST_DIR=$(mktemp -d)
export LEVELLER_TEST_MARKER_DIR=$TEST_DIR/markers
mkdir -p "$LEVELLER_TEST_MARKER_DIR"
RULEBOOK_PID='' AM_PID='' PROM_PID='' EXPORTER_PID=''
RULEBOOK_LOG=$TEST_DIR/rulebook.log
# part 4: the host powered off, the test instance (the cleanup puts the cloud back on failure)
VICTIM='' SERVER='' OSC=''

stop() {  # stop PID...: end the processes this script started
  for pid in "$@"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  stop "$PROM_PID" "$AM_PID" "$RULEBOOK_PID" "$EXPORTER_PID"
  if [ -n "$VICTIM" ]; then
    echo "cleanup: powering $VICTIM on again and re-enabling it" >&2
    bmc_reset "$VICTIM" On >/dev/null 2>&1 || true
    wait_heartbeat "$VICTIM" 120 >/dev/null 2>&1 || true
    restore_host "$VICTIM" >/dev/null 2>&1 || echo "cleanup: cloudops.leveller.restore -e host=$VICTIM failed" >&2
    "$OSC" --os-compute-api-version 2.11 compute service list --service nova-compute --long >&2 || true
  fi
  if [ -n "$SERVER" ]; then
    "$OSC" server delete --wait "$SERVER" >/dev/null 2>&1 || echo "cleanup: could not delete instance $SERVER" >&2
  fi
  if [ -n "${LEVELLER_TEST_EDA_KEEP:-}" ]; then echo "kept $TEST_DIR" >&2; else rm -rf "$TEST_DIR"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [ -f "$RULEBOOK_LOG" ] && tail -60 "$RULEBOOK_LOG" >&2
  # the playbook runs of part 4, each once
  [ -f "$TEST_DIR/runs-recover.log" ] && { echo "---- $TEST_DIR/runs-recover.log (end)" >&2; tail -40 "$TEST_DIR/runs-recover.log" | cut -c1-600 >&2; }
  # once more after the logs: the end of the output names the cause
  echo "FAIL: $* ($(date -u +%H:%M:%S))" >&2
  exit 1
}

start_rulebook() {  # start_rulebook VARS_FILE INVENTORY: start ansible-rulebook, wait for its webhook
  RULEBOOK_LOG=$TEST_DIR/rulebook-$(basename "$1" .yml).log
  # each playbook run once in ANSIBLE_LOG_PATH (ansible-rulebook logs a failed run's output twice)
  PATH=$EDA_VENV/bin:$PATH ANSIBLE_LOG_PATH=$TEST_DIR/runs-$(basename "$1" .yml).log "$EDA_VENV/bin/ansible-rulebook" \
    -i "$2" --rulebook cloudops.leveller.recover_on_host_down --vars "$1" -v > "$RULEBOOK_LOG" 2>&1 &
  RULEBOOK_PID=$!
  for _ in $(seq 1 90); do
    if [ "$(post '{"alerts":[]}' 2>/dev/null)" = 200 ]; then return 0; fi
    kill -0 "$RULEBOOK_PID" 2>/dev/null || fail "ansible-rulebook exited"
    sleep 1
  done
  fail "the webhook never answered"
}

post() {  # post JSON [TOKEN|-]: print the HTTP status; "-" sends no Authorization header
  local auth=(-H "Authorization: Bearer ${2-$TOKEN}")
  [ "${2-}" = - ] && auth=()
  curl -s -o "$TEST_DIR/response" -w '%{http_code}' -H 'Content-Type: application/json' \
    "${auth[@]}" --data-binary "$1" "http://127.0.0.1:$PORT/alerts"
}
alert() {  # alert STATUS ALERTNAME LABEL=VALUE... (annotation.NAME=VALUE: an annotation)
  "$EDA_VENV/bin/python" - "$@" <<'EOP'
import json, sys
status, name = sys.argv[1:3]
labels, annotations = {"alertname": name, "severity": "critical"}, {"summary": "hypervisor down"}
for pair in sys.argv[3:]:
    key, value = pair.split("=", 1)
    if key.startswith("annotation."):
        annotations[key[len("annotation."):]] = value
    else:
        labels[key] = value
print(json.dumps({
    "version": "4", "groupKey": '{}:{alertname="%s"}' % name, "status": status, "receiver": "leveller",
    "groupLabels": {"alertname": name}, "commonLabels": {}, "commonAnnotations": {},
    "externalURL": "http://alertmanager.example:9093",
    "alerts": [{"status": status, "labels": labels, "annotations": annotations,
                "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": "0123456789abcdef"}]}))
EOP
}
count() { find "$LEVELLER_TEST_MARKER_DIR" -name "recover-$1-*" | wc -l; }
markers() { find "$LEVELLER_TEST_MARKER_DIR" -type f -printf '%f\n' | sort | tr '\n' ' '; }

printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$EDA_VENV/bin/python" > "$TEST_DIR/inventory"

# LEVELLER_TEST_EDA_PARTS: the parts to run (default all: "0 1 2 3 4")
PARTS=" ${LEVELLER_TEST_EDA_PARTS:-0 1 2 3 4} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
for binary in prometheus prometheus-alertmanager promtool; do
  command -v "$binary" >/dev/null || fail "$binary not found (Debian packages prometheus, prometheus-alertmanager)"
done
install_rules() {  # install_rules DIR ALERT_FOR
  mkdir -p "$1"
  ansible-playbook -i "localhost," -c local -e "ansible_python_interpreter=$EDA_VENV/bin/python" \
    -e "rules_dir=$1" -e "alert_for=$2" rules.yml "${cfg[@]}" > "$TEST_DIR/rules.log" 2>&1 \
    || { cat "$TEST_DIR/rules.log"; fail "installing the rules"; }
}
start_monitoring() {  # start_monitoring NAME RULES_DIR SCRAPE_CONFIGS: Prometheus and Alertmanager
  local dir=$TEST_DIR/$1
  mkdir -p "$dir/prometheus" "$dir/alertmanager"
  cat > "$dir/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $2/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
$3
EOC
  cat > "$dir/alertmanager.yml" <<EOC
route:
  receiver: leveller
  group_by: [alertname, hypervisor]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: leveller
    webhook_configs:
      - url: http://127.0.0.1:$PORT/alerts
        send_resolved: true
        http_config:
          authorization:
            credentials: $TOKEN
EOC
  prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/alertmanager" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= > "$dir/alertmanager.log" 2>&1 &
  AM_PID=$!
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$dir/prometheus.log" 2>&1 &
  PROM_PID=$!
}
notifications() {
  curl -s "http://127.0.0.1:$AM_PORT/metrics" \
    | awk '/^alertmanager_notifications_total\{integration="webhook"\}/ {print $2}'
}

if part 0; then
echo "== 0. the event source's own checks"
"$EDA_VENV/bin/python" test_alertmanager_source.py 2>&1 | tail -3
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "test_alertmanager_source.py"
fi

if part 1; then
echo "== 1. no token: refused to start; insecure_no_auth: any caller, with host_regex"
cat > "$TEST_DIR/no-token.yml" <<EOV
leveller_recover_playbook: $HERE/marker.yml
leveller_eda_port: $PORT
EOV
RULEBOOK_LOG=$TEST_DIR/rulebook-no-token.log
rc=0
PATH=$EDA_VENV/bin:$PATH timeout 120 "$EDA_VENV/bin/ansible-rulebook" -i "$TEST_DIR/inventory" \
  --rulebook cloudops.leveller.recover_on_host_down --vars "$TEST_DIR/no-token.yml" -v > "$RULEBOOK_LOG" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then fail "the rulebook without a token did not stop at once (rc $rc)"; fi
grep -q 'ValueError: the Alertmanager webhook has no token' "$RULEBOOK_LOG" || fail "the rulebook did not say why it refused to start without a token"
echo "no token: refused to start ($(grep -o 'the Alertmanager webhook has no token[^.]*' "$RULEBOOK_LOG" | head -1))"

cat > "$TEST_DIR/insecure.yml" <<EOV
leveller_recover_playbook: $HERE/marker.yml
leveller_eda_port: $PORT
leveller_eda_insecure_no_auth: true
leveller_eda_host_regex: '^(?P<host>compute[0-9]+)\.leveller\.test$'
EOV
start_rulebook "$TEST_DIR/insecure.yml" "$TEST_DIR/inventory"
grep -q 'accepts any caller' "$RULEBOOK_LOG" || fail "insecure_no_auth gave no warning"
[ "$(post "$(alert firing HypervisorDown instance=compute9.leveller.test:9100)" -)" = 200 ] || fail "insecure_no_auth: a call without a token was refused"
[ "$(post "$(alert firing HypervisorDown instance=compute8:9100)" -)" = 200 ] || fail "insecure_no_auth: a call was refused"
for _ in $(seq 1 60); do [ "$(count compute9)" -ge 1 ] && break; sleep 1; done
sleep 5
[ "$(count compute9)" -eq 1 ] || fail "host_regex: recovery ran $(count compute9) times for compute9.leveller.test, expected once"
[ "$(count compute8)" -eq 0 ] || fail "host_regex: a label it does not match (compute8) reached the playbook"
grep -q "label instance='compute8:9100': does not match host_regex" "$RULEBOOK_LOG" || fail "the refusal of compute8 was not reported"
stop "$RULEBOOK_PID"; RULEBOOK_PID=''
rm -f "$LEVELLER_TEST_MARKER_DIR"/*
echo "eda_recover: token required, insecure_no_auth, host_regex PASS"
fi

if part 2; then
echo "== 2. posted alerts"
cat > "$TEST_DIR/posted.yml" <<EOV
leveller_recover_playbook: $HERE/marker.yml
leveller_eda_port: $PORT
leveller_eda_token: $TOKEN
leveller_eda_host_map: {cmp7.example.org: compute7}
EOV
start_rulebook "$TEST_DIR/posted.yml" "$TEST_DIR/inventory"
EVIL_HOST="{{ lookup('pipe', 'touch $TEST_DIR/evaluated-host-label') }}"
EVIL_LABEL="{{ lookup('pipe', 'touch $TEST_DIR/evaluated-other-label') }}"
[ "$(post 'not json')" = 400 ] || fail "a payload that is not JSON was accepted"
[ "$(post "$(alert firing HypervisorDown hypervisor=compute5)" wrong-token-wrong-token)" = 401 ] || fail "a wrong bearer token was accepted"
[ "$(post "$(alert firing HypervisorDown hypervisor=compute5)" -)" = 401 ] || fail "a call without a token was accepted"
[ "$(post '{"status":"firing"}')" = 400 ] || fail "a payload without alerts was accepted"
[ "$(post "$(alert firing HypervisorDown hypervisor=compute1)")" = 200 ] || fail "alert 1 refused"
[ "$(post "$(alert firing HypervisorDown instance=compute2:9100)")" = 200 ] || fail "alert 2 refused"
[ "$(post "$(alert resolved HypervisorDown hypervisor=compute3)")" = 200 ] || fail "alert 3 refused"
[ "$(post "$(alert firing DiskAlmostFull hypervisor=compute4)")" = 200 ] || fail "alert 4 refused"
[ "$(post "$(alert firing HypervisorDown "hypervisor=$EVIL_HOST")")" = 200 ] || fail "alert 5 refused"
[ "$(post "$(alert firing HypervisorDown hypervisor=compute6 "evil=$EVIL_LABEL" "annotation.summary=$EVIL_LABEL")")" = 200 ] || fail "alert 6 refused"
[ "$(post "$(alert firing HypervisorDown instance=cmp7.example.org:9100)")" = 200 ] || fail "alert 7 refused"
[ "$(post "$(alert firing HypervisorDown 'hypervisor=compute1;id' instance=compute8:9100)")" = 200 ] || fail "alert 8 refused"
sleep 2
# the same alert again (Alertmanager repeats firing alerts every repeat_interval)
[ "$(post "$(alert firing HypervisorDown hypervisor=compute1)")" = 200 ] || fail "alert 1 (again) refused"

for _ in $(seq 1 120); do
  if [ "$(count compute1)" -ge 1 ] && [ "$(count compute2)" -ge 1 ] && [ "$(count compute6)" -ge 1 ] && [ "$(count compute7)" -ge 1 ]; then break; fi
  sleep 1
done
# give a wrongly repeated run time to show up
sleep 10
echo "markers: $(markers)"
[ "$(count compute1)" -eq 1 ] || fail "recovery ran $(count compute1) times for compute1, expected once (throttle)"
[ "$(count compute2)" -eq 1 ] || fail "recovery ran $(count compute2) times for compute2 (host from instance=compute2:9100), expected once"
[ "$(count compute3)" -eq 0 ] || fail "recovery ran for a resolved alert"
[ "$(count compute4)" -eq 0 ] || fail "recovery ran for another alert name"
[ "$(count compute5)" -eq 0 ] || fail "recovery ran for an alert posted with a wrong or no token"
[ "$(count compute6)" -eq 1 ] || fail "recovery ran $(count compute6) times for compute6, expected once"
[ "$(count compute7)" -eq 1 ] || fail "recovery ran $(count compute7) times for cmp7.example.org (host_map), expected once"
[ "$(count compute8)" -eq 0 ] || fail "a refused first host label (hypervisor=compute1;id) fell through to the next label"
[ "$(find "$LEVELLER_TEST_MARKER_DIR" -type f | wc -l)" -eq 4 ] || fail "unexpected markers"
# the template in the host label: refused, reported literally, never evaluated
# (Python's repr: the label has single quotes, so it is shown in double quotes)
grep -qF "HypervisorDown not acted on: label hypervisor=\"$EVIL_HOST\": not a plain host name" "$RULEBOOK_LOG" \
  || fail "the refused template label is not reported literally"
grep -qF "HypervisorDown not acted on: label hypervisor='compute1;id': not a plain host name" "$RULEBOOK_LOG" \
  || fail "the refused label compute1;id is not reported"
# the template in another label and an annotation: never handed to the playbook, so never run
# (marker.yml renders all of ansible_eda into its marker)
"$EDA_VENV/bin/python" - "$(find "$LEVELLER_TEST_MARKER_DIR" -name 'recover-compute6-*')" <<'EOP' || fail "the playbook was given more than the checked values"
import json, sys
given = json.load(open(sys.argv[1]))
assert given["host"] == "compute6", given
event = given["ansible_eda"]["event"]
assert event == {"host": "compute6", "label": "hypervisor", "fingerprint": "0123456789abcdef"}, event
EOP
for f in evaluated-host-label evaluated-other-label; do
  [ ! -e "$TEST_DIR/$f" ] || fail "an alert label was evaluated as a template ($f exists)"
done
echo "eda_recover: posted alerts PASS"
fi

# 3. A real Prometheus evaluates the collection's HypervisorDown rule against a scrape target
# nobody serves (127.0.0.1:9199), a real Alertmanager sends the alert to the rulebook's webhook
# (with the bearer token) and repeats it every 2 s; recovery runs once for 127.0.0.1.
if part 3; then
echo "== 3. Prometheus -> Alertmanager -> rulebook"
if [ -z "$RULEBOOK_PID" ]; then  # run without part 2: the same rulebook, with the token
  printf 'leveller_recover_playbook: %s\nleveller_eda_port: %s\nleveller_eda_token: %s\n' \
    "$HERE/marker.yml" "$PORT" "$TOKEN" > "$TEST_DIR/part3.yml"
  start_rulebook "$TEST_DIR/part3.yml" "$TEST_DIR/inventory"
fi
markers_before=$(find "$LEVELLER_TEST_MARKER_DIR" -type f | wc -l)
install_rules "$TEST_DIR/rules" 0s
start_monitoring dead-target "$TEST_DIR/rules" "  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:9199']"
for _ in $(seq 1 120); do
  if [ "$(count 127.0.0.1)" -ge 1 ]; then break; fi
  sleep 1
done
# Alertmanager repeats the firing alert every 2 s: several notifications, one recovery
sleep 12
sent=$(notifications)
echo "markers: $(markers)"
[ "$(count 127.0.0.1)" -eq 1 ] || { tail -20 "$TEST_DIR/dead-target/alertmanager.log" >&2; fail "recovery ran $(count 127.0.0.1) times for 127.0.0.1 from Alertmanager, expected once"; }
[ "$(find "$LEVELLER_TEST_MARKER_DIR" -type f | wc -l)" -eq $((markers_before + 1)) ] || fail "unexpected markers"
[ "${sent:-0}" -ge 2 ] || fail "Alertmanager sent ${sent:-0} webhook notifications, expected repeats (>= 2)"
echo "eda_recover: Prometheus -> Alertmanager -> rulebook PASS ($sent webhook notifications, one recovery)"
stop "$PROM_PID" "$AM_PID" "$RULEBOOK_PID"; PROM_PID='' AM_PID='' RULEBOOK_PID=''
fi

if part 4; then
echo "== 4. end to end: a compute host powered off through its BMC, the real cloudops.leveller.recover"
CLOUD_CTL=../../cloud/cloud.sh
if [ ${#cfg[@]} -gt 0 ]; then
  CLOUD_CTL=$("$EDA_VENV/bin/python" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['cloud_ctl'])" "${cfg[1]#@}")
fi
bash "$CLOUD_CTL" status > "$TEST_DIR/cloud-status" 2>&1 || { cat "$TEST_DIR/cloud-status" >&2; fail "the local cloud is not up (cloud.sh up)"; }
eval "$(bash "$CLOUD_CTL" env)"
OSC=$LEVELLER_CLOUD_VENV/bin/openstack
PY=$TOOLS_VENV/bin/python
"$PY" -c 'import openstack, sushy' 2>/dev/null || fail "$PY lacks openstacksdk or sushy (scripts/install-tools.sh)"
SERVICE_DOWN_TIME=$(sed -n 's/^service_down_time *= *\([0-9][0-9]*\).*/\1/p' "$LEVELLER_CLOUD_RUN/etc/nova/nova.conf")
[ -n "$SERVICE_DOWN_TIME" ] || fail "no service_down_time in $LEVELLER_CLOUD_RUN/etc/nova/nova.conf"

bmc_reset() {  # bmc_reset HOST RESET_TYPE: Redfish ComputerSystem.Reset
  curl -sS -f -u "$LEVELLER_BMC_USERNAME:$LEVELLER_BMC_PASSWORD" -H 'Content-Type: application/json' \
    -X POST --data "{\"ResetType\": \"$2\"}" "$LEVELLER_REDFISH_URL/redfish/v1/Systems/$1/Actions/ComputerSystem.Reset"
}
power_state() {  # the BMC's PowerState; a failed read is tried again (3 tries), then "unread"
  local state
  for _ in 1 2 3; do
    state=$(curl -sS -f --max-time 20 -u "$LEVELLER_BMC_USERNAME:$LEVELLER_BMC_PASSWORD" \
      "$LEVELLER_REDFISH_URL/redfish/v1/Systems/$1" \
      | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["PowerState"])') && [ -n "$state" ] \
      && { echo "$state"; return 0; }
    sleep 1
  done
  echo unread
}
service() {  # service HOST: "<status> <state> <forced down> <updated at>" of its nova-compute
  "$OSC" --os-compute-api-version 2.11 compute service list --long --service nova-compute --host "$1" -f json \
    | "$PY" -c 'import json, sys; s = json.load(sys.stdin)[0]; print(s["Status"], s["State"], s["Forced Down"], s["Updated At"])'
}
wait_heartbeat() {  # wait_heartbeat HOST SECONDS: until its nova-compute reports again
  local since state updated
  since=$(date -u +%Y-%m-%dT%H:%M:%S)
  for _ in $(seq 1 "$2"); do
    # forced_down keeps the state "down" while nova-compute reports: then its updated_at tells
    read -r _ state _ updated <<< "$(service "$1")"
    if [ "$state" = up ] || [[ "$updated" > "$since" ]]; then return 0; fi
    sleep 1
  done
  return 1
}
restore_host() {
  ansible-playbook -i "$TEST_DIR/cloud-inventory" cloudops.leveller.restore -e "host=$1" > "$TEST_DIR/restore.log" 2>&1
}
servers() { "$OSC" server list --all-projects -f value -c ID | wc -l; }

printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$PY" > "$TEST_DIR/cloud-inventory"
# every compute host up and enabled: a host already down would be recovered too
"$OSC" --os-compute-api-version 2.11 compute service list --long --service nova-compute -f json > "$TEST_DIR/services.json"
"$PY" - "$TEST_DIR/services.json" <<'EOP' || fail "every compute host must be enabled and up first (cloud.sh reset)"
import json, sys
bad = [s for s in json.load(open(sys.argv[1])) if (s["Status"], s["State"], s["Forced Down"]) != ("enabled", "up", False)]
for s in bad:
    print("not ready: %s %s %s forced_down=%s" % (s["Host"], s["Status"], s["State"], s["Forced Down"]), file=sys.stderr)
sys.exit(1 if bad else 0)
EOP
# the host with the fewest instances: the test moves as little as possible
VICTIM_CANDIDATE=$("$OSC" server list --all-projects --long -f value -c Host | sort | uniq -c > "$TEST_DIR/per-host"; \
  "$PY" - "$TEST_DIR/services.json" "$TEST_DIR/per-host" <<'EOP'
import json, sys
load = {}
for line in open(sys.argv[2]):
    n, _, host = line.strip().partition(" ")
    load[host] = int(n)
hosts = sorted((load.get(s["Host"], 0), s["Host"]) for s in json.load(open(sys.argv[1])))
print(hosts[0][1])
EOP
)
NAME=eda-recover-$$
SERVER=$("$OSC" --os-compute-api-version 2.74 server create --flavor leveller.tiny --image leveller-image \
  --no-network --host "$VICTIM_CANDIDATE" --wait -f value -c id "$NAME") || fail "booting $NAME on $VICTIM_CANDIDATE"
[ "$("$OSC" server show -f value -c OS-EXT-SRV-ATTR:host "$SERVER")" = "$VICTIM_CANDIDATE" ] || fail "$NAME did not land on $VICTIM_CANDIDATE"
BEFORE=$(servers)
echo "instance $NAME ($SERVER) on $VICTIM_CANDIDATE; $BEFORE instances in the cloud; service_down_time $SERVICE_DOWN_TIME s"

# the rulebook with the real recovery playbook and the BMCs of bmc.json
(umask 077; "$PY" - "$LEVELLER_BMC_FILE" "$TEST_DIR/recover.yml" <<EOP
import json, sys, yaml
cred = json.load(open(sys.argv[1]))
# the emulator speaks plain http: the address is its URL (a bare host name means https)
bmcs = {host: {"driver": "redfish", "address": cred["redfish"]["url"], "username": cred["username"],
               "password": cred["password"], "system_id": path.rsplit("/", 1)[1], "verify": False, "fence_timeout": 60}
        for host, path in cred["redfish"]["systems"].items()}
yaml.safe_dump({
    "leveller_recover_playbook": "cloudops.leveller.recover",
    "leveller_eda_port": $PORT,
    "leveller_eda_token": "$TOKEN",
    "leveller_bmcs": bmcs,
    "leveller_service_down_time": $SERVICE_DOWN_TIME,
    "leveller_max_down_fraction": 0.5,
    "leveller_report_dir": "$TEST_DIR/reports",
}, open(sys.argv[2], "w"))
EOP
)
start_rulebook "$TEST_DIR/recover.yml" "$TEST_DIR/cloud-inventory"
RUNS_LOG=$TEST_DIR/runs-recover.log
plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$RUNS_LOG" 2>/dev/null; }
recoveries() { plain_log | grep -c 'PLAY \[Recover instances from a failed hypervisor\]' || true; }
recaps() { plain_log | grep -cE ' localhost +: ok=' || true; }
second_run() { plain_log | awk '/PLAY \[Recover instances from a failed hypervisor\]/ {n++} n >= 2' | sed 's/^[^|]*| //'; }

# a plain host name that is no compute service host passes the source; evacuate_host refuses it
# before it changes anything
[ "$(post "$(alert firing HypervisorDown hypervisor=compute9)")" = 200 ] || fail "the alert for compute9 was refused"
for _ in $(seq 1 120); do [ "$(recaps)" -ge 1 ] && break; sleep 1; done
[ "$(recaps)" -ge 1 ] || fail "the recovery of compute9 did not end within 120 s (plays started: $(recoveries))"
plain_log | grep -q "unknown host 'compute9': not a nova-compute service host of this cloud" \
  || fail "the recovery of compute9, no compute service host, was not refused as an unknown host"
plain_log | grep -qE ' localhost +: .*failed=1' || fail "the recovery of compute9 did not fail"
now=$(servers)
[ "$now" -eq "$BEFORE" ] || fail "the refused recovery of compute9 changed the number of instances ($BEFORE before, $now after)"
echo "an alert for compute9 (no compute service host): refused by evacuate_host, nothing changed"

# a node target per compute host, down when its host is; HypervisorDown waits twice
# service_down_time, so Nova too sees the host down when the recovery starts
"$PY" host_exporter.py "$EXPORTER_PORT_BASE" compute1 compute2 compute3 compute4 > "$TEST_DIR/exporter.log" 2>&1 &
EXPORTER_PID=$!
install_rules "$TEST_DIR/rules-e2e" "$((2 * SERVICE_DOWN_TIME))s"
targets=''
for n in 1 2 3 4; do
  targets="$targets
      - targets: ['127.0.0.1:$((EXPORTER_PORT_BASE + n))']
        labels: {instance: 'compute$n:9100'}"
done
start_monitoring e2e "$TEST_DIR/rules-e2e" "  - job_name: node
    static_configs:$targets"
up_targets() {
  curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=sum(up{job="node"})' \
    | "$PY" -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)'
}
for _ in $(seq 1 60); do [ "$(up_targets 2>/dev/null)" = 4 ] && break; sleep 1; done
[ "$(up_targets)" = 4 ] || { tail -5 "$TEST_DIR/exporter.log" >&2; fail "Prometheus reads $(up_targets 2>/dev/null) of the 4 node targets up after 60 s (exporter $(kill -0 "$EXPORTER_PID" 2>/dev/null && echo running || echo exited))"; }
sent_before=$(notifications)

VICTIM=$VICTIM_CANDIDATE
bmc_reset "$VICTIM" ForceOff || fail "Redfish ForceOff of $VICTIM"
KILLED_AT=$(date +%s)
[ "$(power_state "$VICTIM")" = Off ] || fail "the BMC does not read $VICTIM Off after ForceOff"
echo "$(date -u +%T) $VICTIM powered off through its BMC; waiting for HypervisorDown and the recovery"
# what each link of the chain has seen so far (named in a failure: CI shows only the end of the output)
chain() {
  local alerts received
  alerts=$(curl -s "http://127.0.0.1:$PROM_PORT/api/v1/alerts" | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["data"]["alerts"]
print(" ".join("%s:%s" % (x["labels"].get("hypervisor", "?"), x["state"]) for x in a) or "none")' 2>/dev/null || echo unread)
  received=$(grep -c 'received [1-9][0-9]* alert(s)' "$RULEBOOK_LOG" || true)
  echo "power $(power_state "$VICTIM"); Prometheus up{job=node} $(up_targets 2>/dev/null || echo unread)/4," \
    "alerts $alerts; Alertmanager notifications $(( $(notifications) - ${sent_before:-0} ));" \
    "rulebook posts with alerts $received; recovery plays $(recoveries), recaps $(recaps)"
}
for _ in $(seq 1 600); do
  [ "$(recaps)" -ge 2 ] && break
  kill -0 "$RULEBOOK_PID" 2>/dev/null || fail "ansible-rulebook exited ($(chain))"
  # a host powered on again by anyone else before the recovery never gets an alert
  if [ "$(recoveries)" -lt 2 ] && [ "$(power_state "$VICTIM")" = On ]; then
    fail "$VICTIM was powered on again by someone else before the recovery started (the cloud is shared?): $(chain)"
  fi
  sleep 1
done
[ "$(recaps)" -ge 2 ] || fail "no recovery finished within 10 minutes of the power-off: $(chain)"
echo "recovery finished $(( $(date +%s) - KILLED_AT )) s after the power-off; $(chain)"
# Alertmanager keeps repeating the alert while the host is off: give a second run time to show
sleep 15
sent=$(( $(notifications) - ${sent_before:-0} ))
recap=$(second_run | grep -E '^localhost +: ok=' | head -1)
echo "recovery runs: $(( $(recoveries) - 1 )) (and compute9's); webhook notifications: $sent; $recap"
second_run | grep -E '"msg"|fatal:|FAILED!' | cut -c1-600 | tail -8 || true

[[ "$recap" =~ failed=0 ]] || fail "the recovery playbook failed ($recap): see the messages above"
[ "$(recoveries)" -eq 2 ] || fail "recovery ran $(( $(recoveries) - 1 )) times for $VICTIM, expected once (throttle)"
[ "$sent" -ge 2 ] || fail "Alertmanager sent $sent webhook notifications, expected repeats (>= 2)"
[ -s "$TEST_DIR/reports/recover-$VICTIM-result.json" ] || fail "no report $TEST_DIR/reports/recover-$VICTIM-result.json"
read -r status host <<< "$("$OSC" server show -f json "$SERVER" \
  | "$PY" -c 'import json, sys; s = json.load(sys.stdin); print(s["status"], s["OS-EXT-SRV-ATTR:host"])')"
[ "$status" = ACTIVE ] || fail "$NAME is $status after the recovery, expected ACTIVE"
if [ -z "$host" ] || [ "$host" = "$VICTIM" ]; then fail "$NAME is on '$host' after the recovery, expected another host than $VICTIM"; fi
copies=$("$OSC" server list --all-projects --name "^$NAME\$" -f value -c ID | wc -l)
[ "$copies" -eq 1 ] || fail "$copies instances named $NAME after the recovery, expected exactly one"
AFTER=$(servers)
[ "$AFTER" -eq "$BEFORE" ] || fail "the cloud has $AFTER instances after the recovery, $BEFORE before"
[ "$(power_state "$VICTIM")" = Off ] || fail "$VICTIM is no longer Off after the recovery"
echo "eda_recover: end to end: $NAME ACTIVE on $host, one copy, $AFTER instances before and after, one recovery PASS"

echo "== 4b. $VICTIM powered on through its BMC, re-enabled by cloudops.leveller.restore"
stop "$PROM_PID" "$AM_PID" "$RULEBOOK_PID" "$EXPORTER_PID"; PROM_PID='' AM_PID='' RULEBOOK_PID='' EXPORTER_PID=''
bmc_reset "$VICTIM" On || fail "Redfish On of $VICTIM"
[ "$(power_state "$VICTIM")" = On ] || fail "the BMC does not read $VICTIM On after On"
wait_heartbeat "$VICTIM" 180 || fail "the nova-compute of $VICTIM did not report within 180 s of power on: $(service "$VICTIM")"
ok=''
for _ in $(seq 1 12); do
  if restore_host "$VICTIM"; then ok=1; break; fi
  # it refuses until the restarted nova-compute has cleaned up the evacuated guests
  grep -E '"msg"' "$TEST_DIR/restore.log" | cut -c1-300 | tail -2
  sleep 10
done
[ -n "$ok" ] || { cat "$TEST_DIR/restore.log" >&2; fail "cloudops.leveller.restore -e host=$VICTIM"; }
read -r s_status s_state s_forced _ <<< "$(service "$VICTIM")"
[ "$s_status $s_state $s_forced" = "enabled up False" ] || fail "$VICTIM after restore: $s_status $s_state forced_down=$s_forced"
# restore.yml brings the evacuated instance home (its leveller:home names the victim), live
home=$("$OSC" server list --all-projects --host "$VICTIM" -f value -c ID | grep -c "$SERVER" || true)
[ "$home" -eq 1 ] || fail "$NAME is not back on $VICTIM after restore (found there $home time(s))"
copies=$("$OSC" server list --all-projects -f value -c ID | grep -c "$SERVER" || true)
[ "$copies" -eq 1 ] || fail "$NAME is listed $copies times"
status=$("$OSC" server show "$SERVER" -f value -c status)
[ "$status" = ACTIVE ] || fail "$NAME is $status after its way home"
"$OSC" server show "$SERVER" -f json -c properties | grep -q 'leveller:home' && fail "$NAME still records leveller:home"
VICTIM=''
"$OSC" server delete --wait "$SERVER" || fail "deleting $NAME"
SERVER=''
echo "eda_recover: power on, restore, back home, delete PASS"
fi

echo "eda_recover: PASS (parts:$PARTS)"
