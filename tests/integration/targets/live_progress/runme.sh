#!/usr/bin/env bash
# shellcheck disable=SC2154  # INV, cfg, conf and get come from ../setup_leveller/files/script_env.sh
# Progress in the job output, against the local cloud: LP_COUNT (10) instances on one host, then
# `ansible-playbook cloudops.leveller.evacuate -e host=<it>` in a terminal (as in a shell, and as
# AWX's runner starts it), each output line timed as it arrives. Every move must have its own line,
# printed as the move finished: the lines spread over the drain, the first one well before the
# task's own result line. Then restore.yml re-enables the host, the host's other instances go back
# to it, the test instances are deleted, and the cloud is checked to be as found (the same
# instances, ACTIVE, one copy each, on their hosts).
# Runs under ansible-test (which passes -e @integration_config.yml as arguments) or alone. It
# drains a whole host: where several sessions share one local cloud, run it under their lock.
set -eu -o pipefail
cd "$(dirname "$0")"
. ../setup_leveller/files/script_env.sh "$@"
LP_COUNT=${LP_COUNT:-10}
OUT=$(mktemp -d)
unset PROMETHEUS_URL  # the drain plan from Nova's allocations alone: no wait for load series
# (and evacuate.yml runs with leveller_use_empty_hosts: the other hosts may hold nothing)
play() { ansible-playbook "${INV[@]}" "${cfg[@]}" -e leveller_report_dir="$OUT" -e lp_count="$LP_COUNT" "$@"; }

python live_progress.py before "$OUT/before.json" > "$OUT/host"
cat "$OUT/host"
HOST=$(tail -1 "$OUT/host")
python live_progress.py put_back "$OUT/before.json" > "$OUT/put-back.json"
cleanup() {
  local rc=$?
  echo "== leave the cloud as found"
  play cloudops.leveller.restore -e host="$HOST" || rc=1
  play cleanup.yml -e host="$HOST" -e "@$OUT/put-back.json" || rc=1
  python live_progress.py state "$OUT/end.json" && python live_progress.py final "$OUT/before.json" "$OUT/end.json" "$HOST" || rc=1
  rm -rf "$OUT"
  [ $rc -eq 0 ] && echo "live_progress: PASS"
  exit $rc
}
trap cleanup EXIT

echo "== $LP_COUNT instances on $HOST (and $(python -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["put_back"]))' "$OUT/before.json") other(s) there)"
play setup.yml -e host="$HOST"
python live_progress.py state "$OUT/booted.json"
python live_progress.py booted "$OUT/booted.json" "$HOST" "$LP_COUNT"

echo "== evacuate.yml on $HOST, each output line timed as it arrives"
python live_progress.py run "$OUT/lines.json" -- ansible-playbook "${INV[@]}" "${cfg[@]}" \
  -e leveller_report_dir="$OUT" -e host="$HOST" -e leveller_prometheus_url= -e leveller_use_empty_hosts=true \
  cloudops.leveller.evacuate
python live_progress.py state "$OUT/drained.json"
python live_progress.py drained "$OUT/before.json" "$OUT/drained.json" "$HOST"
python live_progress.py streamed "$OUT/lines.json" "$OUT/evacuate-$HOST-result.json" "$HOST"
