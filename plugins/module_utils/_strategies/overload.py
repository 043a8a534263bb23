# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``overload``: bring every host below ``threshold`` and leave the rest alone.

A host's pressure is its highest load among the weighted metrics (cpu when weight_cpu > 0,
memory when weight_memory > 0). Hosts above ``threshold`` are handled busiest first: their
busiest instances (largest share of the host's pressure) go, one by one, to the host of the
same pool with the most headroom (lowest pressure) that keeps every rule and stays at or below
the threshold itself, until the host is below the threshold or nothing more can go.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import (
    COMMON_PARAMS, Move, Plan, effective_params, finish, host_score,
    skipped_entries, snapshot_figures, _check_number,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import digest
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies._common import HostHeap

NAME = "overload"
PARAMS = dict(COMMON_PARAMS)
PARAMS.update({
    "threshold": (0.85, lambda n, v: _check_number(n, v, 0, exclusive=True)),
})
CANDIDATES = (8, 64)


def _pressure(host, use_cpu, use_mem):
    cpu = host.abs[0] / host.denom[0] if use_cpu else 0.0
    mem = host.abs[1] / host.denom[1] if use_mem else 0.0
    return cpu if cpu > mem else mem


def plan(snapshot, params=None):
    """Plan moves that take every active host below threshold; returns a Plan."""
    params = effective_params(PARAMS, params)
    placement = Placement(snapshot, params)
    result = Plan(NAME, params, digest(snapshot))
    wc, wm = params["weight_cpu"], params["weight_memory"]
    use_cpu, use_mem = wc > 0, wm > 0
    threshold = params["threshold"]
    max_moves, max_gib = params["max_moves"], params["max_gib"]
    result.before = snapshot_figures(placement, wc, wm)
    result.skipped = skipped_entries(placement)

    active = [h for h in placement.host_list if h.active]
    pressure = dict((h.name, _pressure(h, use_cpu, use_mem)) for h in active)
    overloaded = [h for h in active if pressure[h.name] > threshold]
    overloaded.sort(key=lambda h: (-pressure[h.name], h.name))
    stuck_at_least = sum(1 for h in overloaded
                         if _immovable_pressure(placement, h, use_cpu, use_mem) > threshold)
    pools = {}
    for host in active:
        pools.setdefault(host.pool, []).append(host)
    pools = dict((key, HostHeap(pressure, hosts)) for key, hosts in pools.items())

    moves = []
    gib_moved = 0.0
    stop = None
    for source in overloaded:
        if stop:
            result.skipped.append({"kind": "host", "name": source.name,
                                   "reason": "still above threshold: %s" % stop})
            continue
        pool = pools[source.pool]
        members = [source.instances[key] for key in sorted(source.instances)]
        members = [inst for inst in members if placement.movable(inst) is None]
        ranked = []
        for inst in members:
            share = max(inst.contribution(source, 0) / source.denom[0] if use_cpu else 0.0,
                        inst.contribution(source, 1) / source.denom[1] if use_mem else 0.0)
            if share > 0:
                ranked.append((-share, inst.id, inst))
        ranked.sort(key=lambda r: (r[0], r[1]))
        for _share, _ident, inst in ranked:
            if pressure[source.name] <= threshold:
                break
            if max_moves and len(moves) >= max_moves:
                stop = "budget spent: max_moves %d" % max_moves
                break
            gib = inst.flavor[1] / 1024.0
            if max_gib and gib_moved + gib > max_gib + 1e-9:
                continue
            dest = _destination(placement, inst, source, pool, pressure, threshold, use_cpu, use_mem)
            if dest is None:
                continue
            before_src, before_dst = pressure[source.name], pressure[dest.name]
            placement.move(inst, dest)
            pressure[source.name] = _pressure(source, use_cpu, use_mem)
            pressure[dest.name] = _pressure(dest, use_cpu, use_mem)
            pool.push(source)
            pool.push(dest)
            gib_moved += gib
            moves.append(Move(inst, source.name, dest.name,
                              "overload: %s %.3f -> %.3f, %s %.3f -> %.3f (threshold %g)" % (
                                  source.name, before_src, pressure[source.name], dest.name,
                                  before_dst, pressure[dest.name], threshold),
                              host_score(source, wc, wm), host_score(dest, wc, wm)))
        if pressure[source.name] > threshold and not stop:
            result.skipped.append({"kind": "host", "name": source.name, "reason":
                                   "still above threshold at %.3f: nothing more fits elsewhere"
                                   " within the rules and budget" % pressure[source.name]})
        elif stop and pressure[source.name] > threshold:
            result.skipped.append({"kind": "host", "name": source.name,
                                   "reason": "still above threshold: %s" % stop})

    remaining = sum(1 for h in active if pressure[h.name] > threshold)
    if not overloaded:
        result.reason = "no moves: no active host above threshold %g" % threshold
    elif moves:
        result.reason = "%d moves; %d of %d overloaded hosts remain above threshold %g" % (
            len(moves), remaining, len(overloaded), threshold)
    else:
        result.reason = "no moves: %d hosts above threshold %g, none can be relieved" % (
            len(overloaded), threshold)
    finish(result, placement, moves, params)
    result.bound = {"overloaded_before": len(overloaded), "overloaded_after": remaining,
                    "overloaded_at_least": stuck_at_least,
                    "note": "overloaded_at_least counts hosts whose instances that cannot move"
                            " already keep them above threshold"}
    return result


def _immovable_pressure(placement, host, use_cpu, use_mem):
    """Pressure left on host if every instance that may move were gone."""
    left = [host.abs[0], host.abs[1]]
    for inst in host.instances.values():
        if placement.movable(inst) is None:
            left[0] -= inst.contribution(host, 0)
            left[1] -= inst.contribution(host, 1)
    cpu = left[0] / host.denom[0] if use_cpu else 0.0
    mem = left[1] / host.denom[1] if use_mem else 0.0
    return max(cpu, mem)


def _destination(placement, inst, source, pool, pressure, threshold, use_cpu, use_mem):
    """The pool host with the lowest pressure that takes inst and stays at or below threshold."""
    tried = set()
    for size in CANDIDATES:
        for dest in pool.first(size):
            if dest is source or dest.name in tried:
                continue
            tried.add(dest.name)
            cpu = (dest.abs[0] + inst.contribution(dest, 0)) / dest.denom[0] if use_cpu else 0.0
            mem = (dest.abs[1] + inst.contribution(dest, 1)) / dest.denom[1] if use_mem else 0.0
            if max(cpu, mem) > threshold:
                continue
            if placement.fits(inst, dest) is None:
                return dest
    return None
