#!/usr/bin/env bash
# shellcheck disable=SC2154  # INV, cfg, conf and get come from ../setup_leveller/files/script_env.sh
# Runs the collection's playbooks (by FQCN, as operators do) against the local cloud and checks
# the outcome in Nova: balance levels an unbalanced start, --check moves nothing, a drain with a
# failing move still writes its report (with the after as measured), evacuate drains and disables
# a host, restore re-enables it and brings its instances home, consolidate empties the hosts it
# says it frees, recover fences a dead host through its BMC and rebuilds its instances with the
# count unchanged, and restore brings it back (and its instances home) only once its nova-compute
# has started again (--check first: it shows the way home and changes nothing).
# Runs under ansible-test (which passes -e @integration_config.yml as arguments) or alone.
set -eu -o pipefail
cd "$(dirname "$0")"
. ../setup_leveller/files/script_env.sh "$@"
OUT=$(mktemp -d)
PROM=$(get prometheus_url); CLOUD_CTL=$(get cloud_ctl)
play() { ansible-playbook "${INV[@]}" "${cfg[@]}" -e leveller_report_dir="$OUT" "$@"; }
cleanup() {
  if [ -n "${DEAD:-}" ]; then
    bash "$CLOUD_CTL" compute start "${DEAD#compute}" >/dev/null 2>&1 || true
    python verify.py fence "$DEAD" false >/dev/null 2>&1 || true
  fi
  python verify.py cleanup || true
  rm -rf "$OUT"
}
trap cleanup EXIT

echo "== balance: unbalanced start, --check first, then the real run"
play setup.yml
sleep 30   # two scrapes and half the 1m CPU window: the feeder's load follows the new instances
python verify.py state "$OUT/before.json"
play cloudops.leveller.balance --check -e leveller_prometheus_url="$PROM" -e leveller_cpu_window=1m
python verify.py state "$OUT/after-check.json"
python verify.py same "$OUT/before.json" "$OUT/after-check.json"
play cloudops.leveller.balance -e leveller_prometheus_url="$PROM" -e leveller_cpu_window=1m
python verify.py state "$OUT/after-balance.json"
python verify.py balanced "$OUT/before.json" "$OUT/after-balance.json" "$OUT/balance-result.json"
test -s "$OUT/balance-report.svg" && test -s "$OUT/balance-progress.log"
grep -q "measured at" "$OUT/balance-report.txt"

echo "== evacuate compute1 with a move that fails: the run fails, its report is still written"
FAILING=$(python verify.py one_on "$OUT/after-balance.json" compute1)
python verify.py fault "$FAILING" migration-fail
if play cloudops.leveller.evacuate -e host=compute1; then echo "FAIL: the drain passed with a failing move" >&2; exit 1; fi
python verify.py report "$OUT/evacuate-compute1" "$FAILING"
python verify.py fault "$FAILING" clear

echo "== evacuate compute1, then restore it: its instances come home"
play cloudops.leveller.evacuate -e host=compute1
python verify.py state "$OUT/after-evacuate.json"
python verify.py drained "$OUT/after-balance.json" "$OUT/after-evacuate.json" compute1
play cloudops.leveller.restore -e host=compute1
python verify.py state "$OUT/after-restore.json"
python verify.py enabled "$OUT/after-restore.json" compute1
python verify.py home "$OUT/after-balance.json" "$OUT/after-restore.json" compute1
test -s "$OUT/restore-compute1-report.svg"

echo "== consolidate"
# every test instance was just moved by balance and evacuate: without cooldown=0 the plan
# rightly keeps them where they are
play cloudops.leveller.consolidate -e leveller_max_hosts=1 -e leveller_cooldown=0
python verify.py state "$OUT/after-consolidate.json"
python verify.py consolidated "$OUT/after-restore.json" "$OUT/after-consolidate.json" "$OUT/consolidate-plan.json"

echo "== recover a dead host, fenced through its BMC, then restore it"
# The local cloud's Nova: service_down_time 20 s; its Redfish BMCs are in bmc.json.
DEAD=$(python verify.py busiest "$OUT/after-consolidate.json")
python verify.py bmcs "$(get bmc_file)" > "$OUT/bmcs.json"
chmod 600 "$OUT/bmcs.json"
FENCE=(-e "@$OUT/bmcs.json" -e leveller_service_down_time=20)
if play cloudops.leveller.recover -e host="$DEAD" "${FENCE[@]}"; then echo "FAIL: recover ran on a live host" >&2; exit 1; fi
bash "$CLOUD_CTL" compute stop "${DEAD#compute}"
python verify.py wait "$DEAD" silent
play cloudops.leveller.recover -e host="$DEAD" "${FENCE[@]}"
python verify.py state "$OUT/after-recover.json"
python verify.py recovered "$OUT/after-consolidate.json" "$OUT/after-recover.json" "$DEAD"
python verify.py fenced "$OUT/recover-$DEAD-result.json"
if play cloudops.leveller.restore -e host="$DEAD" -e leveller_service_down_time=20; then
  echo "FAIL: restore enabled $DEAD before its nova-compute started again" >&2; exit 1
fi
bash "$CLOUD_CTL" compute start "${DEAD#compute}"
python verify.py wait "$DEAD" reporting
# --check re-enables nothing and moves nothing, but shows the way home as it will be
play cloudops.leveller.restore -e host="$DEAD" -e leveller_service_down_time=20 --check | tee "$OUT/restore-check.log"
grep -qE "once $DEAD is enabled: pb-[^ ]+.* would go back" "$OUT/restore-check.log" \
  || { echo "FAIL: restore --check did not show the way home to $DEAD" >&2; exit 1; }
python verify.py state "$OUT/after-restore-check.json"
python verify.py same "$OUT/after-recover.json" "$OUT/after-restore-check.json"
python verify.py out "$OUT/after-restore-check.json" "$DEAD"
play cloudops.leveller.restore -e host="$DEAD" -e leveller_service_down_time=20
python verify.py state "$OUT/after-restore-dead.json"
python verify.py enabled "$OUT/after-restore-dead.json" "$DEAD"
python verify.py home "$OUT/after-consolidate.json" "$OUT/after-restore-dead.json" "$DEAD"
echo "playbooks: PASS"
