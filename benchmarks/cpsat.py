# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exact optimum of consolidate on small clouds with OR-Tools CP-SAT, against the greedy plan.

Benchmark only: OR-Tools lives in a separate virtualenv (benchmarks/setup.sh) and is never a
runtime dependency of the collection.

The model is the final state of the problem consolidate solves: a host's movable instances
all stay or all leave (hosts are emptied whole), and leave to used hosts of their pool (same
AZ and aggregates); a host that receives ends at or under max_load_after of its capacity for
vCPU, RAM and disk allocations and for measured CPU and memory load; anti-affinity limits hold
on every host; affinity members and instances that cannot move stay; soft-anti-affinity
collisions and the hosts a soft-affinity group spans never grow (the placement rules never let
a move make them worse). The order of moves is not modelled (the greedy also refuses to empty
a host that received, the model does not), so every greedy plan is a solution of the model,
its optimum is at most what any plan of consolidate could reach, and greedy / optimum - 1 is
an upper bound on how far the greedy is from the best. With --repack the model also lets
instances of kept hosts move (a different, much costlier kind of plan), for information.

    bash benchmarks/setup.sh
    PYTHONPATH=<dir holding ansible_collections> <bench-venv>/bin/python benchmarks/cpsat.py
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from generate import generate  # noqa: E402

try:
    from ortools.sat.python import cp_model
except ImportError:  # pragma: no cover - explained to the operator
    sys.exit("OR-Tools is missing: run `bash benchmarks/setup.sh` and use the bench-venv python")

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import effective_params  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import consolidate  # noqa: E402

# Measured loads are floats (cores, MB); scaled to integers, rounding so the model stays a
# relaxation: what an instance adds rounds down, what a host may hold rounds up.
SCALE = 1000


def optimum(data, params=None, seconds=60.0, workers=2, hint=None, repack=False, per_pool=False):
    """Fewest used hosts any placement could reach (see the module docstring) and solver facts.

    ``hint`` maps instance ids to hosts (a plan's destinations); the solver starts from it.
    Without ``repack`` a host's instances all stay or all leave (hosts are emptied whole, as
    consolidate does); with it any movable instance may move, kept hosts included. Pools never
    exchange instances, so ``per_pool`` solves one model per pool (``seconds`` each) and adds
    the figures up: the way to reach clouds of hundreds of hosts.
    """
    params = effective_params(consolidate.PARAMS, params or {})
    placement = Placement(from_dict(data), params)
    ceiling = params["max_load_after"]
    used = [h for h in placement.host_list if h.active and h.instances]
    members_of = {}
    for inst in placement.instances.values():
        for group in inst.groups:
            members_of.setdefault(group.id, []).append(inst)
    parts = [used]
    if per_pool:
        pools = {}
        for host in used:
            pools.setdefault(host.pool, []).append(host)
        parts = [pools[key] for key in sorted(pools, key=str)]
    results = [_solve(placement, part, ceiling, members_of, seconds, workers, hint or {}, repack) for part in parts]
    statuses = set(r["status"] for r in results)
    if statuses <= set(["OPTIMAL"]):
        status = "OPTIMAL"
    elif statuses <= set(["OPTIMAL", "FEASIBLE"]):
        status = "FEASIBLE"
    else:
        status = "UNKNOWN"
    solved = all(r["hosts_used"] is not None for r in results)
    return {
        "freed": sorted(name for r in results for name in r["freed"]), "moves": sum(r["moves"] for r in results),
        "moves_between_kept_hosts": sum(r["moves_between_kept_hosts"] for r in results), "status": status,
        "hosts_used": sum(r["hosts_used"] for r in results) if solved else None,
        "best_bound": sum(r["best_bound"] for r in results), "seconds": round(sum(r["seconds"] for r in results), 2),
        "instances_free": sum(r["instances_free"] for r in results), "hosts_used_before": len(used),
        "models": len(results),
    }


def _solve(placement, used, ceiling, members_of, seconds, workers, hint, repack):
    """One CP-SAT model over the hosts in used (whole pools)."""
    by_pool = {}
    for host in used:
        by_pool.setdefault(host.pool, []).append(host)
    model = cp_model.CpModel()
    on = {}           # host name -> [used BoolVar]
    receive = {}
    for host in used:
        on[host.name] = model.NewBoolVar("used_%s" % host.name)
        receive[host.name] = model.NewBoolVar("receive_%s" % host.name)
    x = {}            # (instance id, host name) -> BoolVar
    movable = []
    for host in used:
        for key in sorted(host.instances):
            inst = host.instances[key]
            if inst.skip or any(g.policy == "affinity" for g in inst.groups):
                model.Add(on[host.name] == 1)
                continue
            movable.append(inst)
            choices = []
            for dest in by_pool[host.pool]:
                var = model.NewBoolVar("x_%s_%s" % (inst.id, dest.name))
                x[(inst.id, dest.name)] = var
                choices.append(var)
                model.AddImplication(var, on[dest.name])
                if dest is not host:
                    model.AddImplication(var, receive[dest.name])
            model.AddExactlyOne(choices)
            if not repack:
                model.Add(x[(inst.id, host.name)] == on[host.name])
    movable_ids = set(i.id for i in movable)
    for host in used:
        arriving = [(inst, x[(inst.id, host.name)]) for inst in movable if (inst.id, host.name) in x]
        own = [i for i in host.instances.values() if i.id in movable_ids]
        for index in (0, 1, 2):
            base = host.used[index] - sum(i.flavor[index] for i in own)
            terms = [int(math.floor(inst.flavor[index] * SCALE)) * var for inst, var in arriving]
            limit = int(math.ceil((ceiling * host.cap[index] - base) * SCALE))
            model.Add(sum(terms) <= limit).OnlyEnforceIf(receive[host.name])
        for metric in (0, 1):
            if not host.measured[metric]:
                continue
            base = host.abs[metric] - sum(i.contribution(host, metric) for i in own)
            terms = [int(math.floor(inst.contribution(host, metric) * SCALE)) * var for inst, var in arriving]
            limit = int(math.ceil((ceiling * host.denom[metric] - base) * SCALE))
            model.Add(sum(terms) <= limit).OnlyEnforceIf(receive[host.name])
    names = set(h.name for h in used)
    for gid in sorted(members_of):
        group = placement.groups[gid]
        members = members_of[gid]
        if group.policy == "affinity" or not any(i.host.name in names for i in members):
            continue  # affinity members are fixed above; other pools' groups are not here
        spans, collisions = [], []
        for host in used:
            fixed = sum(1 for i in members if i.id not in movable_ids and i.host is host)
            terms = [x[(i.id, host.name)] for i in members if (i.id, host.name) in x]
            if not terms:
                continue
            if group.policy == "anti-affinity":
                model.Add(sum(terms) + fixed <= max(group.limit, group.counts.get(host.name, 0)))
            elif group.policy == "soft-anti-affinity":
                # Collisions (members beyond the first on a host) never grow.
                extra = model.NewIntVar(0, len(members), "collide_%s_%s" % (gid, host.name))
                model.Add(extra >= sum(terms) + fixed - 1)
                collisions.append(extra)
            else:
                # soft-affinity: the number of hosts the group spans never grows.
                span = model.NewBoolVar("span_%s_%s" % (gid, host.name))
                for var in terms:
                    model.AddImplication(var, span)
                if fixed:
                    model.Add(span == 1)
                spans.append(span)
        if collisions:
            model.Add(sum(collisions) <= sum(max(0, n - 1) for n in group.counts.values()))
        if spans:
            model.Add(sum(spans) <= sum(1 for n in group.counts.values() if n > 0))
    for inst in movable:
        target = hint.get(inst.id, inst.host.name)
        for dest in by_pool[inst.host.pool]:
            model.AddHint(x[(inst.id, dest.name)], dest.name == target)
    model.Minimize(sum(on.values()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    start = time.perf_counter()
    status = solver.Solve(model)
    freed, moved, repacked = [], 0, 0
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        freed = sorted(h.name for h in used if not solver.Value(on[h.name]))
        for inst in movable:
            for dest in by_pool[inst.host.pool]:
                if dest is not inst.host and solver.Value(x[(inst.id, dest.name)]):
                    moved += 1
                    repacked += inst.host.name not in freed
    return {
        "freed": freed, "moves": moved, "moves_between_kept_hosts": repacked,
        "status": solver.StatusName(status), "hosts_used": int(round(solver.ObjectiveValue()))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None,
        "best_bound": int(math.ceil(solver.BestObjectiveBound() - 1e-6)), "seconds": round(time.perf_counter() - start, 2),
        "instances_free": len(movable),
    }


def case(hosts, seed, seconds, repack=False, per_pool=False):
    data = generate(hosts, seed)
    start = time.perf_counter()
    plan = consolidate.plan(from_dict(data), {"max_moves": 0}).to_dict()
    greedy_seconds = time.perf_counter() - start
    hint = dict((m["instance"], m["destination"]) for m in plan["moves"])
    exact = optimum(data, {"max_moves": 0}, seconds, hint=hint, per_pool=per_pool)
    bound = plan["bound"]
    # The optimum when proven, else the best lower bound known (CP-SAT's or the plan's own).
    if exact["status"] == "OPTIMAL":
        proven = exact["hosts_used"]
    else:
        proven = max(exact["best_bound"], bound["hosts_needed_at_least"])
    extra = {}
    if repack:
        loose = optimum(data, {"max_moves": 0}, seconds, hint=hint, repack=True, per_pool=per_pool)
        extra = {"repack": loose["hosts_used"], "repack_status": loose["status"], "repack_moves": loose["moves"],
                 "repack_moves_between_kept_hosts": loose["moves_between_kept_hosts"]}
    row = {
        "hosts": hosts, "seed": seed, "instances": len(data["instances"]),
        "used_before": bound["hosts_used_before"], "greedy": bound["hosts_used_after"],
        "plan_bound": bound["hosts_needed_at_least"], "cpsat": exact["hosts_used"], "cpsat_status": exact["status"],
        "cpsat_best_bound": exact["best_bound"], "cpsat_seconds": exact["seconds"],
        "greedy_seconds": round(greedy_seconds, 3), "greedy_moves": plan["summary"]["moves"],
        "cpsat_moves": exact["moves"], "cpsat_moves_between_kept_hosts": exact["moves_between_kept_hosts"],
        "greedy_freed": plan["freed_hosts"], "cpsat_freed": exact["freed"],
        "over_optimum": round(bound["hosts_used_after"] / float(proven) - 1.0, 4) if proven else None,
        "over_found": round(bound["hosts_used_after"] / float(exact["hosts_used"]) - 1.0, 4)
        if exact["hosts_used"] else None,
    }
    row.update(extra)
    # The plan's bound must never exceed what any solution reaches: the optimum when proven,
    # any solution CP-SAT found, and the greedy's own result.
    reached = [bound["hosts_used_after"]] + ([exact["hosts_used"]] if exact["hosts_used"] is not None else [])
    row["bound_valid"] = bound["hosts_needed_at_least"] <= min(reached)
    row["bound_checked_against"] = "optimum" if exact["status"] == "OPTIMAL" else (
        "solution found" if exact["hosts_used"] is not None else "greedy only")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description="consolidate greedy vs CP-SAT optimum on small clouds")
    parser.add_argument("--sizes", default="10,20,30")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--seconds", type=float, default=60.0, help="CP-SAT time limit per case")
    parser.add_argument("--per-pool", action="store_true",
                        help="one model per pool, --seconds each (for clouds of hundreds of hosts)")
    parser.add_argument("--repack", action="store_true",
                        help="also solve the looser model where instances of kept hosts may move too")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "cpsat.json"))
    args = parser.parse_args(argv)
    rows = []
    for hosts in [int(s) for s in args.sizes.split(",") if s.strip()]:
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            row = case(hosts, seed, args.seconds, args.repack, args.per_pool)
            rows.append(row)
            sys.stderr.write("%d hosts seed %d: greedy %d, cp-sat %s (%s)\n" % (
                hosts, seed, row["greedy"], row["cpsat"], row["cpsat_status"]))
    head = ("hosts", "seed", "inst", "used before", "greedy", "cp-sat", "status", "cp-sat bound", "plan bound",
            "bound ok", "greedy/opt-1", "greedy/found-1", "cp-sat s", "repack (moves)")
    lines = [head]
    for r in rows:
        lines.append((str(r["hosts"]), str(r["seed"]), str(r["instances"]), str(r["used_before"]),
                      str(r["greedy"]), str(r["cpsat"]), r["cpsat_status"], str(r["cpsat_best_bound"]),
                      str(r["plan_bound"]), "yes" if r["bound_valid"] else "NO",
                      "-" if r["over_optimum"] is None else "%s%.1f %%" % (
                          "" if r["cpsat_status"] == "OPTIMAL" else "<= ", 100 * r["over_optimum"]),
                      "-" if r["over_found"] is None else "%.1f %%" % (100 * r["over_found"]),
                      "%.1f" % r["cpsat_seconds"],
                      "%s (%s)" % (r["repack"], r["repack_moves"]) if "repack" in r else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(line)))
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    text = "\n".join(out)
    print(text)
    worst = max([r["over_optimum"] for r in rows if r["over_optimum"] is not None] or [0.0])
    print("worst greedy / optimum - 1: %.1f %% (target <= 5 %%); optimum = CP-SAT's when OPTIMAL, else the best"
          " proven lower bound (CP-SAT's or the plan's), so the figure is an upper bound" % (100 * worst))
    bad = [r for r in rows if not r["bound_valid"]]
    print("plan bound <= optimum (or any solution found) on every case: %s" % (
        "yes" if not bad else "NO, on %s" % ", ".join("%d hosts seed %d" % (r["hosts"], r["seed"]) for r in bad)))
    directory = os.path.dirname(args.output)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with open(args.output, "w") as handle:
        json.dump({"rows": rows, "table": text}, handle, indent=1, sort_keys=True)
        handle.write("\n")
    # An invalid bound is a bug in the planner, not a figure: fail loudly.
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
