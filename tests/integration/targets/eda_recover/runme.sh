#!/usr/bin/env bash
# Runs the shipped rulebook extensions/eda/rulebooks/recover_on_host_down.yml with a real
# ansible-rulebook (its own venv, Java 17) and the collection's alertmanager event source.
# 1. Posts Alertmanager webhook payloads over HTTP: the recovery playbook runs exactly once per
#    failed host, although the alert for compute1 arrives twice; resolved alerts, other alert
#    names, bad payloads and a wrong bearer token start nothing.
# 2. End to end: a real Prometheus evaluates the collection's HypervisorDown rule (installed by
#    the prometheus_hypervisor role) for a scrape target nobody serves, a real Alertmanager
#    sends and repeats the alert to the rulebook: recovery runs once for that host.
# The recovery playbook is replaced by marker.yml (leveller_recover_playbook), which leaves a
# marker file per run instead of evacuating a host.
# Needs: ansible-rulebook 1.3 in LEVELLER_EDA_VENV (default ~/.cache/cloudops-leveller/eda-venv),
# Java 17 (Debian default-jre-headless), Debian prometheus and prometheus-alertmanager, and the
# collection on ANSIBLE_COLLECTIONS_PATH. Ports (127.0.0.1): 15001, 19190, 19193.
set -eu -o pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
EDA_VENV=${LEVELLER_EDA_VENV:-$HOME/.cache/cloudops-leveller/eda-venv}
if [ ! -x "$EDA_VENV/bin/ansible-rulebook" ]; then
  echo "FAIL: no ansible-rulebook in $EDA_VENV (pip install 'ansible-rulebook>=1.3,<1.4' aiohttp there)" >&2
  exit 1
fi
if [ -z "${JAVA_HOME:-}" ]; then
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  export JAVA_HOME
fi
PORT=${LEVELLER_TEST_EDA_PORT:-15001}
TOKEN=leveller-ci-token-$$
TEST_DIR=$(mktemp -d)
export LEVELLER_TEST_MARKER_DIR=$TEST_DIR/markers
mkdir -p "$LEVELLER_TEST_MARKER_DIR"
RULEBOOK_PID='' AM_PID='' PROM_PID=''
cleanup() {
  for pid in $PROM_PID $AM_PID $RULEBOOK_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TEST_DIR"
}
trap cleanup EXIT

printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$EDA_VENV/bin/python" > "$TEST_DIR/inventory"
cat > "$TEST_DIR/vars.yml" <<EOV
leveller_recover_playbook: $HERE/marker.yml
leveller_eda_port: $PORT
leveller_eda_token: $TOKEN
EOV

PATH=$EDA_VENV/bin:$PATH "$EDA_VENV/bin/ansible-rulebook" -i "$TEST_DIR/inventory" \
  --rulebook cloudops.leveller.recover_on_host_down --vars "$TEST_DIR/vars.yml" -v \
  > "$TEST_DIR/rulebook.log" 2>&1 &
RULEBOOK_PID=$!

post() {  # post JSON [TOKEN], print the HTTP status
  curl -s -o "$TEST_DIR/response" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H "Authorization: Bearer ${2-$TOKEN}" --data-binary "$1" "http://127.0.0.1:$PORT/alerts"
}
alert() {  # alert STATUS ALERTNAME LABEL=VALUE
  printf '{"version":"4","groupKey":"{}:{alertname=\\"%s\\"}","status":"%s","receiver":"leveller",
  "groupLabels":{"alertname":"%s"},"commonLabels":{},"commonAnnotations":{},
  "externalURL":"http://alertmanager.example:9093","alerts":[{"status":"%s",
  "labels":{"alertname":"%s","%s":"%s","severity":"critical"},
  "annotations":{"summary":"hypervisor down"},"startsAt":"2026-01-01T00:00:00Z",
  "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example:9090/graph",
  "fingerprint":"0123456789abcdef"}]}' "$2" "$1" "$2" "$1" "$2" "${3%%=*}" "${3#*=}"
}

for _ in $(seq 1 90); do
  if [ "$(post '{"alerts":[]}' 2>/dev/null)" = 200 ]; then break; fi
  if ! kill -0 "$RULEBOOK_PID" 2>/dev/null; then cat "$TEST_DIR/rulebook.log"; echo "FAIL: ansible-rulebook exited" >&2; exit 1; fi
  sleep 1
done
[ "$(post '{"alerts":[]}')" = 200 ] || { cat "$TEST_DIR/rulebook.log"; echo "FAIL: the webhook never answered" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; cat "$TEST_DIR/rulebook.log" >&2; exit 1; }
[ "$(post 'not json')" = 400 ] || fail "a payload that is not JSON was accepted"
[ "$(post "$(alert firing HypervisorDown hypervisor=compute5)" wrong-token)" = 401 ] || fail "a wrong bearer token was accepted"
[ "$(post '{"status":"firing"}')" = 400 ] || fail "a payload without alerts was accepted"
[ "$(post "$(alert firing HypervisorDown hypervisor=compute1)")" = 200 ] || fail "alert 1 refused"
[ "$(post "$(alert firing HypervisorDown instance=compute2:9100)")" = 200 ] || fail "alert 2 refused"
[ "$(post "$(alert resolved HypervisorDown hypervisor=compute3)")" = 200 ] || fail "alert 3 refused"
[ "$(post "$(alert firing DiskAlmostFull hypervisor=compute4)")" = 200 ] || fail "alert 4 refused"
sleep 2
# the same alert again (Alertmanager repeats firing alerts every repeat_interval)
[ "$(post "$(alert firing HypervisorDown hypervisor=compute1)")" = 200 ] || fail "alert 1 (again) refused"

count() { find "$LEVELLER_TEST_MARKER_DIR" -name "recover-$1-*" | wc -l; }
for _ in $(seq 1 120); do
  if [ "$(count compute1)" -ge 1 ] && [ "$(count compute2)" -ge 1 ]; then break; fi
  sleep 1
done
# give a wrongly repeated run time to show up
sleep 10
echo "markers: $(find "$LEVELLER_TEST_MARKER_DIR" -type f -printf '%f ')"
[ "$(count compute1)" -eq 1 ] || fail "recovery ran $(count compute1) times for compute1, expected once (throttle)"
[ "$(count compute2)" -eq 1 ] || fail "recovery ran $(count compute2) times for compute2 (host from instance=compute2:9100), expected once"
[ "$(count compute3)" -eq 0 ] || fail "recovery ran for a resolved alert"
[ "$(count compute4)" -eq 0 ] || fail "recovery ran for another alert name"
[ "$(count compute5)" -eq 0 ] || fail "recovery ran for an alert posted with a wrong token"
[ "$(find "$LEVELLER_TEST_MARKER_DIR" -type f | wc -l)" -eq 2 ] || fail "unexpected markers"
echo "eda_recover: posted alerts PASS"

# End to end: a real Prometheus evaluates the collection's HypervisorDown rule against a scrape
# target nobody serves (127.0.0.1:9199), a real Alertmanager sends the alert to the rulebook's
# webhook (with the bearer token) and repeats it every 2 s; recovery runs once for 127.0.0.1.
for binary in prometheus prometheus-alertmanager promtool; do
  command -v "$binary" >/dev/null || fail "$binary not found (Debian packages prometheus, prometheus-alertmanager)"
done
PROM_PORT=${LEVELLER_TEST_EDA_PROMETHEUS_PORT:-19190}
AM_PORT=${LEVELLER_TEST_EDA_ALERTMANAGER_PORT:-19193}
mkdir -p "$TEST_DIR/rules" "$TEST_DIR/prometheus" "$TEST_DIR/alertmanager"
ansible-playbook -i "localhost," -c local -e "ansible_python_interpreter=$EDA_VENV/bin/python" \
  -e "rules_dir=$TEST_DIR/rules" rules.yml "$@" > "$TEST_DIR/rules.log" 2>&1 || { cat "$TEST_DIR/rules.log"; fail "installing the rules"; }
cat > "$TEST_DIR/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $TEST_DIR/rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:9199']
EOC
cat > "$TEST_DIR/alertmanager.yml" <<EOC
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
prometheus-alertmanager --config.file="$TEST_DIR/alertmanager.yml" --storage.path="$TEST_DIR/alertmanager" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= > "$TEST_DIR/alertmanager.log" 2>&1 &
AM_PID=$!
prometheus --config.file="$TEST_DIR/prometheus.yml" --storage.tsdb.path="$TEST_DIR/prometheus" \
  --web.listen-address="127.0.0.1:$PROM_PORT" > "$TEST_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 120); do
  if [ "$(count 127.0.0.1)" -ge 1 ]; then break; fi
  sleep 1
done
# Alertmanager repeats the firing alert every 2 s: several notifications, one recovery
sleep 12
notifications=$(curl -s "http://127.0.0.1:$AM_PORT/metrics" \
  | awk '/^alertmanager_notifications_total\{integration="webhook"\}/ {print $2}')
echo "markers: $(find "$LEVELLER_TEST_MARKER_DIR" -type f -printf '%f ')"
[ "$(count 127.0.0.1)" -eq 1 ] || { tail -20 "$TEST_DIR/alertmanager.log" >&2; fail "recovery ran $(count 127.0.0.1) times for 127.0.0.1 from Alertmanager, expected once"; }
[ "$(find "$LEVELLER_TEST_MARKER_DIR" -type f | wc -l)" -eq 3 ] || fail "unexpected markers"
[ "${notifications:-0}" -ge 2 ] || fail "Alertmanager sent ${notifications:-0} webhook notifications, expected repeats (>= 2)"
echo "eda_recover: Prometheus -> Alertmanager -> rulebook PASS ($notifications webhook notifications, one recovery)"
echo "eda_recover: PASS"
