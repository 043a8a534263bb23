#!/usr/bin/env bash
# Applies cloudops.leveller.ceilometer_polling to this machine, rendering into a temporary
# directory (Ceilometer itself is not installed), twice per scenario (a current cloud with the
# Prometheus exporter; a legacy pre-Zed cloud with the SNMP hardware source). The second run of
# each must report changed=0; then the files are parsed and compared with the variables.
# Runs under ansible-test (INVENTORY_PATH set) or alone: bash runme.sh
set -eu -o pipefail
cd "$(dirname "$0")"
if [ -n "${INVENTORY_PATH:-}" ]; then INV=(-i "$INVENTORY_PATH"); else INV=(-i "localhost," -c local -e ansible_python_interpreter=/usr/bin/python3); fi
TEST_DIR=$(mktemp -d)
trap 'rm -rf "$TEST_DIR"' EXIT
for scenario in exporter legacy_snmp; do
  run() { ansible-playbook "${INV[@]}" -e "test_dir=$TEST_DIR/$scenario" -e "@scenario_$scenario.yml" "$@"; }
  run apply.yml "$@"
  run apply.yml "$@" | tee "$TEST_DIR/$scenario-second-run.log"
  if ! grep -qE 'changed=0 +unreachable=0 +failed=0' "$TEST_DIR/$scenario-second-run.log"; then
    echo "FAIL: the second run of the role changed something ($scenario)" >&2
    exit 1
  fi
  run "verify_$scenario.yml" "$@"
done
# The role refuses settings no Ceilometer release has (SNMP hardware source + exporter); the
# failure is expected, so its output goes to a file and only the verdict is printed.
if ansible-playbook "${INV[@]}" -e "test_dir=$TEST_DIR/conflict" refuse.yml "$@" > "$TEST_DIR/refuse.log" 2>&1; then
  echo "FAIL: the role accepted the SNMP hardware source together with the exporter" >&2; exit 1
fi
grep -q 'never exist in the same Ceilometer' "$TEST_DIR/refuse.log" || {
  cat "$TEST_DIR/refuse.log" >&2; echo "FAIL: the role failed for another reason" >&2; exit 1; }
[ ! -e "$TEST_DIR/conflict/etc/ceilometer/polling.yaml" ] || { echo "FAIL: files written although refused" >&2; exit 1; }
echo "role_ceilometer_polling: refused SNMP source + exporter as expected"
echo "role_ceilometer_polling: PASS"
