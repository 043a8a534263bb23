#!/usr/bin/env bash
# Applies cloudops.leveller.prometheus_hypervisor to this machine (connection local, root) and
# checks the real services: node-exporter and the libvirt exporter (libvirt's test:///default
# driver, no daemon) answer on /metrics, and a throw-away Prometheus on 127.0.0.1:19090 loads
# the installed recording rules and evaluates them against node-exporter. A second run must
# report changed=0. Everything started here is stopped on exit.
# Runs under ansible-test (INVENTORY_PATH set) or alone: bash runme.sh
set -eu -o pipefail
cd "$(dirname "$0")"
if [ -n "${INVENTORY_PATH:-}" ]; then INV=(-i "$INVENTORY_PATH"); else INV=(-i "localhost," -c local -e ansible_python_interpreter=/usr/bin/python3); fi
TEST_DIR=$(mktemp -d)
run() { ansible-playbook "${INV[@]}" -e "test_dir=$TEST_DIR" "$@"; }
cleanup() {
  run cleanup.yml "$@" || true
  rm -rf "$TEST_DIR"
}
trap 'cleanup "$@"' EXIT

run prepare.yml "$@"
run apply.yml "$@"
run apply.yml "$@" | tee "$TEST_DIR/second-run.log"
if ! grep -qE 'changed=0 +unreachable=0 +failed=0' "$TEST_DIR/second-run.log"; then
  echo "FAIL: the second run of the role changed something (not idempotent)" >&2
  exit 1
fi

# The same through the collection's playbook, by FQCN, on an inventory with both groups (plus the
# Ceilometer files, rendered into the test directory): nothing else may change, twice.
printf '[hypervisors]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n[prometheus]\nlocalhost\n' \
  "${ANSIBLE_TEST_PYTHON_INTERPRETER:-/usr/bin/python3}" > "$TEST_DIR/inventory"
monitoring() {
  ansible-playbook -i "$TEST_DIR/inventory" cloudops.leveller.monitoring -e "test_dir=$TEST_DIR" -e @vars.yml \
    -e "leveller_prometheus_rules_dir=$TEST_DIR/rules" -e leveller_monitoring_ceilometer=true \
    -e "ceilometer_polling_config_dir=$TEST_DIR/ceilometer" -e ceilometer_polling_group=root "$@"
}
monitoring "$@" | tee "$TEST_DIR/playbook-first-run.log"
grep -qE 'localhost +: ok=[0-9]+ +changed=4 +unreachable=0 +failed=0' "$TEST_DIR/playbook-first-run.log" || {
  echo "FAIL: cloudops.leveller.monitoring changed more than the Ceilometer directories and 3 files" >&2; exit 1; }
monitoring "$@" | tee "$TEST_DIR/playbook-second-run.log"
grep -qE 'localhost +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0' "$TEST_DIR/playbook-second-run.log" || {
  echo "FAIL: the second run of cloudops.leveller.monitoring changed something" >&2; exit 1; }
test -s "$TEST_DIR/ceilometer/polling.yaml"

run verify.yml "$@"
echo "role_prometheus_hypervisor: PASS"
