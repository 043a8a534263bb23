#!/usr/bin/env bash
# `make bench`: run the planner benchmark with the collection importable.
# Arguments go to benchmarks/run.py (--quick, --sizes 100,1000, --seed N).
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
PYTHONPATH=$COLLECTIONS${PYTHONPATH:+:$PYTHONPATH} exec "$PYTHON" benchmarks/run.py "$@"
