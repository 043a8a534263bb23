# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an operator's backtest costs: level_backtest's engine on synthetic clouds of real size.

The cloud is the planner benchmark's (benchmarks/generate.py: AZs, aggregates, server groups of
every policy, pinned and stopped instances, hot hosts). The history is a day at 5 minutes: each
instance's CPU follows its snapshot load times a daily wave (its own phase) with noise, seeded.
Two configurations are replayed, the two defaults of backtest.yml. Prints a table and writes
benchmarks/results/backtest-bench.json.

    python benchmarks/replay/backtest_bench.py --hosts 100,500 --seed 1
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import json
import math
import os
import platform
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

from ansible_collections.cloudops.leveller.plugins.module_utils import _backtest as backtest  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict  # noqa: E402
import generate  # noqa: E402

# the defaults of playbooks/backtest.yml
CONFIGURATIONS = [
    {"name": "balance-hourly", "schedule": [
        {"strategy": "balance", "every": 3600,
         "params": {"min_load": 0.5, "min_diff": 0.2, "max_moves": 10, "max_gib": 64, "min_gain": 0.005,
                    "cooldown": 3600}}]},
    {"name": "relieve-and-pack", "schedule": [
        {"strategy": "overload", "when": "hot", "level": 0.9, "params": {"threshold": 0.85, "cooldown": 3600}},
        {"strategy": "consolidate", "every": 3600, "params": {"max_load_after": 0.8, "cooldown": 3600}}]},
]
STEP = 300
TIMES = 288


def history(snapshot, seed):
    rng = random.Random(seed)
    instances = {}
    for inst in snapshot["instances"]:
        base = (inst.get("load") or {}).get("cpu")
        base = 0.2 if base is None else base
        phase = rng.uniform(0, 2 * math.pi)
        series = []
        for k in range(TIMES):
            wave = 1.0 + 0.5 * math.sin(2 * math.pi * k / TIMES + phase)
            series.append(round(min(1.0, max(0.0, base * wave + rng.gauss(0, 0.03))), 4))
        instances[inst["id"]] = {"cpu": series}
    return {"start": 1795300000.0, "step": STEP, "times": TIMES, "hosts": {}, "instances": instances}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--hosts", default="100,500")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results"))
    args = parser.parse_args(argv)
    rows = []
    for size in [int(s) for s in args.hosts.split(",") if s.strip()]:
        raw = generate.generate(hosts=size, seed=args.seed)
        snapshot = from_dict(raw)
        hist = history(raw, args.seed)
        started = time.perf_counter()
        result = backtest.run(snapshot, hist, CONFIGURATIONS)
        wall = time.perf_counter() - started
        for run in result["configurations"]:
            rows.append({"hosts": size, "instances": result["instances"], "ticks": result["ticks"],
                         "configuration": run["name"], "migrations": run["migrations"],
                         "gib_moved": run["gib_moved"], "max_migrations_per_vm": run["max_migrations_per_vm"],
                         "ping_pong": run["ping_pong"], "active_hosts_mean": run["active_hosts_mean"],
                         "overloaded_host_hours": run["overloaded_host_hours"],
                         "refused_moves": run["refused_moves"], "plan_seconds": run["plan_seconds"],
                         "wall_seconds": run["wall_seconds"], "backtest_seconds": wall})
    head = ("hosts", "instances", "configuration", "migrations", "GiB", "max/VM", "ping-pong", "hosts on",
            "overloaded h", "refused", "plan s", "replay s")
    lines = ["  ".join("%-16s" % h if h == "configuration" else "%10s" % h for h in head)]
    for r in rows:
        lines.append("  ".join([
            "%10d" % r["hosts"], "%10d" % r["instances"], "%-16s" % r["configuration"], "%10d" % r["migrations"],
            "%10.1f" % r["gib_moved"], "%10d" % r["max_migrations_per_vm"], "%10d" % r["ping_pong"],
            "%10.1f" % r["active_hosts_mean"], "%10.2f" % r["overloaded_host_hours"], "%10d" % r["refused_moves"],
            "%10.1f" % r["plan_seconds"], "%10.1f" % r["wall_seconds"]]))
    print("\n".join(lines))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "backtest-bench.json"), "w") as handle:
        json.dump({"python": platform.python_version(), "machine": platform.machine(), "step": STEP,
                   "ticks": TIMES, "seed": args.seed, "rows": rows}, handle, indent=1, sort_keys=True)
        handle.write("\n")
    refused = sum(r["refused_moves"] for r in rows)
    if refused:
        print("CHECK: %d moves refused by the rules (a plan broke RAM)" % refused, file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
