#!/usr/bin/env bash
# Runs the shipped rulebook extensions/eda/rulebooks/recover_on_host_down.yml with a real
# ansible-rulebook (its own venv, Java 17) and the collection's alertmanager event source,
# posts real Alertmanager webhook payloads to it over HTTP and checks that the recovery
# playbook ran exactly once per failed host, although the alert for compute1 arrives twice;
# resolved alerts, other alert names, bad payloads and a wrong bearer token start nothing.
# The recovery playbook is replaced by marker.yml (leveller_recover_playbook), which leaves a
# marker file per run instead of evacuating a host.
# Needs: ansible-rulebook 1.3 in LEVELLER_EDA_VENV (default ~/.cache/cloudops-leveller/eda-venv),
# Java 17 (Debian default-jre-headless), the collection on ANSIBLE_COLLECTIONS_PATH.
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
RULEBOOK_PID=
cleanup() {
  if [ -n "$RULEBOOK_PID" ]; then kill "$RULEBOOK_PID" 2>/dev/null || true; wait "$RULEBOOK_PID" 2>/dev/null || true; fi
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
echo "eda_recover: PASS"
