#!/usr/bin/env bash
# `make bench`: run the planner benchmark with the collection importable.
# Arguments go to benchmarks/run.py (--quick, --sizes 100,1000, --seed N, --no-watcher).
# The Watcher 17 side-by-side needs $LEVELLER_HOME/watcher-venv: when it is missing this script
# makes it with benchmarks/watcher/setup.sh (python-watcher from PyPI, pinned); set
# LEVELLER_WATCHER_SETUP=0 to skip that (the comparison is then skipped, and says so).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
PYTHON=${PYTHON:-$LEVELLER_HOME/venv/bin/python}
COLLECTIONS=$LEVELLER_HOME/collections
if [ ! -e "$COLLECTIONS/ansible_collections/cloudops/leveller" ]; then
  mkdir -p "$COLLECTIONS/ansible_collections/cloudops"
  ln -sfn "$TOP" "$COLLECTIONS/ansible_collections/cloudops/leveller"
fi
cd "$TOP"
WATCHER_VENV=${WATCHER_VENV:-$LEVELLER_HOME/watcher-venv}
case " $* " in *" --no-watcher "*) LEVELLER_WATCHER_SETUP=0 ;; esac
if [ "${LEVELLER_WATCHER_SETUP:-1}" != 0 ] && [ ! -x "$WATCHER_VENV/bin/python" ]; then
  echo "making the Watcher venv for the side-by-side: bash benchmarks/watcher/setup.sh" >&2
  if ! LEVELLER_HOME=$LEVELLER_HOME WATCHER_VENV=$WATCHER_VENV bash benchmarks/watcher/setup.sh >&2; then
    echo "Watcher venv setup failed (see above): the Watcher rows will say why they are missing" >&2
  fi
fi
export LEVELLER_HOME WATCHER_VENV
PYTHONPATH=$COLLECTIONS${PYTHONPATH:+:$PYTHONPATH} exec "$PYTHON" benchmarks/run.py "$@"
