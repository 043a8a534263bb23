#!/usr/bin/env bash
# Watcher-only virtualenv for the side-by-side benchmark (benchmarks/watcher/harness.py).
# python-watcher comes from PyPI into its own venv; none of its code is part of the collection
# or of this repository. requirements.txt beside this script pins python-watcher 17.0.0 and
# every dependency it pulled in when the comparison was first run, so the install repeats.
#   bash benchmarks/watcher/setup.sh       # creates $LEVELLER_HOME/watcher-venv
#   WATCHER_VENV=/elsewhere bash benchmarks/watcher/setup.sh
#   WATCHER_UNPINNED=1 bash ...             # python-watcher 17.x with whatever pip resolves
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
WATCHER_VENV=${WATCHER_VENV:-$LEVELLER_HOME/watcher-venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$WATCHER_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$WATCHER_VENV"
fi
"$WATCHER_VENV/bin/python" -m pip install --quiet --upgrade pip
if [ -n "${WATCHER_UNPINNED:-}" ] || [ ! -s "$HERE/requirements.txt" ]; then
  "$WATCHER_VENV/bin/python" -m pip install --quiet 'python-watcher>=17,<18'
else
  "$WATCHER_VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
fi
"$WATCHER_VENV/bin/python" - <<'PY'
import importlib.metadata as md
import watcher.decision_engine.strategy.strategies  # noqa: F401  (fails loudly if the install is broken)
print("python-watcher", md.version("python-watcher"))
PY
