# shellcheck shell=bash
# The start every script target shares. A target cds into its own folder, then sources this
# file with its arguments:
#
#   . ../setup_leveller/files/script_env.sh "$@"
#
# It sets:
# - ANSIBLE_LIBRARY, pointing at the test modules.
# - INV: localhost, a local connection, and this python.
# - cfg: -e @integration_config.yml. It comes from the arguments ansible-test passes, or from the
#   file beside the targets when a target runs alone.
# - conf: that file's path, and get KEY, which prints a value from it.
# - OS_CLIENT_CONFIG_FILE and OS_CLOUD, exported for the test cloud.
export ANSIBLE_LIBRARY=$PWD/../setup_leveller/library
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
# shellcheck disable=SC2034  # used by the targets that source this file
INV=(-i "localhost," -c local -e "ansible_python_interpreter=$(command -v python)")
cfg=()
for a in "$@"; do case $a in @*integration_config.yml) cfg=(-e "$a");; esac; done
[ ${#cfg[@]} -gt 0 ] || { f=$(ls ../../integration_config.yml 2>/dev/null) && cfg=(-e "@$f"); }
conf=${cfg[1]#@}
get() { python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]])" "$conf" "$1"; }
OS_CLIENT_CONFIG_FILE=$(get clouds_yaml); OS_CLOUD=$(get openstack_cloud)
export OS_CLIENT_CONFIG_FILE OS_CLOUD
