#!/usr/bin/env bash
# make demo: unbalance the local cloud, then run the main job, playbooks/balance.yml, against it.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
export PATH=$LEVELLER_HOME/venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$LEVELLER_HOME/collections
eval "$(bash "$TOP/tests/integration/cloud/cloud.sh" env)"
# Start from the same place every time, whatever an earlier demo or test run left behind
# (its instances, a disabled host, a migration left hanging): the reset says what it removed.
bash "$TOP/tests/integration/cloud/cloud.sh" reset
python "$TOP/scripts/demo_unbalance.py"
# The telemetry has to see the new instances before the snapshot: wait for a couple of
# scrapes and a full rate window of the demo's CPU query.
echo "demo: waiting 40 s for Prometheus to see the new load"
sleep 40
cd "$TOP"
ansible-playbook playbooks/balance.yml \
  -e leveller_cloud="$OS_CLOUD" \
  -e leveller_prometheus_url="$LEVELLER_PROMETHEUS_URL" \
  -e leveller_cpu_window=30s \
  -e leveller_measure_delay=35 \
  -e leveller_report_dir="$TOP/reports" \
  "$@"
echo "demo: report written under $TOP/reports/"
