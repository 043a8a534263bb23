#!/usr/bin/env bash
# Run the test layers and print one closing summary line per layer.
#   test-all.sh all | sanity | units | lint | docs-lint | ee | integration
# Every layer runs even when an earlier one fails; the exit code is non-zero if any failed.
# Full output of each layer: tests/output/layers/<layer>.log
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
VENV=${LEVELLER_VENV:-$LEVELLER_HOME/venv}
export PATH=$VENV/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$LEVELLER_HOME/collections
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
COLL_LINK=$LEVELLER_HOME/collections/ansible_collections/cloudops/leveller
# ansible-test resolves real paths, so it needs a real copy under .../ansible_collections/ns/name.
TREE=$LEVELLER_HOME/test-tree/ansible_collections/cloudops/leveller
LOGS=$TOP/tests/output/layers
mkdir -p "$LOGS"
SUMMARY=()
TOTAL_PASS=0; TOTAL_FAIL=0; FAILED_LAYERS=(); FAILED_TARGETS=()

sync_tree() {
  mkdir -p "$TREE"
  (cd "$TOP" && git ls-files -co --exclude-standard | grep -v '^tests/output/' \
     | rsync -a --delete --files-from=- ./ "$TREE/")
  # rsync --files-from does not delete: drop files that are gone from the checkout
  (cd "$TREE" && find . -type f ! -path './tests/output/*' | sed 's#^\./##' | sort) > "$LOGS/.tree-files"
  (cd "$TOP" && git ls-files -co --exclude-standard | sort) > "$LOGS/.src-files"
  comm -23 "$LOGS/.tree-files" "$LOGS/.src-files" | (cd "$TREE" && xargs -r rm -f)
}

record() {  # layer passed failed status
  local layer=$1 pass=$2 fail=$3 status=$4
  if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  SUMMARY+=("$layer: $pass passed, $fail failed")
  TOTAL_PASS=$((TOTAL_PASS + pass)); TOTAL_FAIL=$((TOTAL_FAIL + fail))
  if [ "$status" -ne 0 ]; then
    FAILED_LAYERS+=("$layer")
    echo "---- $layer FAILED; last lines of $LOGS/$layer.log ----"
    grep -E 'ERROR|FAILED|Error|[^=]failed[^=]' "$LOGS/$layer.log" | grep -vE 'failed=[0-9]' | cut -c1-600 | tail -40
  fi
}

run_sanity() {
  sync_tree
  local log=$LOGS/sanity.log
  (cd "$TREE" && ansible-test sanity --python 3.11 --color no) > "$log" 2>&1
  local st=$?
  local ran failed
  ran=$(grep -c '^Running sanity test' "$log")
  failed=$(grep -oE 'The [0-9]+ sanity test\(s\) listed below' "$log" | grep -oE '[0-9]+' | head -1)
  record sanity $((ran - ${failed:-0})) "${failed:-0}" $st
}

run_units() {
  local log=$LOGS/units.log
  (cd "$COLL_LINK" && PYTHONPATH=$LEVELLER_HOME/collections python -m pytest tests/unit -q \
      -p no:cacheprovider --import-mode=importlib -n 2) > "$log" 2>&1
  local st=$?
  [ $st -eq 5 ] && st=1   # no tests collected is a failure here
  local line p f
  line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$log" | tail -1)
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  record units "${p:-0}" "${f:-0}" $st
}

run_lint() {
  local log=$LOGS/lint.log
  (cd "$TOP" && ansible-lint --offline --profile production) > "$log" 2>&1
  local st=$?
  local files
  files=$(cd "$TOP" && git ls-files -co --exclude-standard -- playbooks roles 'extensions/*.yml' | grep -cE '\.ya?ml$')
  local f
  f=$(grep -oE 'Failed: [0-9]+ failure' "$log" | grep -oE '[0-9]+' | head -1)
  record lint $((files - ${f:-0} < 0 ? 0 : files - ${f:-0})) "${f:-0}" $st
}

run_docs_lint() {
  sync_tree
  local log=$LOGS/docs-lint.log st=0 n=0 f=0
  {
    echo "== antsibull-docs lint-collection-docs"; (cd "$TREE" && antsibull-docs lint-collection-docs --plugin-docs .) || { st=1; f=$((f+1)); }; n=$((n+1))
    if [ -f "$TOP/changelogs/config.yaml" ]; then
      echo "== antsibull-changelog lint"; (cd "$TREE" && antsibull-changelog lint) || { st=1; f=$((f+1)); }; n=$((n+1))
    fi
  } > "$log" 2>&1
  record docs-lint $((n - f)) $f $st
}

run_ee() {
  # The execution environment's build context (scripts/ee-context.sh: tarball, ansible-builder
  # create, offline install, introspect); no container runtime needed.
  local log=$LOGS/ee.log
  bash "$TOP/scripts/ee-context.sh" "$TOP/tests/output/ee" > "$log" 2>&1
  local st=$?
  local p f
  p=$(grep -c '^ee: ok: ' "$log"); f=$(grep -c '^ee: FAILED' "$log")
  record ee "$p" "$f" $st
}

run_integration() {
  local log=$LOGS/integration.log
  # The suite starts from the local cloud's known state, whatever ran before (make demo, an
  # interrupted or failed test run): the reset names every instance, host state and load
  # override it removes, here and in the log.
  # (reset starts the cloud first when it is not up)
  if ! bash "$TOP/tests/integration/cloud/cloud.sh" reset > "$log.reset" 2>&1; then
    cat "$log.reset" > "$log"
    record integration 0 1 1
    echo "---- the local cloud could not be started or reset; last lines of $log ----"
    tail -25 "$log"
    return
  fi
  grep -E '^(cloud: )?reset: ' "$log.reset" | sed 's/^cloud: //' | cut -c1-300
  {
    cat "$log.reset"; rm -f "$log.reset"
    eval "$(bash "$TOP/tests/integration/cloud/cloud.sh" env)"
    sync_tree
    cat > "$TREE/tests/integration/integration_config.yml" <<EOC
---
openstack_cloud: ${OS_CLOUD}
openstack_cloud_member: leveller-demo
clouds_yaml: ${OS_CLIENT_CONFIG_FILE}
prometheus_url: ${LEVELLER_PROMETHEUS_URL}
pushgateway_url: ${LEVELLER_PUSHGATEWAY_URL}
cloud_ctl: $TOP/tests/integration/cloud/cloud.sh
bmc_file: ${LEVELLER_BMC_FILE:-}
libvirt_ctl: $TOP/tests/integration/libvirt/libvirt.sh
EOC
    read -ra targets <<< "${INTEGRATION_TARGETS:-}"
    cd "$TREE" && ansible-test integration --python 3.11 --color no --allow-destructive --continue-on-error "${targets[@]}"
  } > "$log" 2>&1
  local st=$?
  local ran failed
  ran=$(grep -cE '^Running .* integration test (role|script)' "$log")
  # with --continue-on-error every target runs; ansible-test names how many failed
  failed=$(grep -oE 'The [0-9]+ integration test\(s\) listed below' "$log" | grep -oE '[0-9]+' | head -1)
  failed=${failed:-0}; [ $st -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
  record integration $((ran - failed < 0 ? 0 : ran - failed)) "$failed" $st
  grep -E 'cloud ready in' "$log" | tail -1
  # name the failed targets and show the end of each one's output, so a CI log says what broke
  local t section why
  while read -r t; do
    section=$(awk -v t="$t" '/^Running .* integration test (role|script)/ {on = ($2 == t)} on' "$log")
    echo "---- integration target $t failed; its last lines ----"
    grep -vE '^(ok|skipping|changed|included):' <<< "$section" | cut -c1-600 | tail -25
    # its last failure message, repeated in the closing summary (a CI log may show only its end)
    # (a script's FAIL: line first: it may print a log's tail, whose "msg" lines are not the cause)
    why=$(grep -E '^FAIL: ' <<< "$section" | tail -1 | cut -c1-400)
    [ -n "$why" ] || why=$(grep -E '"msg": ' <<< "$section" | tail -1 | sed 's/^ *//' | cut -c1-400)
    FAILED_TARGETS+=("$t${why:+ [$why]}")
  done < <(sed -n '/integration test(s) listed below/,$p' "$log" | sed 1d | grep -E '^[a-z0-9_]+$')
}

layer=${1:-all}
case $layer in
  all) run_sanity; run_units; run_lint; run_docs_lint; run_ee; run_integration ;;
  sanity) run_sanity ;;
  units) run_units ;;
  lint) run_lint ;;
  docs-lint) run_docs_lint ;;
  ee) run_ee ;;
  integration) run_integration ;;
  *) echo "unknown layer: $layer" >&2; exit 2 ;;
esac
echo
for s in "${SUMMARY[@]}"; do echo "$s"; done
echo "total: $TOTAL_PASS passed, $TOTAL_FAIL failed"
[ ${#FAILED_TARGETS[@]} -eq 0 ] || printf 'failed integration target: %s\n' "${FAILED_TARGETS[@]}"
[ ${#FAILED_LAYERS[@]} -eq 0 ] || { echo "failed layers: ${FAILED_LAYERS[*]} (logs in $LOGS)"; exit 1; }
