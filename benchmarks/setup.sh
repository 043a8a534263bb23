#!/usr/bin/env bash
# Bench-only virtualenv with OR-Tools, for benchmarks/cpsat.py (exact optimum on small cases).
# OR-Tools is never a runtime dependency of the collection: only the benchmark imports it.
#   bash benchmarks/setup.sh            # creates $LEVELLER_HOME/bench-venv
#   BENCH_VENV=/elsewhere bash benchmarks/setup.sh
set -euo pipefail
LEVELLER_HOME=${LEVELLER_HOME:-$HOME/.cache/cloudops-leveller}
BENCH_VENV=${BENCH_VENV:-$LEVELLER_HOME/bench-venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$BENCH_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$BENCH_VENV"
fi
"$BENCH_VENV/bin/python" -m pip install --quiet --upgrade pip
"$BENCH_VENV/bin/python" -m pip install --quiet 'ortools>=9.8,<10'
"$BENCH_VENV/bin/python" -c 'import ortools; print("ortools", ortools.__version__, "in", "'"$BENCH_VENV"'")'
