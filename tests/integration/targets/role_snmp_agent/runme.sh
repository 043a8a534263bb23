#!/usr/bin/env bash
# Applies cloudops.leveller.snmp_agent to this machine (connection local, root) with the agent on
# udp:127.0.0.1:1161 and checks the real snmpd with snmpwalk/snmpget: the community and an SNMPv3
# user read the view seed 001 needs, other subtrees, wrong communities and other source
# addresses get nothing. A second run must report changed=0. snmpd is stopped on exit.
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

run apply.yml "$@"
run apply.yml "$@" | tee "$TEST_DIR/second-run.log"
if ! grep -qE 'changed=0 +unreachable=0 +failed=0' "$TEST_DIR/second-run.log"; then
  echo "FAIL: the second run of the role changed something (not idempotent)" >&2
  exit 1
fi
run verify.yml "$@"
echo "role_snmp_agent: PASS"
