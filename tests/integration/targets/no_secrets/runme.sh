#!/usr/bin/env bash
# No secret in any output, at -vvvv: the collection's modules are called with `cloud` given as a
# dict carrying the real admin password and a distinctive extra secret, and with a Prometheus URL
# carrying user:password@ (the local Prometheus ignores it); then a few calls that fail (an
# unreachable Prometheus, a refused login, an unknown instance, an unknown option). The whole
# output, registered results included (printed at -vvvv), must not contain any of the secrets.
# Read-only: nothing is created, moved or disabled (live_migrate runs in check mode and fails
# before any move). Runs under ansible-test (which passes -e @integration_config.yml) or alone.
set -eu -o pipefail
cd "$(dirname "$0")"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_NOCOLOR=1
cfg=()
for a in "$@"; do case $a in @*integration_config.yml) cfg=(-e "$a");; esac; done
[ ${#cfg[@]} -gt 0 ] || { f=$(ls ../../integration_config.yml 2>/dev/null) && cfg=(-e "@$f"); }
conf=${cfg[1]#@}
# The dict alone carries the credentials: no clouds.yaml entry is merged in.
unset OS_CLOUD OS_CLIENT_CONFIG_FILE
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# The cloud's settings from clouds.yaml, as a dict, plus secrets that are easy to grep for.
python - "$conf" "$OUT/vars.yml" <<'PY'
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
cloud = yaml.safe_load(open(conf['clouds_yaml']))['clouds'][conf['openstack_cloud']]
prom = conf['prometheus_url'].rstrip('/')
scheme, rest = prom.split('://', 1)
cloud['leveller_test_secret'] = 'cloud-SECRET-456'  # ignored by openstacksdk, masked by its key
out = {
    'cloud_dict': cloud,
    'prom_with_userinfo': '%s://leveller:pw-SECRET-123@%s' % (scheme, rest),
    'prom_unreachable': '%s://leveller:pw-SECRET-123@127.0.0.1:9' % scheme,
    'wrong_cloud': dict(cloud, auth=dict(cloud['auth'], username='leveller-no-such-user',
                                         password='login-SECRET-789')),
}
yaml.safe_dump(out, open(sys.argv[2], 'w'))
PY

cat > "$OUT/play.yml" <<'YML'
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Snapshot with cloud as a dict and a Prometheus URL with userinfo
      cloudops.leveller.hypervisor_load_info:
        cloud: "{{ cloud_dict }}"
        sources: [nova, prometheus]
        prometheus_url: "{{ prom_with_userinfo }}"
        allow_missing_load: true
      register: snap

    - name: The snapshot records the Prometheus URL without its userinfo
      ansible.builtin.assert:
        that:
          - snap.snapshot.sources.prometheus.url is not search('@')
          - snap.snapshot.hosts | length > 0

    - name: The registered result, in full
      ansible.builtin.debug:
        var: snap

    - name: Unreachable Prometheus with userinfo (fails)
      cloudops.leveller.hypervisor_load_info:
        cloud: "{{ cloud_dict }}"
        prometheus_url: "{{ prom_unreachable }}"
        prometheus_timeout: 2
      register: unreachable
      ignore_errors: true

    - name: Login refused (fails)
      cloudops.leveller.hypervisor_load_info:
        cloud: "{{ wrong_cloud }}"
        sources: [nova]
      register: refused
      ignore_errors: true

    - name: Unknown instance, check mode (fails before any move)
      cloudops.leveller.live_migrate:
        cloud: "{{ cloud_dict }}"
        instance: leveller-no-such-instance
      check_mode: true
      register: unknown
      ignore_errors: true

    - name: Unknown option (fails in the argument check)
      cloudops.leveller.evacuate_host:
        cloud: "{{ cloud_dict }}"
        host: compute1
        no_such_option: true
      check_mode: true
      register: badopt
      ignore_errors: true

    - name: Every failing call failed, and for the expected reason
      ansible.builtin.assert:
        that:
          - unreachable is failed and unreachable.failure == 'unreachable'
          - unreachable.msg is search('127.0.0.1:9')
          - refused is failed and refused.msg is search('401')
          - unknown is failed and unknown.msg is search('leveller-no-such-instance')
          - badopt is failed and badopt.msg is search('no_such_option')

    - name: The failed results, in full
      ansible.builtin.debug:
        msg: "{{ [unreachable, refused, unknown, badopt] }}"
YML

rc=0
ansible-playbook -vvvv -i localhost, -c local -e "ansible_python_interpreter=$(command -v python)" \
  -e "@$OUT/vars.yml" "$OUT/play.yml" > "$OUT/out.log" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
  tail -60 "$OUT/out.log"
  echo "no_secrets: FAIL: the playbook failed (rc $rc)" >&2
  exit 1
fi
# The password of the cloud is "admin", also a user and project name: look for it as a value.
leaks=$(grep -n -E 'pw-SECRET-123|cloud-SECRET-456|login-SECRET-789|"password": "admin"|password: admin|'"'password': 'admin'" \
  "$OUT/out.log" || true)
if [ -n "$leaks" ]; then
  echo "$leaks" | cut -c1-300 >&2
  echo "no_secrets: FAIL: a secret reached the output" >&2
  exit 1
fi
# The masking is there (so the greps above looked at the right output).
grep -q 'leveller:\*\*\*\*\*\*\*\*@\|VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' "$OUT/out.log" || {
  echo "no_secrets: FAIL: no masked value in the output: did the modules run at -vvvv?" >&2; exit 1; }
echo "no_secrets: PASS ($(wc -l < "$OUT/out.log") lines of -vvvv output, no secret)"
