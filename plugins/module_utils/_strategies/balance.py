# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``balance``: level host scores by moving instances from busy hosts to idle ones.

Host score = weight_cpu * cpu load + weight_memory * memory load (measured, or allocation-based
when no measurement is given). The strategy acts while the busiest active host scores at least
``min_load`` and max/min - 1 is at least ``min_diff``. Each step takes the busiest host that
still has a useful move, looks at the least-loaded hosts of its pool (same AZ and aggregates),
and picks the move that cuts the spread (sum of squared deviations from the mean score) the most
per GiB of RAM copied, plus ``move_cost_gib`` per migration. A move must cut it by at least
``min_gain`` and, when ``min_gain_per_gib`` is set, by at least that much per GiB copied
(``move_cost_gib`` included): one exchange rate for every pool, so a GiB budget goes where it
cuts the spread most and the costly tail of small cuts is left alone.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import EPSILON, Placement
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import (
    COMMON_PARAMS, Move, Plan, effective_params, finish, host_score, ratio, rnd,
    skipped_entries, snapshot_figures, _check_number,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import digest
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies._common import HostHeap, pool_label

NAME = "balance"
PARAMS = dict(COMMON_PARAMS)
PARAMS.update({
    "min_load": (0.5, lambda n, v: _check_number(n, v, 0)),
    "min_diff": (0.2, lambda n, v: _check_number(n, v, 0)),
    "min_gain": (0.005, lambda n, v: _check_number(n, v, 0)),
    "move_cost_gib": (4.0, lambda n, v: _check_number(n, v, 0)),
    # 0 = off. A move must also cut the spread by this much per GiB it copies (move_cost_gib
    # included), so levelling stops where its gain per GiB collapses, in every pool alike.
    "min_gain_per_gib": (0.0, lambda n, v: _check_number(n, v, 0)),
})

# How many of a pool's least-loaded hosts a step considers first, and then if none of them fits.
CANDIDATES = (8, 64)


def plan(snapshot, params=None):
    """Plan balance moves for a Snapshot; returns a Plan."""
    params = effective_params(PARAMS, params)
    placement = Placement(snapshot, params)
    result = Plan(NAME, params, digest(snapshot))
    wc, wm = params["weight_cpu"], params["weight_memory"]
    result.before = snapshot_figures(placement, wc, wm)
    result.skipped = skipped_entries(placement)
    moves, stuck, reason = _level(placement, params)
    result.reason = reason
    for host in stuck:
        result.skipped.append({"kind": "host", "name": host.name, "reason":
                               "no move off this host cuts the spread by min_gain and keeps every rule"})
    result.skipped.extend(_explain(placement, params, set(h.name for h in stuck)))
    finish(result, placement, moves, params)
    result.bound = _bound(placement, result.after)
    return result


def _level(placement, params):
    """Greedy levelling; returns (moves, hosts with no useful move, stop reason)."""
    wc, wm = params["weight_cpu"], params["weight_memory"]
    min_load, min_diff, min_gain = params["min_load"], params["min_diff"], params["min_gain"]
    max_moves, max_gib, move_cost = params["max_moves"], params["max_gib"], params["move_cost_gib"]
    per_gib = params["min_gain_per_gib"]
    active = [h for h in placement.host_list if h.active]
    if not active:
        return [], [], "no moves: no active host in scope"
    scores = dict((h.name, host_score(h, wc, wm)) for h in active)
    count = float(len(active))
    # math.fsum, not sum: sum() of floats changed in Python 3.12, and plans must not depend on
    # the controller's Python version.
    total = math.fsum(scores.values())
    sources = HostHeap(scores, active, largest_first=True)
    members = {}
    for host in active:
        members.setdefault(host.pool, []).append(host)
    # Thresholds are judged per pool (hosts that can exchange instances): no move can level
    # two pools against each other, so a global max/min would never be reached.
    busiest = dict((key, HostHeap(scores, hosts, largest_first=True)) for key, hosts in members.items())
    idlest = dict((key, HostHeap(scores, hosts)) for key, hosts in members.items())
    receivers = dict((key, HostHeap(scores, hosts)) for key, hosts in members.items())
    full = dict((key, _full_test(placement, hosts)) for key, hosts in members.items())
    movable = {}  # host name -> _movable_off(host), kept as instances leave
    done = {}
    moves = []
    stuck = []
    stuck_names = set()
    gib_moved = 0.0
    budget_blocked = False
    reason = None

    while reason is None:
        if max_moves and len(moves) >= max_moves:
            reason = "budget spent: max_moves %d" % max_moves
            break
        source = sources.pop()
        if source is None:
            break
        if source.name in stuck_names or source.pool in done:
            continue
        key = source.pool
        top, low = busiest[key].peek(), idlest[key].peek()
        top_score, low_score = scores[top.name], scores[low.name]
        if top_score < min_load:
            done[key] = "%s: busiest host %s scores %.3f < min_load %g" % (
                pool_label(key), top.name, top_score, min_load)
            continue
        spread_ratio = ratio(top_score, low_score)
        if spread_ratio is not None and spread_ratio < min_diff:
            done[key] = "%s: max/min - 1 = %.3f < min_diff %g" % (pool_label(key), spread_ratio,
                                                                  min_diff)
            continue
        if source.name not in movable:
            movable[source.name] = _movable_off(placement, source, wc, wm, min_gain, move_cost, per_gib)
        best, blocked = _best_move(placement, source, movable[source.name], scores, receivers[key], total,
                                   count, wc, wm, max_gib - gib_moved if max_gib else None, full[key])
        budget_blocked = budget_blocked or blocked
        if best is None:
            stuck.append(source)
            stuck_names.add(source.name)
            continue
        inst, dest, new_source, new_dest, gain = best
        old_source, old_dest = scores[source.name], scores[dest.name]
        placement.move(inst, dest)
        movable[source.name] = [entry for entry in movable[source.name] if entry[0] is not inst]
        scores[source.name] = new_source
        scores[dest.name] = new_dest
        total += new_source + new_dest - old_source - old_dest
        gib_moved += inst.flavor[1] / 1024.0
        for heap in (sources, busiest[key], idlest[key], receivers[key]):
            heap.push(source)
            heap.push(dest)
        moves.append(Move(inst, source.name, dest.name,
                          "balance: %s %.3f -> %.3f, %s %.3f -> %.3f, spread -%.4f" % (
                              source.name, old_source, new_source, dest.name, old_dest, new_dest,
                              gain), new_source, new_dest))
    if reason is None:
        parts = []
        level = sum(1 for text in done.values() if "min_diff" in text)
        idle = len(done) - level
        if len(done) == 1:
            parts.append(list(done.values())[0])
        elif done:
            parts.append("%d pools level (max/min - 1 < min_diff %g), %d below min_load %g" % (
                level, min_diff, idle, min_load))
        if len(done) < len(members):
            parts.append("%d pools have no move that cuts the spread by min_gain %g within the rules%s"
                         % (len(members) - len(done), min_gain,
                            " and max_gib %g" % max_gib if budget_blocked else ""))
        reason = "; ".join(parts)
    if moves:
        return moves, stuck, "%d moves; stopped: %s" % (len(moves), reason)
    return moves, stuck, "no moves: %s" % reason


def _full_test(placement, hosts):
    """A test for hosts of a pool with no room for even the smallest movable instance there.

    Such hosts leave the pool's idlest-host heap until an instance leaves them (a host only
    gains room by being a source, and sources are pushed back into the heap).
    """
    smallest = [None, None, None]
    for host in hosts:
        for inst in host.instances.values():
            if placement.movable(inst) is None:
                for index in (0, 1, 2):
                    if smallest[index] is None or inst.flavor[index] < smallest[index]:
                        smallest[index] = inst.flavor[index]
    if smallest[0] is None:
        return lambda host: True
    low_cpu, low_mem, low_disk = smallest

    def full(host):
        return (host.cap[0] - host.used[0] + EPSILON < low_cpu
                or host.cap[1] - host.used[1] + EPSILON < low_mem
                or host.cap[2] - host.used[2] + EPSILON < low_disk)
    return full


def _movable_off(placement, source, wc, wm, min_gain, move_cost, min_rate):
    """The movable instances of source with what stays fixed while they stay there.

    Per instance: (inst, score it takes off source, cost in GiB, cpu, mem, GiB copied, least gain
    a move of it must bring). Movability and these figures only change when the instance leaves.
    """
    out = []
    s_cpu = wc / source.denom[0]
    s_mem = wm / source.denom[1]
    cpu_mode, mem_mode = source.measured
    for key in sorted(source.instances):
        inst = source.instances[key]
        if placement.movable(inst) is not None:
            continue
        gib = inst.flavor[1] / 1024.0
        cpu, mem = inst.by_mode
        # A flavor with no RAM and no per-move cost would cost nothing: keep the ratio finite.
        cost = max(gib + move_cost, 1e-6)
        out.append((inst, s_cpu * cpu[cpu_mode] + s_mem * mem[mem_mode], cost, cpu, mem, gib,
                    max(min_gain, min_rate * cost)))
    return out


def _best_move(placement, source, movable, scores, pool, total, count, wc, wm, gib_left, full):
    """The move off source with the best spread cut per GiB, or None; and whether GiB ran out.

    ``movable`` is :func:`_movable_off` of source.
    """
    s_score = scores[source.name]
    blocked = False
    leaving = []
    for inst, a, cost, cpu, mem, gib, least in movable:
        if gib_left is not None and gib > gib_left + 1e-9:
            blocked = True
            continue
        if a > 0:
            leaving.append((inst, a, cost, cpu, mem, s_score - a, total - a, least))
    if not leaving:
        return None, blocked
    tried = set()
    base = s_score * s_score
    for size in CANDIDATES:
        candidates = [h for h in pool.first(size, full)
                      if h is not source and h.name not in tried and scores[h.name] < s_score]
        if not candidates:
            continue
        options = []
        gainful = False
        for dest in candidates:
            tried.add(dest.name)
            d_score = scores[dest.name]
            d_cpu = wc / dest.denom[0]
            d_mem = wm / dest.denom[1]
            d_cpu_mode, d_mem_mode = dest.measured
            free_cpu = dest.cap[0] - dest.used[0] + EPSILON
            free_mem = dest.cap[1] - dest.used[1] + EPSILON
            free_disk = dest.cap[2] - dest.used[2] + EPSILON
            before = base + d_score * d_score
            name = dest.name
            for inst, a, cost, cpu, mem, new_s, partial, least in leaving:
                new_d = d_score + d_cpu * cpu[d_cpu_mode] + d_mem * mem[d_mem_mode]
                new_total = partial + new_d - d_score
                # Change of sum((score - mean)^2) = change of sum(score^2) - change of total^2/n.
                gain = before - new_s * new_s - new_d * new_d + (new_total * new_total - total * total) / count
                if gain < least or gain <= 0:
                    continue
                gainful = True
                flavor = inst.flavor
                if flavor[1] > free_mem or flavor[0] > free_cpu or flavor[2] > free_disk:
                    continue
                options.append((-gain / cost, inst.id, name, inst, dest, new_s, new_d, gain))
        if not gainful:
            # The idlest hosts gain the most from any instance; if none of them gains enough,
            # busier ones will not either. Look further only when room or rules blocked one.
            break
        if not options:
            continue
        best = min(options)  # ties: lower instance id, then destination name
        if placement.fits(best[3], best[4]) is None:
            return best[3:], blocked
        options.sort(key=lambda o: (o[0], o[1], o[2]))
        for option in options:
            if placement.fits(option[3], option[4]) is None:
                return option[3:], blocked
    return None, blocked


def _explain(placement, params, stuck):
    """Why each movable instance stays on a pool's busiest host, when that host got stuck.

    Only the busiest host of each pool is explained: it is the one that keeps the pool from
    being level, so it is where an operator looks first.
    """
    wc, wm, min_gain = params["weight_cpu"], params["weight_memory"], params["min_gain"]
    active = [h for h in placement.host_list if h.active]
    if not active or not stuck:
        return []
    scores = dict((h.name, host_score(h, wc, wm)) for h in active)
    count = float(len(active))
    total = math.fsum(scores.values())
    pools = {}
    for host in active:
        pools.setdefault(host.pool, []).append(host)
    entries = []
    for key in sorted(pools, key=lambda k: min(h.name for h in pools[k])):
        members = sorted(pools[key], key=lambda h: (-scores[h.name], h.name))
        busiest = members[0]
        if busiest.name not in stuck:
            continue
        candidates = sorted(members[1:], key=lambda h: (scores[h.name], h.name))[:CANDIDATES[0]]
        s_score = scores[busiest.name]
        for ident in sorted(busiest.instances):
            inst = busiest.instances[ident]
            if placement.movable(inst) is not None:
                continue
            a = wc * inst.contribution(busiest, 0) / busiest.denom[0] + wm * inst.contribution(busiest, 1) / busiest.denom[1]
            gainful = []
            for dest in candidates:
                d_score = scores[dest.name]
                b = wc * inst.contribution(dest, 0) / dest.denom[0] + wm * inst.contribution(dest, 1) / dest.denom[1]
                new_s, new_d, new_total = s_score - a, d_score + b, total - a + b
                gain = (s_score * s_score + d_score * d_score - new_s * new_s - new_d * new_d
                        + (new_total * new_total - total * total) / count)
                if gain >= min_gain and gain > 0:
                    gainful.append((-gain, dest.name, dest))
            if not gainful:
                reason = ("stays on %s, the busiest host of its pool: no move of it to the idlest hosts"
                          " cuts the spread by min_gain %g" % (busiest.name, min_gain))
            else:
                gainful.sort(key=lambda g: (g[0], g[1]))
                why = None
                for _gain, _name, dest in gainful:
                    why = placement.fits(inst, dest)
                    if why is None:
                        break
                reason = "stays on %s, the busiest host of its pool: %s" % (
                    busiest.name, why or "its move would exceed the budget")
            entries.append({"kind": "instance", "id": inst.id, "name": inst.name,
                            "host": busiest.name, "reason": reason})
    return entries


def _bound(placement, after):
    """Lower bounds on the busiest host's cpu and memory load: a pool cannot beat its average."""
    sums = {}
    for host in placement.host_list:
        if host.active:
            entry = sums.setdefault(host.pool, [0.0, 0.0, 0.0, 0.0])
            entry[0] += host.abs[0]
            entry[1] += host.denom[0]
            entry[2] += host.abs[1]
            entry[3] += host.denom[1]
    if not sums:
        return {}
    cpu = max(e[0] / e[1] for e in sums.values())
    mem = max(e[2] / e[3] for e in sums.values())
    spread = after["spread"]
    return {
        "cpu_max_at_least": rnd(cpu), "memory_max_at_least": rnd(mem),
        "cpu_max_gap": rnd(spread["cpu_max"] - cpu) if spread["cpu_max"] is not None else None,
        "memory_max_gap": rnd(spread["memory_max"] - mem) if spread["memory_max"] is not None else None,
        "note": "busiest host's load cannot be below its pool's average (pool = az + aggregates)",
    }
