#!/usr/bin/env bash
# shellcheck disable=SC2154  # INV, cfg, conf and get come from ../setup_leveller/files/script_env.sh
# backtest.yml against the local cloud's real Nova and Prometheus. A hot compute1 (six busy
# instances) runs for a while so Prometheus holds its history; then the backtest replays two
# configurations over the last 90 s: one that leaves everything alone (compute1 overloaded all
# along, no move) and one that relieves hot hosts (moves off compute1, less overloaded time).
# The real cloud must not change: every instance ACTIVE, one copy, on the host it was on.
# Bad settings fail before anything is asked. Report files are owner-only.
# Runs under ansible-test (which passes -e @integration_config.yml as arguments) or alone.
set -eu -o pipefail
cd "$(dirname "$0")"
. ../setup_leveller/files/script_env.sh "$@"
OUT=$(mktemp -d)
PROM=$(get prometheus_url)
backtest() {
  ansible-playbook "${INV[@]}" "${cfg[@]}" cloudops.leveller.backtest -e leveller_report_dir="$OUT/reports" \
    -e leveller_prometheus_url="$PROM" -e leveller_cpu_window=20s -e leveller_backtest_step=5 \
    -e 'leveller_query_instance_cpu="sum by (resource) (rate(ceilometer_cpu[20s])) / 1e9"' \
    -e leveller_instance_cpu_unit=cores "$@"
}
placement() {
  python - <<'PY'
import openstack
conn = openstack.connect()
for s in sorted(conn.compute.servers(all_projects=True), key=lambda s: s.name):
    if s.name.startswith("bt-"):
        print(s.name, s.id, s.compute_host, s.status)
PY
}
cleanup() {
  ansible-playbook "${INV[@]}" "${cfg[@]}" setup.yml -e state=absent >/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

echo "== bad settings fail before anything is asked"
for bad in "leveller_backtest_hours=-1" "leveller_backtest_step=0" "leveller_backtest_hours=x"; do
  if backtest -e "$bad" > "$OUT/bad.log" 2>&1; then echo "FAIL: $bad was accepted" >&2; exit 1; fi
  grep -q 'Nothing was asked or changed' "$OUT/bad.log"
done
echo '{"leveller_backtest_configurations": [{"name": "x", "schedule": [{"strategy": "overload", "colour": 1}]}]}' > "$OUT/badcfg.json"
if backtest -e "@$OUT/badcfg.json" > "$OUT/bad.log" 2>&1; then echo "FAIL: an unknown key was accepted" >&2; exit 1; fi
grep -q 'colour' "$OUT/bad.log"
echo "ok: refused, naming the setting"

echo "== a hot compute1 (six 2-vCPU instances at 0.95 of 10 CPUs) for 100 s, then the backtest of the last 90 s"
ansible-playbook "${INV[@]}" "${cfg[@]}" setup.yml
sleep 100
placement > "$OUT/before"
[ "$(wc -l < "$OUT/before")" -eq 8 ] || { cat "$OUT/before"; echo "FAIL: expected 8 instances" >&2; exit 1; }
backtest -e leveller_backtest_hours=0.025 -e @configurations.yml | tee "$OUT/run.log"
grep -q 'leave-alone' "$OUT/run.log"
python - "$OUT/reports/backtest-result.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
alone, relieve = result["configurations"]
print("ticks %d, hosts %d, instances %d, load from %s" % (result["ticks"], result["hosts"], result["instances"],
                                                         result["load_from"]))
for run in (alone, relieve):
    print("%s: %d migrations, %.4f host-hours overloaded, %d refused" % (
        run["name"], run["migrations"], run["overloaded_host_hours"], run["refused_moves"]))
assert result["ticks"] >= 15, result["ticks"]
# the test instances and whatever else the cloud runs (make demo's instances, say): all measured
assert result["instances"] >= 8, result["instances"]
assert result["load_from"]["instance series"] == result["instances"], result["load_from"]
assert alone["migrations"] == 0 and alone["overloaded_host_hours"] > 0
assert relieve["migrations"] >= 1 and relieve["refused_moves"] == 0
assert all(m["source"] == "compute1" for m in relieve["moves"]), relieve["moves"]
assert relieve["overloaded_host_hours"] < alone["overloaded_host_hours"]
PY
for f in backtest-report.txt backtest-report.svg backtest-result.json backtest-history.json; do
  [ "$(stat -c %a "$OUT/reports/$f")" = 600 ] || { echo "FAIL: $f is not 0600" >&2; exit 1; }
done
python -c "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])" "$OUT/reports/backtest-report.svg"
echo "ok: the replay relieved compute1; the report is owner-only"

echo "== the real cloud did not change"
placement > "$OUT/after"
diff "$OUT/before" "$OUT/after"
if grep -v ' ACTIVE$' "$OUT/after"; then echo "FAIL: an instance is not ACTIVE" >&2; exit 1; fi
echo "ok: 8 instances, ACTIVE, each on the host it was on"
echo "backtest: PASS"
