#!/usr/bin/env bash
# A libvirt scaling group on two real QEMU hosts (tests/integration/libvirt/libvirt.sh), driven
# through playbooks/autoscale.yml. Members are diskless TCG guests booted straight from the test
# bed's guest program (template.kernel), each with a qcow2 overlay of leveller-pool's base volume
# and a NoCloud seed; their CPU is fed through the pushgateway to Prometheus. Cases:
#   heal      --check creates nothing; then 0 -> 2 (min_size 2), one member per host (round_robin);
#             the seed read back from a member's seed volume holds the user-data and meta-data
#   cooldown  a second run right after does nothing and says so
#   out       members at 90 % CPU: after the cooldown 2 -> 4, one more per host; a run inside the
#             cooldown waits
#   in        members at 5 % CPU: after the cooldown 4 -> 2, the newest first, their volumes gone
#   roll      a template change (memory) replaces one member per run (max_unavailable 1, cooldown
#             0), never fewer than size - 1 running, until every member is on the new template
#   absent    no member left and no volume in the pools but the base
# A census after each case: lv-a..lv-d running once each, on their home hosts, never restarted.
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
if [ -z "$PROM" ] || [ -z "$PUSH" ]; then echo "integration_config.yml has no prometheus_url/pushgateway_url"; exit 1; fi
bash "$LV" reset | grep -E 'reset: done' || true
eval "$(bash "$LV" env)"
export LEVELLER_LIBVIRT_URIS LEVELLER_LIBVIRT_HOMES LEVELLER_LIBVIRT_UUIDS LEVELLER_LIBVIRT_RUN
GROUP=sgtest
COOLDOWN=20
cleanup() {
  # a failed case may leave members: reset removes every domain but the guests, and their volumes
  bash "$LV" reset >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT
census() { python verify_sg.py census "$GROUP" "$@"; }

USER_DATA=$'#cloud-config\nfinal_message: "sgtest member up"\n'
vars_json() {  # memory_mb, cooldown: the group's variables for autoscale.yml
  python - "$PROM" "$1" "$2" "$USER_DATA" <<'PY'
import json, os, sys
prom, memory, cooldown, user_data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(json.dumps({
    'leveller_group_name': 'sgtest',
    'leveller_libvirt_uris': json.loads(os.environ['LEVELLER_LIBVIRT_URIS']),
    'leveller_group_template': {
        'pool': 'leveller-pool', 'base_volume': 'leveller-base.qcow2', 'vcpus': 1, 'memory_mb': memory,
        'emulator': 'qemu', 'kernel': os.environ['LEVELLER_LIBVIRT_RUN'] + '/guest/leveller-guest.bin'},
    'leveller_group_cloud_init': {'user_data': user_data},
    'leveller_group_min_size': 2, 'leveller_group_max_size': 4, 'leveller_group_increment': 2,
    'leveller_group_cooldown': cooldown,
    'leveller_group_thresholds': {'cpu': {'scale_out': 0.7, 'scale_in': 0.3}},
    'leveller_group_placement': 'round_robin', 'leveller_group_scale_in_order': 'newest',
    'leveller_group_max_unavailable': 1,
    'leveller_group_metrics_source': 'prometheus', 'leveller_prometheus_url': prom,
    'leveller_group_window': 10,
    'leveller_group_query_cpu': 'max by (uuid) (leveller_sgtest_member_cpu)',
    'leveller_group_member_label': 'uuid',
    # the test bed's hosts have few CPUs and already run lv-a..lv-d
    'leveller_group_allocation_ratio': {'vcpus': 8, 'memory_mb': 2},
}))
PY
}
VARS=$(vars_json 32 "$COOLDOWN")
step() {  # name [ansible-playbook arguments]: one run of autoscale.yml, result in $OUT/name.json
  local name=$1; shift
  ansible-playbook "${INV[@]}" -e "$VARS" -e "leveller_group_result_file=$OUT/$name.json" "$@" cloudops.leveller.autoscale
}
expect() {  # result file, python expression over r (the result), members (from the hosts), message
  python - "$OUT/$1.json" "$2" "$3" "$GROUP" <<'PY'
import json, subprocess, sys
r = json.load(open(sys.argv[1]))
members = json.loads(subprocess.check_output([sys.executable, 'verify_sg.py', 'members', sys.argv[4]]))
if not eval(sys.argv[2]):
    sys.exit('FAILED %s: %s\nresult: %s\nmembers: %s' % (sys.argv[3], sys.argv[2], json.dumps(r, indent=1), members))
print('ok: %s (%s: %s)' % (sys.argv[3], r.get('action'), r.get('reason')))
PY
}
uuids_at() {  # CPU share: "uuid=share,..." for every member
  python verify_sg.py members "$GROUP" | python -c "
import json, sys
print(','.join('%s=%s' % (m['uuid'], sys.argv[1]) for m in json.load(sys.stdin)))" "$1"
}
wait_until() {  # epoch seconds
  local left=$(( $1 - $(date +%s) ))
  [ "$left" -le 0 ] || { echo "(waiting ${left} s)"; sleep "$left"; }
}

census "$OUT/home.json"

echo "== heal: --check creates nothing, then 0 -> 2, one member per host"
step heal-check --check
expect heal-check "r['changed'] and r['action'] == 'heal' and len(r['created']) == 2 and members == []" \
  "check mode shows the heal and creates nothing"
step heal
T_HEAL=$(date +%s)
expect heal "r['action'] == 'heal' and (r['size_before'], r['size_after']) == (0, 2)" "healed to min_size"
expect heal "sorted(m['host'] for m in members) == ['lvhost1', 'lvhost2'] and all(m['running'] for m in members)" \
  "round_robin: one running member on each host"
expect heal "sorted(sum((m['volumes'] for m in members), [])) == sorted(sum((c['volumes'] for c in r['created']), []))" \
  "the records name the volumes created"
python - "$OUT/heal.json" "$USER_DATA" <<'PY'
import json, subprocess, sys
r = json.load(open(sys.argv[1]))
created = r['created'][0]
files = json.loads(subprocess.check_output([sys.executable, 'verify_sg.py', 'seed', created['host'], created['volumes'][1]]))
assert files['volume_label'] == 'cidata', files
assert files['user-data'] == sys.argv[2], files
assert files['meta-data'] == 'instance-id: %s\nlocal-hostname: %s\n' % (created['uuid'], created['name']), files
assert 'network-config' not in files, files
print('ok: the seed of %s on %s holds the user-data and meta-data (instance-id %s)' % (
    created['name'], created['host'], created['uuid']))
PY
census "$OUT/after-heal.json" "$OUT/home.json"

echo "== cooldown: a second run right after the heal does nothing and says so"
step cooldown
expect cooldown "not r['changed'] and r['action'] == 'none' and r['reason'].startswith('cooldown: ') and r['waiting'] > 0 and len(members) == 2" \
  "inside the cooldown nothing happens"

echo "== out: members at 90 % CPU -> 2 -> 4 after the cooldown"
python verify_sg.py push "$PUSH" "$(uuids_at 0.9)"
T_PUSH=$(date +%s)
wait_until $(( T_HEAL + COOLDOWN + 1 > T_PUSH + 4 ? T_HEAL + COOLDOWN + 1 : T_PUSH + 4 ))
step out
T_OUT=$(date +%s)
expect out "r['action'] == 'scale_out' and (r['size_before'], r['size_after']) == (2, 4) and r['metrics']['cpu'] > 0.7" \
  "scaled out on CPU"
expect out "sorted(c['host'] for c in r['created']) == ['lvhost1', 'lvhost2'] and len(members) == 4 and all(m['running'] for m in members)" \
  "round_robin: one new member on each host, all running"
step out-again
expect out-again "r['action'] == 'none' and r['reason'].startswith('cooldown: ') and len(members) == 4" \
  "a run inside the cooldown after the scale-out waits"
census "$OUT/after-out.json" "$OUT/home.json"

echo "== in: members at 5 % CPU -> 4 -> 2 after the cooldown, newest first"
python verify_sg.py volumes > "$OUT/volumes-out.json"
python verify_sg.py push "$PUSH" "$(uuids_at 0.05)"
T_PUSH=$(date +%s)
# past the cooldown, and the 10 s window (plus a 2 s scrape) holds only the idle values
wait_until $(( T_OUT + COOLDOWN + 1 > T_PUSH + 13 ? T_OUT + COOLDOWN + 1 : T_PUSH + 13 ))
step in
expect in "r['action'] == 'scale_in' and (r['size_before'], r['size_after']) == (4, 2) and r['metrics']['cpu'] < 0.3" \
  "scaled in on CPU"
expect in "[x['name'] for x in r['removed']] == [c['name'] for c in sorted(json.load(open('$OUT/out.json'))['created'], key=lambda c: -c['index'])]" \
  "the newest members went first"
expect in "sorted(m['name'] for m in members) == sorted(c['name'] for c in json.load(open('$OUT/heal.json'))['created'])" \
  "the members of the heal are left"
python - "$OUT/in.json" "$OUT/volumes-out.json" <<'PY'
import json, subprocess, sys
r = json.load(open(sys.argv[1]))
before = json.load(open(sys.argv[2]))
after = json.loads(subprocess.check_output([sys.executable, 'verify_sg.py', 'volumes']))
for removed in r['removed']:
    assert len(removed['volumes']) == 2, removed
    assert set(removed['volumes']) <= set(before[removed['host']]), (removed, before)
    assert not set(removed['volumes']) & set(after[removed['host']]), (removed, after)
print('ok: the removed members\' volumes are gone: %s' % ', '.join(v for x in r['removed'] for v in x['volumes']))
PY
census "$OUT/after-in.json" "$OUT/home.json"

echo "== roll: memory 32 -> 40 MiB replaces one member per run, cooldown 0, max_unavailable 1"
VARS=$(vars_json 40 0)
python verify_sg.py push "$PUSH" "$(uuids_at 0.5)"
for n in 1 2 3; do
  step "roll$n"
  expect "roll$n" "r['size_after'] == 2 and len(r['removed']) <= 1 and sum(m['running'] for m in members) >= r['size_after'] - 1" \
    "roll step $n keeps at least size - max_unavailable running"
done
expect roll1 "r['action'] == 'replace' and len(r['created']) == 1 and len(r['removed']) == 1" "first replacement"
expect roll2 "r['action'] == 'replace' and len(r['created']) == 1 and len(r['removed']) == 1" "second replacement"
expect roll3 "r['action'] == 'none' and len(members) == 2 and all(m['template'] == r['template_version'] and m['memory_mb'] == 40 for m in members)" \
  "every member on the new template, nothing left to replace"
census "$OUT/after-roll.json" "$OUT/home.json"

echo "== absent: no member, no volume but the base"
step absent-check --check -e leveller_group_state=absent
expect absent-check "r['changed'] and len(r['removed']) == 2 and len(members) == 2" "check mode removes nothing"
step absent -e leveller_group_state=absent
expect absent "r['action'] == 'absent' and len(r['removed']) == 2 and members == []" "the group is gone"
python - <<'PY'
import json, subprocess, sys
after = json.loads(subprocess.check_output([sys.executable, 'verify_sg.py', 'volumes']))
assert after == {'lvhost1': ['leveller-base.qcow2'], 'lvhost2': ['leveller-base.qcow2']}, after
print('ok: only the base volume is left in each pool')
PY
census "$OUT/after-absent.json" "$OUT/home.json"
echo "libvirt_scaling_group: all cases passed"
