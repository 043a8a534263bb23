# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lower bound on the GiB any set of live migrations copies to bring the CPU stddev to a target.

A yardstick for the Watcher comparison's "a fifth of Watcher's GiB" target, like frontier.py,
but a bound rather than a heuristic: no plan that leaves pinned, locked and recently moved
instances where they are (as ours does) reaches the target copying less; with ``--movable any``
no plan at all does, Watcher's included. It is the optimum of a linear programme (OR-Tools GLOP; bench venv only, never a runtime
dependency of the collection) that relaxes the real problem:

- The figure is the comparison's (loads.py): population stddev of CPU load over M, the enabled,
  up hosts with a measured CPU load. Host h carries L_h (its load before any move).
- Each movable instance i (frontier.py's rules: active, migratable, not pinned, locked or
  recently moved; ``--movable any`` lets every running instance move) may leave its host by a
  fraction f_i in [0, 1], at a cost of f_i * its flavor RAM in GiB. A plan that ends with i
  elsewhere copied i's RAM at least once, so f_i = 1 costs no more than the plan did.
- Load arrives for free: each host of M takes an inflow in_h >= 0 (in vCPUs busy), and all the
  inflows together are at most what leaves all hosts, in M or not (unmeasured and disabled hosts
  may send load in; load may also leave M). x_h = L_h + (in_h - out_h) / size_h, with out_h the
  use (vCPUs busy, as loads.py counts it) of what leaves h.
- stddev <= t holds if and only if some m has sum_h (x_h - m)^2 <= |M| t^2 (the mean minimises
  the sum). Each square is replaced by s_h >= 0 above tangents of y^2 at points a:
  s_h >= 2 a (x_h - m) - a^2. Tangents lie below the parabola, so every real plan (with
  s_h = (x_h - m)^2 and m its mean) is feasible here.

Capacity, AZs, aggregates and server groups are ignored and instances split into fractions: each
relaxation only enlarges the feasible set, so the LP optimum (to the solver's tolerances, about
1e-7 relative) is a valid lower bound on the GiB of every plan that keeps the movability rules,
and, with ``--movable any``, of every plan at all. The tangents start from a fixed grid; more are
added where the solution sits between them (each round is still a relaxation, only tighter).

    python benchmarks/watcher/gib_bound.py --hosts 200 --seed 1 --target 0.0987 --reference-gib 3496

Checks that fail the run (exit 1): (a) at the starting stddev the bound is about 0;
(b) with ``--check-frontier`` it is at most the GiB of frontier.py's greedy pass (slow at 1,000
hosts); (c) with ``--moves FILE`` (a harness.py output, a compare.py ``--plan`` output or a list of
moves) whose moves reach the target, it is at most their GiB.
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
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import loads  # noqa: E402
from frontier import _movable  # noqa: E402

# Tangent points for y = x_h - m: 0 and +-0.0025 * 1.2^k up to beyond +-2 (75 points), densest
# where the squares that make up a stddev of about 0.1 lie.
GRID = sorted(set([0.0] + [s * 0.0025 * 1.2 ** k for k in range(38) for s in (-1.0, 1.0)]))
ROUNDS = 40


def _running(inst):
    return inst.get("status", "ACTIVE") in loads.RUNNING


def bound(data, target, movable="rules", extra=(), state=None, rounds=ROUNDS, tolerance=1e-3, log=None):
    """{"gib", "status", "seconds", ...}: the least GiB copied to reach CPU stddev <= target."""
    from ortools.linear_solver import pywraplp

    started = time.perf_counter()
    state = state or loads.model(data)
    names = sorted(n for n, h in state["hosts"].items() if h["active"] and h["measured"][0] is not None)
    start = loads.host_loads(state)
    rule = _movable if movable == "rules" else _running
    extra = set(extra)
    solver = pywraplp.Solver.CreateSolver("GLOP")
    infinity = solver.infinity()
    cost = solver.Objective()
    leaving = {}  # host: [(use, variable)]
    sent = []  # from anywhere: a host outside M (or not in the snapshot) may send load in
    for inst in sorted(data["instances"], key=lambda i: i["id"]):
        use = state["instances"][inst["id"]]["use"][0]
        if not use or use <= 0 or not (rule(inst) or inst["id"] in extra):
            continue  # stays (or moving it changes no load)
        var = solver.NumVar(0.0, 1.0, "")
        cost.SetCoefficient(var, float(inst["flavor"]["memory_mb"]) / 1024.0)
        leaving.setdefault(inst["host"], []).append((use, var))
        sent.append((use, var))
    cost.SetMinimization()
    count = len(names)
    mean = solver.NumVar(-infinity, infinity, "m")
    # Conservation: sum in_h <= sum of all that leaves.
    flow = solver.Constraint(-infinity, 0.0)
    for use, var in sent:
        flow.SetCoefficient(var, -use)
    spread = solver.Constraint(-infinity, count * target * target)
    load, square = {}, {}
    for name in names:
        size = state["hosts"][name]["size"][0]
        square[name] = solver.NumVar(0.0, infinity, "")
        spread.SetCoefficient(square[name], 1.0)
        if size <= 0:  # loads.py counts it at 0 whatever moves
            load[name] = solver.NumVar(0.0, 0.0, "")
            continue
        x = load[name] = solver.NumVar(-infinity, infinity, "")
        inflow = solver.NumVar(0.0, infinity, "")
        flow.SetCoefficient(inflow, 1.0)
        # x_h - in_h / size_h + sum use_i f_i / size_h = L_h
        row = solver.Constraint(start[name][0], start[name][0])
        row.SetCoefficient(x, 1.0)
        row.SetCoefficient(inflow, -1.0 / size)
        for use, var in leaving.get(name, []):
            row.SetCoefficient(var, use / size)

    def tangent(name, a):
        # s_h - 2a x_h + 2a m >= -a^2
        cut = solver.Constraint(-a * a, infinity)
        cut.SetCoefficient(square[name], 1.0)
        cut.SetCoefficient(load[name], -2.0 * a)
        cut.SetCoefficient(mean, 2.0 * a)

    for name in load:
        for a in GRID:
            tangent(name, a)
    built = time.perf_counter() - started
    result = {"hosts": count, "variables": len(sent), "target": target, "movable": movable, "rounds": 0}
    status, names_ = None, {pywraplp.Solver.OPTIMAL: "OPTIMAL", pywraplp.Solver.FEASIBLE: "FEASIBLE",
                            pywraplp.Solver.INFEASIBLE: "INFEASIBLE", pywraplp.Solver.UNBOUNDED: "UNBOUNDED",
                            pywraplp.Solver.ABNORMAL: "ABNORMAL", pywraplp.Solver.NOT_SOLVED: "NOT_SOLVED"}
    result["gib"] = None
    for index in range(rounds):
        status = solver.Solve()
        result["rounds"] = index + 1
        result["status"] = names_.get(status, str(status))
        if status != pywraplp.Solver.OPTIMAL:
            result["gib"] = None
            break
        # Read everything before the model changes (the solution is gone once a cut is added).
        result["gib"] = cost.Value()
        m = mean.solution_value()
        ys = dict((n, load[n].solution_value() - m) for n in names)
        xs = [load[n].solution_value() for n in names]
        avg = math.fsum(xs) / len(xs)
        # The stddev the LP's fractional solution really has: above the target only by what the
        # tangents let through. Close enough, the bound is as tight as this relaxation gets.
        result["lp_stddev"] = math.sqrt(math.fsum((v - avg) ** 2 for v in xs) / len(xs))
        result["moved_fraction"] = math.fsum(v.solution_value() for _use, v in sent)
        if log:
            log.write("round %d: %.1f GiB, LP solution's stddev %.5f (target %.5f), %.1f s\n" % (
                index + 1, result["gib"], result["lp_stddev"], target, time.perf_counter() - started))
        if result["lp_stddev"] <= target * (1 + tolerance) or index + 1 == rounds:
            break
        # A tangent where a square sits below its parabola by more than 1e-4 of the mean budget
        # (all under that would leave the stddev within 5e-5 of the target: never none here).
        short = [n for n in names if ys[n] ** 2 - square[n].solution_value() > 1e-4 * target * target]
        if not short:
            break
        for name in short:
            tangent(name, ys[name])
    result["build_seconds"] = round(built, 2)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def read_moves(path):
    """Moves from a harness.py output, a compare.py --plan output, a plan or a list of moves."""
    with open(path) as handle:
        doc = json.load(handle)
    if isinstance(doc, dict):
        doc = (doc.get("plan") or doc).get("moves") or []
    return doc


def line(result, reference=None):
    if result.get("gib") is None:
        return "no bound: LP status %s after %.1f s (%d rounds)" % (result["status"], result["seconds"], result["rounds"])
    share = " = %.1f %% of %.0f GiB" % (100.0 * result["gib"] / reference, reference) if reference else ""
    return "GiB lower bound %.0f%s (CPU stddev <= %.4f over %d hosts, %s movable, %d instances); %.1f s, %d rounds, LP %s" % (
        result["gib"], share, result["target"], result["hosts"], result["movable"], result["variables"],
        result["seconds"], result["rounds"], result["status"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--snapshot", help="snapshot JSON file (instead of generating one)")
    parser.add_argument("--target", type=float, help="CPU stddev to reach (default: what --moves reach)")
    parser.add_argument("--reference-gib", type=float, help="GiB to compare the bound with (e.g. Watcher's; default: the GiB of --moves)")
    parser.add_argument("--movable", choices=("rules", "any"), default="rules",
                        help="rules: as frontier.py (pins, locks, cooldown stay); any: every running instance")
    parser.add_argument("--moves", help="check (c): a JSON file of moves that reach the target")
    parser.add_argument("--check-frontier", action="store_true", help="check (b): frontier.py's greedy GiB (slow)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--verbose", action="store_true", help="each LP round on stderr")
    args = parser.parse_args(argv)
    if args.snapshot:
        with open(args.snapshot) as handle:
            data = json.load(handle)
    else:
        from generate import generate
        data = generate(args.hosts, args.seed)
    state = loads.model(data)
    before = loads.cpu_stddev(data, state=state)
    moves = read_moves(args.moves) if args.moves else None
    target = args.target
    if target is None:
        if moves is None:
            parser.error("--target or --moves is needed")
        target = loads.cpu_stddev(data, moves, state)["after"]
    reference = args.reference_gib
    if reference is None and moves:
        reference = math.fsum(float(m["flavor"]["memory_mb"]) for m in moves) / 1024.0
    result = bound(data, target, args.movable, state=state, log=sys.stderr if args.verbose else None)
    result["reference_gib"] = reference
    result["stddev_before"] = before["before"]
    checks = []
    # (a) Nothing needs to move to stay where the cloud is.
    idle = bound(data, before["before"] * (1 + 1e-9), args.movable, state=state)
    checks.append(("(a) bound at the starting stddev %.4f is ~0" % before["before"],
                   idle.get("gib") is not None and idle["gib"] <= 1e-3, "%s GiB" % idle.get("gib")))
    if args.check_frontier:
        from frontier import frontier
        count, gib, reached = frontier(data, target)
        ok = reached > target or result.get("gib") is not None and result["gib"] <= gib + 1e-6
        checks.append(("(b) bound <= frontier.py's greedy", ok, "%s vs %.1f GiB (%d moves, stddev %.4f%s)" % (
            _fmt(result.get("gib")), gib, count, reached, ", target not reached: not judged" if reached > target else "")))
    if moves is not None:
        reached = loads.cpu_stddev(data, moves, state)["after"]
        gib = math.fsum(float(m["flavor"]["memory_mb"]) for m in moves) / 1024.0
        rule = _movable if args.movable == "rules" else _running
        raw = dict((i["id"], i) for i in data["instances"])
        outside = set(m["instance"] for m in moves if m["instance"] in raw and not rule(raw[m["instance"]]))
        mine = result
        if outside or reached > target:
            # Their own target, their instances movable too: still a bound for these moves.
            mine = bound(data, max(target, reached), args.movable, extra=outside, state=state)
        result["moves_check"] = {"gib": gib, "reached": reached, "outside_rules": len(outside),
                                 "bound": mine.get("gib")}
        checks.append(("(c) bound <= the GiB of the given moves", mine.get("gib") is not None and mine["gib"] <= gib + 1e-6,
                       "%s vs %.1f GiB (%d moves reach %.4f; %d of their instances outside the movable set)" % (
                           _fmt(mine.get("gib")), gib, len(moves), reached, len(outside))))
    result["checks"] = [{"check": name, "ok": ok, "figures": text} for name, ok, text in checks]
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        label = args.snapshot and os.path.basename(args.snapshot) or "%d hosts, seed %d" % (args.hosts, args.seed)
        print("%s: %s" % (label, line(result, reference)))
        for name, ok, text in checks:
            print("  check %s: %s (%s)" % (name, "ok" if ok else "FAILED", text))
    failed = result.get("gib") is None or not all(ok for _name, ok, _text in checks)
    return 1 if failed else 0


def _fmt(value):
    return "-" if value is None else "%.1f" % value


if __name__ == "__main__":
    sys.exit(main())
