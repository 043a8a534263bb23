# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many GiB a relaxed greedy pass copies to bring the CPU stddev down to a target.

A yardstick for the Watcher comparison's "a fifth of Watcher's GiB" target, not a planner. Each
step moves, anywhere in the cloud, the movable instance whose move to the idlest host of its pool
(same AZ and aggregates) cuts the CPU spread most per GiB of RAM copied. Capacity and server
groups are ignored, and so are hosts without a measured CPU load (they neither count nor
receive). Pins, non-migratable, stopped and recently moved instances stay. The load model and
the figure are the comparison's (loads.py). Slow on purpose (it rescans every instance per
step): about 6 minutes at 1,000 hosts.

    python benchmarks/watcher/frontier.py --hosts 200 --target 0.0987
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import loads  # noqa: E402
from generate import generate  # noqa: E402


def _movable(inst):
    metadata = inst.get("metadata") or {}
    return (inst.get("status", "ACTIVE") == "ACTIVE" and inst.get("migratable", True) is not False
            and str(metadata.get("leveller:pin", "")).lower() not in ("true", "yes", "1")
            and "leveller-pin" not in (inst.get("tags") or []) and not inst.get("last_moved_at")
            and not inst.get("locked"))


def frontier(data, target, log=None):
    """(moves, GiB copied, CPU stddev reached) when the pass reaches target or runs out."""
    state = loads.model(data)
    raw = dict((h["name"], h) for h in data["hosts"])
    names = sorted(n for n, h in state["hosts"].items() if h["active"] and h["measured"][0] is not None)
    known = set(names)
    start = loads.host_loads(state)
    load = dict((n, start[n][0]) for n in names)
    size = dict((n, state["hosts"][n]["size"][0]) for n in names)
    pools = {}
    for name in names:
        pools.setdefault((raw[name].get("az"), tuple(sorted(raw[name].get("aggregates") or []))), []).append(name)
    pool_of = dict((n, key) for key, members in pools.items() for n in members)
    candidates = [(i["id"], state["instances"][i["id"]]["use"][0], i["flavor"]["memory_mb"] / 1024.0)
                  for i in sorted(data["instances"], key=lambda i: i["id"]) if i["host"] in known and _movable(i)]
    where = dict((i["id"], i["host"]) for i in data["instances"])
    count = float(len(names))
    total = math.fsum(load.values())
    squares = math.fsum(v * v for v in load.values())
    moved, gib = set(), 0.0

    def stddev():
        return math.sqrt(max(0.0, squares / count - (total / count) ** 2))

    while stddev() > target:
        idlest = dict((key, min(members, key=lambda n: (load[n], n))) for key, members in pools.items())
        best = None
        old = squares - total * total / count
        for ident, use, size_gib in candidates:
            if ident in moved or size_gib <= 0:
                continue
            src = where[ident]
            dst = idlest[pool_of[src]]
            if dst == src:
                continue
            a, b = use / size[src], use / size[dst]
            new_total = total - a + b
            new_squares = squares + (load[src] - a) ** 2 + (load[dst] + b) ** 2 - load[src] ** 2 - load[dst] ** 2
            gain = old - (new_squares - new_total * new_total / count)
            if gain > 0 and (best is None or gain / size_gib > best[0]):
                best = (gain / size_gib, ident, src, dst, a, b, size_gib)
        if best is None:
            break
        _rate, ident, src, dst, a, b, size_gib = best
        squares += (load[src] - a) ** 2 + (load[dst] + b) ** 2 - load[src] ** 2 - load[dst] ** 2
        total += b - a
        load[src] -= a
        load[dst] += b
        where[ident] = dst
        moved.add(ident)
        gib += size_gib
        if log and len(moved) % 100 == 0:
            log.write("%d moves, %.0f GiB, stddev %.4f\n" % (len(moved), gib, stddev()))
    return len(moved), gib, stddev()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, required=True, help="CPU stddev to reach (e.g. Watcher's)")
    args = parser.parse_args(argv)
    moves, gib, reached = frontier(generate(args.hosts, args.seed), args.target, sys.stderr)
    print("%d hosts, seed %d: %d moves, %.0f GiB, CPU stddev %.4f (target %.4f)" % (
        args.hosts, args.seed, moves, gib, reached, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
