#!/usr/bin/env bash
# ansible-test builds a virtualenv per sanity test and bootstraps pip in it with a script
# downloaded from an Ansible CI host (ansible/ansible#77304). Machines that reach only the
# package registries cannot download it, so put a local stand-in where ansible-test looks
# first (~/.ansible/test/cache/get_pip_<version>.py): it installs pip from the pip wheel,
# which comes from PyPI. Idempotent.
set -euo pipefail
PY=${1:?usage: ansible-test-offline.sh PYTHON}
PIP_VERSION=$("$PY" - <<'PYEOF'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PYEOF
)
CACHE=$HOME/.ansible/test/cache
SCRIPT=$CACHE/get_pip_${PIP_VERSION//./_}.py
WHEEL=$CACHE/pip-$PIP_VERSION-py3-none-any.whl
mkdir -p "$CACHE"
if [ ! -f "$WHEEL" ]; then
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CACHE" "pip==$PIP_VERSION"
fi
if [ ! -f "$SCRIPT" ] || ! grep -q 'cloudops.leveller stand-in' "$SCRIPT"; then
  cat > "$SCRIPT" <<PYEOF
# cloudops.leveller stand-in for get-pip.py: install pip $PIP_VERSION from the local wheel.
import os, sys
WHEEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pip-$PIP_VERSION-py3-none-any.whl')
sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(main(['install', '--upgrade', '--force-reinstall', WHEEL] + [a for a in args if not a.startswith('pip==')]))
PYEOF
fi
echo "ansible-test pip bootstrap: $SCRIPT"
