#!/usr/bin/env bash
# `make bench`: run the planner benchmark with the collection importable.
# Arguments go to benchmarks/run.py (--quick, --sizes 100,1000, --seed N, --no-watcher), except
# --no-optimum, which skips the comparisons with the exact optimum (OR-Tools CP-SAT, in the
# bench-only venv that benchmarks/setup.sh makes when it is missing): balance_optimum.py
# (overload against the fewest moves, 20 and 50 hosts) and cpsat.py (consolidate, 10-30 hosts).
# The Watcher 17 side-by-side needs $LEVELLER_HOME/watcher-venv: when it is missing this script
# makes it with benchmarks/watcher/setup.sh (python-watcher from PyPI, pinned); set
# LEVELLER_WATCHER_SETUP=0 to skip that (the comparison is then skipped, and says so).
# The PlanetLab replay (benchmarks/replay/run_replay.py, both rule sets, about 2 minutes) runs
# when day files are in $PLANETLAB_DIR (default $LEVELLER_HOME/data/planetlab); --no-replay
# skips it. Last, the operator's backtest at 100 and 500 hosts (a day each, about 3 minutes);
# --no-backtest skips it.
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
args=(); optimum=1; replay=1; backtest=1
for a in "$@"; do
  case $a in --no-optimum) optimum=0 ;; --no-replay) replay=0 ;; --no-backtest) backtest=0 ;; *) args+=("$a") ;; esac
done
export PYTHONPATH=$COLLECTIONS${PYTHONPATH:+:$PYTHONPATH}
rc=0
"$PYTHON" benchmarks/run.py "${args[@]}" || rc=$?
if [ $optimum = 1 ]; then
  BENCH_VENV=${BENCH_VENV:-$LEVELLER_HOME/bench-venv}
  if [ ! -x "$BENCH_VENV/bin/python" ]; then
    echo "making the bench venv (OR-Tools) for the optimum comparisons: bash benchmarks/setup.sh" >&2
    LEVELLER_HOME=$LEVELLER_HOME BENCH_VENV=$BENCH_VENV bash benchmarks/setup.sh >&2 \
      || echo "bench venv setup failed (see above): the optimum comparisons are skipped" >&2
  fi
  if [ -x "$BENCH_VENV/bin/python" ]; then
    echo
    echo "Overload against the fewest moves to <= 1.2 x mean CPU (CP-SAT; benchmarks/balance_optimum.py)"
    "$BENCH_VENV/bin/python" benchmarks/balance_optimum.py || rc=$?
    echo
    echo "Consolidate against the fewest hosts (CP-SAT; benchmarks/cpsat.py)"
    "$BENCH_VENV/bin/python" benchmarks/cpsat.py --seeds 1,2,3,4,5 --seconds 20 || rc=$?
  fi
else
  echo "optimum comparisons skipped (--no-optimum)"
fi
if [ -z "${PLANETLAB_DIR:-}" ]; then
  # The traces ship beside the checkout (../shared/data/planetlab), else in $LEVELLER_HOME/data.
  PLANETLAB_DIR=$LEVELLER_HOME/data/planetlab
  [ -d "$TOP/../shared/data/planetlab" ] && PLANETLAB_DIR=$(cd "$TOP/../shared/data/planetlab" && pwd)
fi
if [ $replay = 1 ]; then
  if compgen -G "$PLANETLAB_DIR/*.csv.gz" >/dev/null; then
    echo
    echo "PlanetLab replay beside CloudSim 3.0.3 (benchmarks/replay/run_replay.py)"
    "$PYTHON" benchmarks/replay/run_replay.py --data-dir "$PLANETLAB_DIR" --rules both --check || rc=$?
  else
    echo "PlanetLab replay skipped: no day files (*.csv.gz) in $PLANETLAB_DIR (set PLANETLAB_DIR)"
  fi
else
  echo "PlanetLab replay skipped (--no-replay)"
fi
if [ $backtest = 1 ]; then
  echo
  echo "The operator's backtest at scale: a day at 5 minutes, backtest.yml's two default configurations (benchmarks/replay/backtest_bench.py)"
  "$PYTHON" benchmarks/replay/backtest_bench.py || rc=$?
else
  echo "backtest benchmark skipped (--no-backtest)"
fi
exit $rc
