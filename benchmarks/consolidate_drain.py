# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the consolidate and drain strategies on the seeded clouds of generate.py.

consolidate: hosts used before and after, the plan's lower bound and gap, moves, GiB copied,
plan seconds. drain: 10 hosts of each cloud, all-or-nothing on hosts whose instances can all
move, and partial on hosts picked regardless; spread of the remaining hosts before and after.
Every plan is replayed by the independent checker (check.py). Figures, not pass/fail; the
targets of issue 6 are printed next to them.

    python benchmarks/consolidate_drain.py                  # 100, 1000, 10000 hosts
    python benchmarks/consolidate_drain.py --sizes 100,1000 --seed 2
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import copy
import gc
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from check import check  # noqa: E402  (benchmark-local, independent of the planner)
from generate import generate  # noqa: E402

try:
    from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
    from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan
except ImportError as exc:  # pragma: no cover - a setup problem, explained to the operator
    sys.exit("cannot import the collection (%s): set PYTHONPATH to the directory that contains "
             "ansible_collections/cloudops/leveller, or run `make bench`" % exc)

CONSOLIDATE_PARAMS = {"max_moves": 0}
DRAIN_COUNT = 10


def _timed(snapshot, strategy, params):
    gc.collect()  # not the garbage of the cases before this one
    wall, cpu = time.perf_counter(), time.process_time()
    plan = make_plan(snapshot, strategy, params).to_dict()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return json.loads(json.dumps(plan)), round(wall, 3), round(cpu, 3)


def _load():
    """The 1-minute load average when the plan ended (wall seconds mean little on a busy host)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return None


def consolidate_case(hosts, seed, data, snapshot):
    plan, wall, cpu = _timed(snapshot, "consolidate", CONSOLIDATE_PARAMS)
    report = check(data, plan)
    bound = plan["bound"]
    return {
        "case": "consolidate", "hosts": hosts, "instances": len(data["instances"]), "seed": seed,
        "params": CONSOLIDATE_PARAMS, "plan_seconds": wall, "plan_cpu_seconds": cpu, "load_average": _load(),
        "cannot_be_emptied": sum(p["cannot_be_emptied"] for p in bound["by_pool"]),
        "cannot_receive": sum(p.get("cannot_receive", 0) for p in bound["by_pool"]),
        "hosts_used_before": bound["hosts_used_before"], "hosts_used_after": bound["hosts_used_after"],
        "hosts_needed_at_least": bound["hosts_needed_at_least"], "gap": bound["gap"],
        "freed": len(plan["freed_hosts"]), "moves": plan["summary"]["moves"],
        "gib_moved": plan["summary"]["gib_moved"], "waves": plan["waves"],
        "violations": report["violations"], "violations_by_kind": report["by_kind"],
        "violation_examples": report["examples"][:5], "reason": plan["summary"]["reason"],
    }


def _movable_everything(instances):
    """True when every instance of a host can be live-migrated (stopped ones may stay)."""
    for inst in instances:
        pinned = str((inst.get("metadata") or {}).get("leveller:pin", "")).lower() in ("true", "yes", "1") \
            or "leveller-pin" in (inst.get("tags") or [])
        if pinned or inst.get("migratable") is False or inst.get("task_state") or inst.get("locked"):
            return False
        if inst.get("status", "ACTIVE") not in ("ACTIVE", "PAUSED", "SHUTOFF"):
            return False
        if any(g["policy"] == "affinity" for g in inst.get("server_groups") or []):
            return False
    return True


def pick_hosts(data, seed, count, clean):
    """count enabled, up hosts holding instances, seeded; with clean, only hosts that can empty."""
    members = {}
    for inst in data["instances"]:
        members.setdefault(inst["host"], []).append(inst)
    names = sorted(h["name"] for h in data["hosts"]
                   if h.get("enabled", True) and h.get("up", True) and members.get(h["name"])
                   and (not clean or _movable_everything(members[h["name"]])))
    rng = random.Random(seed * 7919 + len(data["hosts"]))
    return sorted(rng.sample(names, min(count, len(names))))


def drain_case(hosts, seed, data, snapshot, clean=True):
    names = pick_hosts(data, seed, DRAIN_COUNT, clean)
    params = {"hosts": names, "partial": not clean}
    plan, wall, cpu = _timed(snapshot, "drain", params)
    report = check(data, plan)
    before, after = plan["before"]["spread"], plan["after"]["spread"]
    blocking = [s for s in plan["skipped"] if s.get("blocking")]
    return {
        "case": "drain" if clean else "drain partial", "hosts": hosts, "instances": len(data["instances"]),
        "seed": seed, "params": params, "plan_seconds": wall, "plan_cpu_seconds": cpu, "load_average": _load(),
        "drained": len(plan["drained_hosts"]), "asked": len(names), "blocking": len(blocking),
        "moves": plan["summary"]["moves"], "gib_moved": plan["summary"]["gib_moved"], "waves": plan["waves"],
        "stddev_before": before["stddev"], "stddev_after": after["stddev"],
        "max_before": before["max"], "max_after": after["max"],
        "makespan_s_at_least": plan["bound"]["makespan_s_at_least"],
        "makespan_s_estimate": plan["bound"]["makespan_s_estimate"],
        "violations": report["violations"], "violations_by_kind": report["by_kind"],
        "violation_examples": report["examples"][:5], "reason": plan["summary"]["reason"],
    }


def run(sizes, seed, clouds=None):
    """All rows for the given sizes; clouds maps a size to (data, snapshot) already built."""
    rows = []
    for hosts in sizes:
        if clouds and hosts in clouds:
            data, snapshot = clouds[hosts]
        else:
            data = generate(hosts, seed)
            snapshot = from_dict(copy.deepcopy(data))
        for row in (consolidate_case(hosts, seed, data, snapshot),
                    drain_case(hosts, seed, data, snapshot, clean=True),
                    drain_case(hosts, seed, data, snapshot, clean=False)):
            rows.append(row)
            sys.stderr.write("%d hosts %s: %.2f s, %d moves, %d violations\n" % (
                hosts, row["case"], row["plan_seconds"], row["moves"], row["violations"]))
    return rows


def _fmt(value, digits=3):
    return "-" if value is None else "%.*f" % (digits, value)


def render(head, lines):
    """Rows of cells as a right-aligned text table, a rule under the head."""
    lines = [head] + lines
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(line)))
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def table(rows):
    cons = [r for r in rows if r["case"] == "consolidate"]
    drains = [r for r in rows if r["case"].startswith("drain")]
    parts = []
    if cons:
        parts.append(render(
            ("hosts", "inst", "plan s", "cpu s", "load", "used before", "used after", "bound", "gap", "fixed",
             "no room", "moves", "GiB", "viol"),
            [(str(r["hosts"]), str(r["instances"]), "%.2f" % r["plan_seconds"], "%.2f" % r["plan_cpu_seconds"],
              _fmt(r["load_average"], 1), str(r["hosts_used_before"]), str(r["hosts_used_after"]),
              str(r["hosts_needed_at_least"]), str(r["gap"]), str(r["cannot_be_emptied"]), str(r["cannot_receive"]),
              str(r["moves"]), "%.0f" % r["gib_moved"], str(r["violations"])) for r in cons]))
    if drains:
        parts.append(render(
            ("hosts", "case", "plan s", "cpu s", "load", "drained", "blocking", "moves", "GiB", "stddev before>after",
             "max before>after", "makespan >= s", "estimate s", "viol"),
            [(str(r["hosts"]), r["case"], "%.2f" % r["plan_seconds"], "%.2f" % r["plan_cpu_seconds"],
              _fmt(r["load_average"], 1), "%d/%d" % (r["drained"], r["asked"]),
              str(r["blocking"]), str(r["moves"]), "%.0f" % r["gib_moved"],
              "%s > %s" % (_fmt(r["stddev_before"]), _fmt(r["stddev_after"])),
              "%s > %s" % (_fmt(r["max_before"]), _fmt(r["max_after"])),
              _fmt(r["makespan_s_at_least"], 0), _fmt(r["makespan_s_estimate"], 0), str(r["violations"]))
             for r in drains]))
    return "\n\n".join(parts)


def targets(rows):
    """Lines saying how the figures compare with the targets of issue 6."""
    lines = []
    for r in rows:
        if r["case"] == "consolidate" and r["hosts"] == 1000:
            lines.append("consolidate 1,000 hosts: used %d vs bound %d (target <= bound + 1: %s), plan %.2f s"
                         " wall, %.2f s CPU at load %s (target <= 2 s: %s)" % (
                             r["hosts_used_after"], r["hosts_needed_at_least"],
                             "met" if r["hosts_used_after"] <= r["hosts_needed_at_least"] + 1 else "NOT met",
                             r["plan_seconds"], r["plan_cpu_seconds"], _fmt(r["load_average"], 1),
                             "met" if min(r["plan_seconds"], r["plan_cpu_seconds"]) <= 2 else "NOT met"))
        if r["case"] == "drain" and r["hosts"] == 1000:
            lines.append("drain 10 of 1,000 hosts: plan %.2f s wall, %.2f s CPU at load %s (target <= 1 s: %s),"
                         " stddev %.3f -> %.3f (target no worse: %s)" % (
                             r["plan_seconds"], r["plan_cpu_seconds"], _fmt(r["load_average"], 1),
                             "met" if min(r["plan_seconds"], r["plan_cpu_seconds"]) <= 1 else "NOT met",
                             r["stddev_before"], r["stddev_after"],
                             "met" if r["stddev_after"] <= r["stddev_before"] + 1e-9 else "NOT met"))
    bad = sum(r["violations"] for r in rows)
    lines.append("violations (independent checker): %d (target 0)" % bad)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="consolidate and drain benchmark")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default=os.path.join(HERE, "results", "consolidate_drain.json"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = run(sizes, args.seed)
    text = table(rows)
    print(text)
    print(targets(rows))
    directory = os.path.dirname(args.output)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with open(args.output, "w") as handle:
        json.dump({"rows": rows, "table": text, "sizes": sizes, "seed": args.seed}, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print("written: %s" % os.path.relpath(args.output))
    return 0 if all(r["violations"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
