#!/usr/bin/env bash
# Plain libvirt, all the way, on two real QEMU hosts (tests/integration/libvirt/libvirt.sh): the
# playbooks drive them from variables alone (sources [libvirt, prometheus], no OpenStack), and
# each fault case ends with a census of every guest: running, exactly one copy, on the host
# expected. Cases:
#   balance   balance.yml --check moves nothing; balance.yml moves guests off the loaded host
#   cooldown  the moved guests carry last_moved_at (domain metadata); a new plan leaves them alone
#   drain     evacuate.yml drains lvhost1 and marks it; the next plan sends nothing there;
#             restore.yml removes the mark
#   hang      a migration throttled to 1 MiB/s past its deadline is aborted; the guest stays home
#   vanished  the destination's libvirtd is killed after planning: every move is drift, none fails
#   marked    the destination is put in maintenance after planning: drift as well
# Runs under ansible-test (which passes -e @integration_config.yml as arguments) or alone.
set -eu -o pipefail
cd "$(dirname "$0")"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
OUT=$(mktemp -d)
INV=(-i "localhost," -c local -e "ansible_python_interpreter=$(command -v python)")
cfg=()
for a in "$@"; do case $a in @*integration_config.yml) cfg=(-e "$a");; esac; done
[ ${#cfg[@]} -gt 0 ] || { f=$(ls ../../integration_config.yml 2>/dev/null) && cfg=(-e "@$f"); }
conf=${cfg[1]#@}
get() { python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get(sys.argv[2]) or '')" "$conf" "$1"; }
PROM=$(get prometheus_url); PUSH=$(get pushgateway_url); LV=$(get libvirt_ctl)
[ -n "$LV" ] || { echo "integration_config.yml has no libvirt_ctl: run through make test"; exit 1; }
bash "$LV" reset | grep -E 'reset: done' || true
eval "$(bash "$LV" env)"
export LEVELLER_LIBVIRT_URIS LEVELLER_LIBVIRT_HOMES LEVELLER_LIBVIRT_UUIDS
cleanup() {
  bash "$LV" up >/dev/null 2>&1 || true   # a killed libvirtd comes back (its guests kept running)
  rm -rf "$OUT"
}
trap cleanup EXIT
census() { python verify_lv.py census "$@"; }
VARS=$(python - "$PROM" "$OUT" <<'PY'
import json, os, sys
print(json.dumps({
    'leveller_sources': ['libvirt', 'prometheus'], 'leveller_prometheus_url': sys.argv[1],
    'leveller_query_cpu': 'max by (instance) (leveller_lvtest_host_cpu)',
    'leveller_query_memory': 'max by (instance) (leveller_lvtest_host_memory)',
    'leveller_libvirt_uris': json.loads(os.environ['LEVELLER_LIBVIRT_URIS']),
    'leveller_libvirt_allocation_ratio': {'vcpus': 8},
    'leveller_min_load': 0.3, 'leveller_report_dir': sys.argv[2], 'leveller_timeout': 120}))
PY
)
play() { ansible-playbook "${INV[@]}" -e "$VARS" "$@"; }
cases() { ansible-playbook "${INV[@]}" -e "{\"lv_uris\": $LEVELLER_LIBVIRT_URIS, \"lv_out\": \"$OUT\"}" cases.yml --tags "$1"; }

echo "== balance: lvhost1 reads 90 % busy, lvhost2 10 % (pushed to Prometheus)"
python verify_lv.py push "$PUSH" lvhost1=0.9,lvhost2=0.1
sleep 5   # Prometheus scrapes the pushgateway every 2 s
census "$OUT/before.json"
play cloudops.leveller.balance --check
census "$OUT/after-check.json" "$OUT/before.json"
play cloudops.leveller.balance
census "$OUT/after-balance.json"
python verify_lv.py moved "$OUT/before.json" "$OUT/after-balance.json" "$OUT/balance-result.json"
python - "$OUT/balance-result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r.get('moves'), 'balance.yml planned no move on an unbalanced start (see its report above)'
moved = [m for m in r['moves'] if m['result'] == 'moved']
assert moved and r['totals']['failed'] == 0, r['msg']
assert all(m['source'] == 'lvhost1' and m['destination'] == 'lvhost2' for m in moved), r['moves']
print('balance: %d move(s) lvhost1 -> lvhost2, %s' % (len(moved), ', '.join('%s %.1f s' % (m['name'], m['seconds'] or 0) for m in moved)))
PY
test -s "$OUT/balance-report.svg" && test -s "$OUT/balance-progress.log"
test "$(stat -c %a "$OUT/balance-result.json")" = 600

echo "== cooldown: the moved guests carry last_moved_at; a new plan leaves them alone"
cases cooldown

echo "== drain lvhost1 with evacuate.yml, then restore.yml"
bash "$LV" reset | grep -E 'reset: done'
census "$OUT/home.json"
play cloudops.leveller.evacuate -e host=lvhost1
census "$OUT/after-drain.json"
python -c "import json,sys; c=json.load(open(sys.argv[1])); assert set(c.values()) == {'lvhost2'}, c" "$OUT/after-drain.json"
python verify_lv.py marked lvhost1 yes
play cloudops.leveller.balance --check -e leveller_report_dir="$OUT/check2"
python -c "
import json,sys
plan = json.load(open(sys.argv[1]))
assert not [m for m in plan['moves'] if m['destination'] == 'lvhost1'], plan['moves']
print('drain: the plan after the drain sends nothing to lvhost1 (%d move(s) planned elsewhere)' % len(plan['moves']))
" "$OUT/check2/balance-plan.json"
play cloudops.leveller.restore -e host=lvhost1
python verify_lv.py marked lvhost1 no
census "$OUT/after-restore.json" "$OUT/after-drain.json"

echo "== hang: 1 MiB/s, 3 s deadline: aborted, lv-c still on lvhost1"
bash "$LV" reset | grep -E 'reset: done'
census "$OUT/home.json"
cases hang
census "$OUT/after-hang.json" "$OUT/home.json"

echo "== vanished: lvhost2's libvirtd killed after planning"
cases plan
kill -9 "$(cat "$LEVELLER_LIBVIRT_RUN/pids/lvhost2.pid")"
cases vanished
bash "$LV" up >/dev/null
census "$OUT/after-vanished.json" "$OUT/home.json"

echo "== marked: lvhost2 put in maintenance after planning"
python - <<'PY'
import json, os, libvirt
conn = libvirt.open(json.loads(os.environ['LEVELLER_LIBVIRT_URIS'])['lvhost2'])
conn.secretDefineXML("<secret ephemeral='no' private='yes'><description>cloudops.leveller maintenance: "
                     "hand-set by the test</description><usage type='tls'><name>cloudops-leveller-maintenance"
                     "</name></usage></secret>", 0)
PY
cases marked
census "$OUT/after-marked.json" "$OUT/home.json"
bash "$LV" reset | grep -E 'reset: done'
echo "libvirt_execution: all cases passed"
