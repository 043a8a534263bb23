#!/usr/bin/env bash
# Install what the collection's own tests and demo need on a Debian/Ubuntu machine:
# system packages (apt) and one Python virtualenv with Ansible and the collection's
# Python dependencies. Idempotent: a stamp keyed on the requirement files skips
# the work when nothing changed. Run as root or with sudo available.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
VENV=${LEVELLER_VENV:-$LEVELLER_HOME/venv}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
mkdir -p "$LEVELLER_HOME"

APT_PKGS=(python3-venv python3-dev gcc pkg-config libvirt-dev curl rsync git make bc shellcheck
          # the local cloud
          mariadb-server rabbitmq-server prometheus prometheus-pushgateway prometheus-alertmanager
          # what the monitoring roles install, and the tools their tests read them with
          prometheus-node-exporter prometheus-libvirt-exporter snmpd snmp
          # ansible-rulebook (Event-Driven Ansible) runs on Java
          default-jre-headless)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-tools: apt packages: ${missing[*]}"
  $SUDO apt-get update -q
  # policy-rc.d (containers) keeps packaged daemons from starting; the project
  # runs its own instances bound to 127.0.0.1 anyway.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

stamp_src=$(cat "$TOP/requirements.txt" "$TOP/tests/requirements.txt" "$0" | sha256sum | cut -c1-16)
if [ -f "$VENV/.stamp" ] && [ "$(cat "$VENV/.stamp")" = "$stamp_src" ]; then
  echo "install-tools: $VENV is up to date"
else
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip uv
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
      -r "$TOP/requirements.txt" -r "$TOP/tests/requirements.txt"
  echo "$stamp_src" > "$VENV/.stamp"
  echo "install-tools: $VENV ready ($("$VENV/bin/ansible" --version | head -1))"
fi

# ansible-rulebook in a virtualenv of its own (its pins differ from the tools'), for the
# Event-Driven Ansible rulebook's test.
EDA_VENV=${LEVELLER_EDA_VENV:-$LEVELLER_HOME/eda-venv}
EDA_REQ=("ansible-rulebook>=1.3,<1.4" "ansible-core>=2.19,<2.20" aiohttp)
if [ ! -f "$EDA_VENV/.stamp" ] || [ "$(cat "$EDA_VENV/.stamp")" != "${EDA_REQ[*]}" ]; then
  [ -x "$EDA_VENV/bin/python" ] || python3 -m venv "$EDA_VENV"
  "$VENV/bin/uv" pip install -q --python "$EDA_VENV/bin/python" "${EDA_REQ[@]}"
  echo "${EDA_REQ[*]}" > "$EDA_VENV/.stamp"
  echo "install-tools: $EDA_VENV ready"
fi
