#!/usr/bin/env bash
# shellcheck disable=SC2154  # INV, cfg, conf and get come from ../setup_leveller/files/script_env.sh
# run_metrics against the local cloud's real Pushgateway and Prometheus (which scrapes it every 2 s
# with honor_labels). A real balance run (playbooks/balance.yml, by FQCN, on an unbalanced start)
# pushes its metrics; Prometheus must show them; a second real run adds one to runs_total and also
# writes a node-exporter textfile (mode 0644 under umask 077, accepted by promtool check metrics);
# a run in check mode pushes nothing; a Pushgateway that cannot be reached only warns.
# Every group is pushed with its own test_run label and deleted at the end.
# Runs under ansible-test (which passes -e @integration_config.yml as arguments) or alone.
set -eu -o pipefail
cd "$(dirname "$0")"
. ../setup_leveller/files/script_env.sh "$@"
OUT=$(mktemp -d)
PROM=$(get prometheus_url); PUSH=$(get pushgateway_url)
RUN_ID=rm$(date +%s)$$
SEL="playbook=\"balance\",test_run=\"$RUN_ID\""
GROUP="{\"job\": \"cloudops_leveller\", \"playbook\": \"balance\", \"test_run\": \"$RUN_ID\"}"
balance() {
  ansible-playbook "${INV[@]}" "${cfg[@]}" cloudops.leveller.balance -e leveller_report_dir="$OUT/reports" \
    -e leveller_prometheus_url="$PROM" -e leveller_cpu_window=1m \
    -e "{\"run_report_metrics_labels\": {\"test_run\": \"$RUN_ID\"}}" "$@"
}
cleanup() {
  python verify_metrics.py delete "$PUSH" cloudops_leveller playbook=balance "test_run=$RUN_ID" || true
  ansible-playbook "${INV[@]}" "${cfg[@]}" setup.yml -e state=absent >/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

echo "== a real balance run pushes its metrics; Prometheus scrapes them"
ansible-playbook "${INV[@]}" "${cfg[@]}" setup.yml
sleep 30   # two scrapes and half the 1m CPU window: the feeder's load follows the new instances
balance -e leveller_pushgateway_url="$PUSH" | tee "$OUT/first.log"
grep -q 'Send the run.s metrics' "$OUT/first.log"
python verify_metrics.py wait "$PROM" "cloudops_leveller_last_run_success{$SEL}" 1
python verify_metrics.py wait "$PROM" "sum(cloudops_leveller_runs_total{$SEL})" 1
done=$(python verify_metrics.py wait "$PROM" "cloudops_leveller_moves{$SEL,state=\"done\"}")
[ "${done%.*}" -gt 0 ] || { echo "FAIL: the first run moved nothing (moves done = $done)" >&2; exit 1; }
python verify_metrics.py wait "$PROM" "cloudops_leveller_move_duration_seconds_count{$SEL} >= $done" >/dev/null
python verify_metrics.py wait "$PROM" "cloudops_leveller_spread_ratio{$SEL,when=\"before\"}" >/dev/null
python verify_metrics.py wait "$PROM" "cloudops_leveller_last_success_timestamp_seconds{$SEL} > time() - 300" >/dev/null
echo "ok: $done move(s) done, in Prometheus"

echo "== a second real run: runs_total grows by one; a node-exporter textfile, 0644 whatever the umask"
mkdir "$OUT/textfile"
(umask 077; balance -e leveller_pushgateway_url="$PUSH" -e leveller_metrics_textfile_dir="$OUT/textfile")
python verify_metrics.py wait "$PROM" "sum(cloudops_leveller_runs_total{$SEL})" 2
python verify_metrics.py wait "$PROM" "cloudops_leveller_runs_total{$SEL,result=\"success\"}" 2
prom_file=$(ls "$OUT"/textfile/cloudops_leveller_balance.*.prom)   # the labels' digest in the name
python verify_metrics.py textfile "$prom_file" 1
promtool check metrics < "$prom_file"
echo "ok: promtool check metrics accepts the textfile"

echo "== check mode pushes nothing"
python verify_metrics.py group "$PUSH" "$GROUP" > "$OUT/group-before"
grep -q '^push_time_seconds' "$OUT/group-before"
balance -e leveller_pushgateway_url="$PUSH" --check
python verify_metrics.py group "$PUSH" "$GROUP" > "$OUT/group-after"
diff "$OUT/group-before" "$OUT/group-after"
echo "ok: the group is as it was (push time and every sample)"

echo "== a Pushgateway that cannot be reached warns; the task does not fail"
ansible "${INV[@]}" localhost -m cloudops.leveller.run_metrics \
  -a '{"playbook": "balance", "pushgateway_url": "http://127.0.0.1:9", "timeout": 2}' > "$OUT/down.log" 2>&1
grep -q '"changed": false' "$OUT/down.log"
grep -q 'run_metrics: Pushgateway at http://127.0.0.1:9 is unreachable while reading the previous values' "$OUT/down.log"
echo "ok: warned, changed=false"
echo "run_metrics: PASS"
