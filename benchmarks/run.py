# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner benchmark: synthetic clouds of 100, 1,000 and 10,000 hosts, both strategies.

Prints a table and writes benchmarks/results/bench.json. Figures, not pass/fail. Needs the
collection importable (PYTHONPATH pointing at the directory that holds ansible_collections/),
which ``make bench`` arranges.

    python benchmarks/run.py                 # 100, 1000, 10000 hosts
    python benchmarks/run.py --quick         # 100 and 1000 hosts
    python benchmarks/run.py --sizes 200,500 --seed 3
    python benchmarks/run.py --no-watcher    # without the Watcher 17 side-by-side

The Watcher comparison (benchmarks/watcher/) runs at 200 and 1,000 hosts when the Watcher venv
exists ($LEVELLER_HOME/watcher-venv, made by benchmarks/watcher/setup.sh; run.sh makes it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import gc
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from check import check  # noqa: E402  (benchmark-local, independent of the planner)
from generate import generate  # noqa: E402
import consolidate_drain  # noqa: E402  (consolidate and drain rows, their own table)
sys.path.insert(0, os.path.join(HERE, "watcher"))
import compare  # noqa: E402  (the Watcher 17 side-by-side)

try:
    from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
    from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan
except ImportError as exc:  # pragma: no cover - a setup problem, explained to the operator
    sys.exit("cannot import the collection (%s): set PYTHONPATH to the directory that contains "
             "ansible_collections/cloudops/leveller, or run `make bench`" % exc)

# Effective parameters for the benchmark: no move budget, so the figures show what each
# strategy does when left to finish; every other parameter keeps its default.
PARAMS = {
    "balance": {"max_moves": 0},
    "overload": {"max_moves": 0},
}


def run_case(hosts, seed, strategy, data=None, snapshot=None):
    data = data or generate(hosts, seed)
    if snapshot is None:
        snapshot = from_dict(data)
    gc.collect()  # not the garbage of the cases before this one
    wall, cpu = time.perf_counter(), time.process_time()
    plan = make_plan(snapshot, strategy, PARAMS[strategy]).to_dict()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    plan = json.loads(json.dumps(plan))
    report = check(data, plan)
    before, after = plan["before"]["spread"], plan["after"]["spread"]
    return {
        "hosts": hosts, "instances": len(data["instances"]), "seed": seed, "strategy": strategy,
        "params": PARAMS[strategy], "plan_seconds": round(wall, 3), "plan_cpu_seconds": round(cpu, 3),
        "moves": plan["summary"]["moves"], "gib_moved": plan["summary"]["gib_moved"],
        "waves": plan["waves"],
        "before": before, "after": after, "bound": plan["bound"],
        "violations": report["violations"], "violations_by_kind": report["by_kind"],
        "violation_examples": report["examples"][:5], "reason": plan["summary"]["reason"],
    }


def _fmt(value, digits=3):
    return "-" if value is None else ("%.*f" % (digits, value))


def table(rows):
    head = ("hosts", "inst", "strategy", "plan s", "cpu s", "moves", "GiB", "ratio before>after",
            "stddev before>after", "cpu sd before>after", "viol")
    lines = [head]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append((
            str(r["hosts"]), str(r["instances"]), r["strategy"], "%.2f" % r["plan_seconds"],
            "%.2f" % r["plan_cpu_seconds"], str(r["moves"]), "%.0f" % r["gib_moved"],
            "%s > %s" % (_fmt(b["ratio"], 2), _fmt(a["ratio"], 2)),
            "%s > %s" % (_fmt(b["stddev"]), _fmt(a["stddev"])),
            "%s > %s" % (_fmt(b["cpu_stddev"]), _fmt(a["cpu_stddev"])),
            str(r["violations"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.rjust(widths[i]) if i not in (2,) else cell.ljust(widths[i])
                             for i, cell in enumerate(line)))
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="cloudops.leveller planner benchmark")
    parser.add_argument("--sizes", default=None, help="comma-separated host counts (default 100,1000,10000)")
    parser.add_argument("--quick", action="store_true", help="only 100 and 1000 hosts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategies", default="balance,overload")
    parser.add_argument("--no-consolidate-drain", action="store_true",
                        help="skip the consolidate and drain rows (benchmarks/consolidate_drain.py)")
    parser.add_argument("--no-watcher", action="store_true", help="skip the Watcher 17 side-by-side")
    parser.add_argument("--watcher-sizes", default="200,1000")
    parser.add_argument("--watcher-strategies", default=",".join(compare.STRATEGIES),
                        help="workload_stabilization, workload_balance, basic_consolidation")
    parser.add_argument("--watcher-timeout", type=int, default=1800, help="seconds per Watcher strategy run")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "bench.json"))
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    else:
        sizes = [100, 1000] if args.quick else [100, 1000, 10000]
    rows = []
    extra = []
    for hosts in sizes:
        data = generate(hosts, args.seed)
        start = time.perf_counter()
        snapshot = from_dict(data)
        load_seconds = time.perf_counter() - start
        for strategy in args.strategies.split(","):
            row = run_case(hosts, args.seed, strategy, data, snapshot)
            row["snapshot_load_seconds"] = round(load_seconds, 3)
            rows.append(row)
            sys.stderr.write("%d hosts %s: %.2f s, %d moves, %d violations\n" % (
                hosts, strategy, row["plan_seconds"], row["moves"], row["violations"]))
        if not args.no_consolidate_drain:
            extra.extend(consolidate_drain.run([hosts], args.seed, {hosts: (data, snapshot)}))
    text = table(rows)
    print(text)
    if extra:
        print()
        print(consolidate_drain.table(extra))
        print(consolidate_drain.targets(extra))
    print("plan s = wall clock, cpu s = process CPU time (the machine may be shared);"
          " violations counted by benchmarks/check.py")
    watcher = {"skipped": None, "rows": [], "params_ours": dict(compare.OURS_ROWS)}
    python = compare.venv_python()
    if args.no_watcher:
        watcher["skipped"] = "--no-watcher"
    elif python is None:
        watcher["skipped"] = ("no Watcher venv: run `bash benchmarks/watcher/setup.sh` (or `make bench`, whose"
                              " run.sh makes it) to install python-watcher 17 into $LEVELLER_HOME/watcher-venv")
    if watcher["skipped"]:
        print()
        print("Watcher 17 comparison skipped: %s" % watcher["skipped"])
    else:
        sizes_w = [int(v) for v in args.watcher_sizes.split(",") if v.strip()]
        watcher["rows"] = compare.run(sizes_w, args.seed, generate, args.watcher_strategies.split(","),
                                      args.watcher_timeout, python)
        watcher["table"] = compare.table(watcher["rows"])
        watcher["targets_text"], watcher["targets"] = compare.targets(watcher["rows"])
        print()
        print("Side by side with OpenStack Watcher %s (seed %d; Watcher strategies with their defaults)" % (
            next((r["watcher_version"] for r in watcher["rows"] if r.get("watcher_version")), "?"), args.seed))
        for name, params in compare.OURS_ROWS:
            print("  leveller %s = balance with %s" % (name, json.dumps(params, sort_keys=True)))
        print(watcher["table"])
        print(watcher["targets_text"])
        print("CPU stddev over the enabled, up hosts with a measured CPU load, from one load model"
              " (benchmarks/watcher/loads.py) for both tools; violations by benchmarks/check.py (Watcher's"
              " moves one per wave, no cooldown); plan s = wall, cpu s = process CPU; load average %s"
              % (compare._loadavg(),))
    try:
        load = os.getloadavg()
    except (AttributeError, OSError):
        load = None
    result = {"rows": rows, "table": text, "python": platform.python_version(),
              "machine": platform.machine(), "cpus": os.cpu_count(), "loadavg": load,
              "sizes": sizes, "seed": args.seed, "consolidate_drain": extra, "watcher": watcher}
    directory = os.path.dirname(args.output)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print("written: %s" % os.path.relpath(args.output))
    ours = [r for r in watcher["rows"] if r["tool"] == "leveller"]
    return 0 if all(r["violations"] == 0 for r in rows + extra + ours) else 1


if __name__ == "__main__":
    sys.exit(main())
