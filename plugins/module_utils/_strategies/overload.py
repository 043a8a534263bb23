# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``overload``: bring every host below ``threshold`` and leave the rest alone.

A host's pressure is its highest load among the weighted metrics (cpu when weight_cpu > 0,
memory when weight_memory > 0). Hosts above ``threshold`` are relieved with few moves (a
heuristic, measured against the optimum by benchmarks/balance_optimum.py), in three steps:

1. choose, for each host above threshold, its busiest instances until their leaving would bring
   it to the threshold (the fewest instances that can do it);
2. place the chosen instances of every host together, biggest share first, each on the host of
   the same pool with the most headroom (lowest pressure) that keeps every rule and stays at or
   below the threshold: big instances find their room before small ones have taken it;
3. for a host still above threshold, pick again one instance at a time among those left, the
   busiest that has somewhere to go.

Making room (in steps 2 and 3): when the instance that would help most fits nowhere, up to
ROOM_MOST other instances may first be moved off one host (within the rules and the threshold,
each to its own host) so that it fits there, if that takes fewer moves than relieving its host
with smaller instances. Their reason says "make room on <host> for <instance>".

``destination: fullest`` (opt-in; the default ``headroom`` is the choice above) packs instead
of spreading: an instance goes to the used host (one holding instances) of its pool with the
highest pressure that takes it within every rule and stays at or below the threshold (best
fit, ties by name), and to an empty host only when no used host takes it (then the same
choice as ``headroom``), so relieving a host does not undo consolidation.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import (
    COMMON_PARAMS, Move, Plan, PlanError, effective_params, finish, host_score,
    skipped_entries, snapshot_figures, _check_number,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import digest
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies._common import HostHeap

NAME = "overload"
DESTINATIONS = ("headroom", "fullest")


def _check_destination(name, value):
    if value not in DESTINATIONS:
        raise PlanError("%s: expected one of %s, got %r" % (name, ", ".join(DESTINATIONS), value))
    return value


PARAMS = dict(COMMON_PARAMS)
PARAMS.update({
    "threshold": (0.85, lambda n, v: _check_number(n, v, 0, exclusive=True)),
    # headroom: the host with the lowest pressure; fullest: the used host with the highest
    # pressure that stays at or below threshold, an empty host only when no used host takes it.
    "destination": ("headroom", _check_destination),
})
CANDIDATES = (8, 64)
# Make room: hosts tried as the landing place, instances tried as the one to move off it, and
# the most instances moved off one host to make room for one.
ROOM_HOSTS = 16
ROOM_INSTANCES = 12
ROOM_MOST = 3


def _pressure(host, use_cpu, use_mem):
    cpu = host.abs[0] / host.denom[0] if use_cpu else 0.0
    mem = host.abs[1] / host.denom[1] if use_mem else 0.0
    return cpu if cpu > mem else mem


class _Run(object):
    """The state of one planning run: placement, pressures, pools, moves and budgets."""

    def __init__(self, placement, params):
        self.placement = placement
        self.wc, self.wm = params["weight_cpu"], params["weight_memory"]
        self.use_cpu, self.use_mem = self.wc > 0, self.wm > 0
        self.threshold = params["threshold"]
        self.fullest = params["destination"] == "fullest"
        self.max_moves, self.max_gib = params["max_moves"], params["max_gib"]
        self.active = [h for h in placement.host_list if h.active]
        self.pressure = dict((h.name, self.host_pressure(h)) for h in self.active)
        pools = {}
        for host in self.active:
            pools.setdefault(host.pool, []).append(host)
        self.pools = dict((key, HostHeap(self.pressure, hosts)) for key, hosts in pools.items())
        self.pool_hosts = pools
        # The largest load denominators of each pool: an instance adds at least its load over
        # these to any host of the pool (see destination).
        self.widest = dict((key, (max(h.denom[0] for h in hosts), max(h.denom[1] for h in hosts)))
                           for key, hosts in pools.items())
        self.moves = []
        self.gib_moved = 0.0
        self.stop = None
        self.no_room = set()  # ids of instances no room could be made for: not searched again

    def host_pressure(self, host):
        return _pressure(host, self.use_cpu, self.use_mem)

    def pressure_after(self, host, leaving=None, arriving=None):
        """Pressure of host once leaving has gone and arriving has come (either may be None)."""
        loads = []
        for metric, used in ((0, self.use_cpu), (1, self.use_mem)):
            if not used:
                loads.append(0.0)
                continue
            value = host.abs[metric]
            if leaving is not None:
                value -= leaving.contribution(host, metric)
            if arriving is not None:
                value += arriving.contribution(host, metric)
            loads.append(value / host.denom[metric])
        return max(loads)

    def share(self, inst, host):
        """The part of host's pressure inst carries (largest over the weighted metrics)."""
        cpu = inst.contribution(host, 0) / host.denom[0] if self.use_cpu else 0.0
        mem = inst.contribution(host, 1) / host.denom[1] if self.use_mem else 0.0
        return cpu if cpu > mem else mem

    def candidates(self, source):
        """Instances of source that may move and carry load, busiest first (ties by id)."""
        ranked = []
        for key in sorted(source.instances):
            inst = source.instances[key]
            if self.placement.movable(inst) is None:
                share = self.share(inst, source)
                if share > 0:
                    ranked.append((-share, inst.id, inst))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in ranked]

    def over(self, host):
        return self.pressure[host.name] > self.threshold

    # ------------------------------------------------------------ budgets

    def budget_left(self, count, gib):
        """None when count more moves of gib GiB in all fit the budgets, else why not."""
        if self.max_moves and len(self.moves) + count > self.max_moves:
            return "budget spent: max_moves %d" % self.max_moves
        if self.max_gib and self.gib_moved + gib > self.max_gib + 1e-9:
            return "budget spent: max_gib %g" % self.max_gib
        return None

    # ------------------------------------------------------------ destinations

    def destination(self, inst, avoid=None):
        """The pool host with the lowest pressure that takes inst and stays at or below threshold
        (``destination: fullest``: the used one with the highest, see fullest_destination)."""
        source = inst.host
        if self.fullest:
            dest = self.fullest_destination(inst, avoid)
            if dest is not None:
                return dest
        pool = self.pools[source.pool]
        # Hosts come by rising pressure, and inst raises a host's pressure by at least least:
        # once a host is too busy by that measure, so is every later one.
        widest = self.widest[source.pool]
        least = min(min(inst.by_mode[m]) / widest[m] for m, used in ((0, self.use_cpu), (1, self.use_mem)) if used)
        tried = set()
        for size in CANDIDATES:
            for dest in pool.first(size):
                if self.pressure[dest.name] + least > self.threshold + 1e-9:
                    return None
                if dest is source or dest.name in tried:
                    continue
                tried.add(dest.name)
                if avoid is not None and dest.name in avoid:
                    continue
                if self.pressure_after(dest, arriving=inst) > self.threshold:
                    continue
                if self.placement.fits(inst, dest) is None:
                    return dest
        return None

    def fullest_destination(self, inst, avoid=None):
        """The used pool host with the highest pressure that takes inst and stays at or below
        threshold (ties by name), or None."""
        source = inst.host
        threshold = self.threshold + 1e-9
        pressure = self.pressure
        ranked = []
        for dest in self.pool_hosts[source.pool]:
            if dest is source or not dest.instances or pressure[dest.name] > threshold:
                continue
            if avoid is not None and dest.name in avoid:
                continue
            ranked.append((-pressure[dest.name], dest.name, dest))
        ranked.sort(key=lambda r: (r[0], r[1]))
        for _pressure, _name, dest in ranked:
            if self.pressure_after(dest, arriving=inst) > self.threshold:
                continue
            if self.placement.fits(inst, dest) is None:
                return dest
        return None

    def fits_without(self, inst, dest, leaving):
        """Whether inst would fit on dest (every rule, and the threshold) once the instances in
        leaving have gone."""
        loads = []
        for metric, used in ((0, self.use_cpu), (1, self.use_mem)):
            value = dest.abs[metric] + inst.contribution(dest, metric)
            for other in leaving:
                value -= other.contribution(dest, metric)
            loads.append(value / dest.denom[metric] if used else 0.0)
        if max(loads) > self.threshold:
            return False
        # Take their resources and group slots off dest for the check, then put them back:
        # integer-valued floats and ints, so the state comes back exactly.
        used = dest.used
        for other in leaving:
            for index in (0, 1, 2):
                used[index] -= other.flavor[index]
            for group in other.groups:
                group.counts[dest.name] -= 1
        try:
            return self.placement.fits(inst, dest) is None
        finally:
            for other in leaving:
                for index in (0, 1, 2):
                    used[index] += other.flavor[index]
                for group in other.groups:
                    group.counts[dest.name] += 1

    def make_room(self, inst, most):
        """(host, [(instance, where it goes), ...]): at most ``most`` instances to move off host
        so that inst fits there, or None.

        Hosts are tried by lowest pressure. One instance is preferred: the least busy one that
        frees what inst lacks (RAM, vCPUs, disk, a server-group slot or load) and has somewhere
        to go. Else the busiest instances of a host, until inst fits, each to a different host.
        """
        source = inst.host
        hosts = []
        for dest in self.pools[source.pool].first(ROOM_HOSTS * 4):
            if dest is source:
                continue
            blockers = []
            for key in sorted(dest.instances):
                other = dest.instances[key]
                if self.placement.movable(other) is None:
                    blockers.append((self.share(other, dest), other.id, other))
            if blockers:
                blockers.sort(key=lambda r: (r[0], r[1]))
                hosts.append((dest, blockers))
                if len(hosts) >= ROOM_HOSTS:
                    break
        for dest, blockers in hosts:
            # No metric drops by more than an instance's share when it leaves.
            if self.pressure_after(dest, arriving=inst) - blockers[-1][0] > self.threshold:
                continue
            checked = 0
            for _share, _ident, other in blockers:
                if checked >= ROOM_INSTANCES:
                    break
                if not self.fits_without(inst, dest, [other]):
                    continue
                checked += 1
                landing = self.destination(other)
                if landing is not None:
                    return dest, [(other, landing)]
        if most < 2:
            return None
        for dest, blockers in hosts:
            leaving = []
            for _share, _ident, other in reversed(blockers[-most:]):
                leaving.append(other)
                if len(leaving) >= 2 and self.fits_without(inst, dest, leaving):
                    break
            else:
                continue  # the busiest ``most`` leaving would not be enough
            landings = []
            taken = set()
            for other in leaving:
                landing = self.destination(other, avoid=taken)
                if landing is None:
                    break
                taken.add(landing.name)
                landings.append((other, landing))
            if len(landings) == len(leaving):
                return dest, landings
        return None

    # ------------------------------------------------------------ moves

    def apply(self, inst, dest, reason):
        source = inst.host
        before_src, before_dst = self.pressure[source.name], self.pressure[dest.name]
        self.placement.move(inst, dest)
        self.pressure[source.name] = self.host_pressure(source)
        self.pressure[dest.name] = self.host_pressure(dest)
        pool = self.pools[source.pool]
        pool.push(source)
        pool.push(dest)
        self.gib_moved += inst.flavor[1] / 1024.0
        self.moves.append(Move(inst, source.name, dest.name, "%s: %s %.3f -> %.3f, %s %.3f -> %.3f (threshold %g)" % (
            reason, source.name, before_src, self.pressure[source.name], dest.name, before_dst,
            self.pressure[dest.name], self.threshold),
            host_score(source, self.wc, self.wm), host_score(dest, self.wc, self.wm)))

    # ------------------------------------------------------------ the three steps

    def choose(self, source):
        """Step 1: the busiest instances of source until their leaving brings it to the threshold."""
        cpu, mem = source.abs[0], source.abs[1]
        chosen = []
        for inst in self.candidates(source):
            if not self._over_with(source, cpu, mem):
                break
            chosen.append(inst)
            cpu -= inst.contribution(source, 0)
            mem -= inst.contribution(source, 1)
        return chosen

    def place_chosen(self, sources):
        """Step 2: every chosen instance, biggest share first, to the host with most headroom."""
        wanted = []
        for source in sources:
            for inst in self.choose(source):
                wanted.append((-self.share(inst, source), inst.id, inst, source))
        wanted.sort(key=lambda r: (r[0], r[1]))
        # A host whose chosen instances have not all gone receives nothing in this step.
        pending = dict((s.name, 0) for s in sources)
        for _share, _ident, _inst, source in wanted:
            pending[source.name] += 1
        busy = set(name for name, count in pending.items() if count)
        for _share, _ident, inst, source in wanted:
            pending[source.name] -= 1
            if not pending[source.name]:
                busy.discard(source.name)
            # Making room for another may have moved inst already.
            if self.stop or not self.over(source) or self.placement.movable(inst) is not None:
                continue
            stop = self.budget_left(1, inst.flavor[1] / 1024.0)
            if stop:
                if stop.startswith("budget spent: max_moves"):
                    self.stop = stop
                continue
            dest = self.destination(inst, avoid=busy)
            if dest is not None:
                self.apply(inst, dest, "overload")
            else:
                # Now, before smaller instances fill the hosts where room could be made.
                self._make_room_for(source, inst, ())

    def relieve(self, source):
        """Step 3: one instance at a time until source is at or below the threshold."""
        given_up = set()
        while self.over(source) and not self.stop:
            left = [inst for inst in self.candidates(source) if inst.id not in given_up]
            if not left:
                return
            # The busiest instance that has somewhere to go; instances with nowhere to go are
            # given up, except the busiest, which may still get room made for it.
            order = left
            direct = dest = None
            for inst in order:
                stop = self.budget_left(1, inst.flavor[1] / 1024.0)
                if stop and "max_moves" in stop:
                    self.stop = stop
                    return
                if not stop:
                    dest = self.destination(inst)
                    if dest is not None:
                        direct = inst
                        break
                if inst is not order[0]:
                    given_up.add(inst.id)
            best = order[0]
            if direct is not best:
                if self._make_room_for(source, best, given_up):
                    continue
                given_up.add(best.id)
            if direct is None:
                return
            self.apply(direct, dest, "overload")

    def _count(self, source, first, pool_of):
        """Moves needed to bring source to the threshold: first, then the busiest of pool_of."""
        cpu, mem = source.abs[0], source.abs[1]
        count = 0
        for inst in ([first] if first is not None else []) + pool_of:
            if not self._over_with(source, cpu, mem):
                break
            cpu -= inst.contribution(source, 0)
            mem -= inst.contribution(source, 1)
            count += 1
        return None if self._over_with(source, cpu, mem) else count

    def _over_with(self, source, cpu, mem):
        c = cpu / source.denom[0] if self.use_cpu else 0.0
        m = mem / source.denom[1] if self.use_mem else 0.0
        return (c if c > m else m) > self.threshold

    def _make_room_for(self, source, best, given_up):
        """Make room for best when that takes fewer moves than relieving source without it.

        Returns whether any move was made."""
        if best.id in self.no_room:
            return False
        others = [inst for inst in self.candidates(source) if inst is not best and inst.id not in given_up]
        with_best = self._count(source, best, others)
        if with_best is None:
            return False
        without = self._count(source, None, others)
        most = ROOM_MOST if without is None else min(ROOM_MOST, without - with_best - 1)
        if most < 1:
            return False
        found = self.make_room(best, most)
        if found is None:
            self.no_room.add(best.id)
            return False
        dest, evictions = found
        gib = best.flavor[1] / 1024.0 + sum(other.flavor[1] for other, _landing in evictions) / 1024.0
        if self.budget_left(len(evictions) + 1, gib):
            return False
        made = False
        for other, landing in evictions:
            # Moving the earlier ones may change what a later one may do (soft policies).
            if self.pressure_after(landing, arriving=other) > self.threshold or self.placement.fits(other, landing):
                landing = self.destination(other)
                if landing is None:
                    return made
            self.apply(other, landing, "overload: make room on %s for %s from %s" % (dest.name, best.name, source.name))
            made = True
        if self.fits_without(best, dest, []):
            self.apply(best, dest, "overload")
        return made


def plan(snapshot, params=None):
    """Plan moves that take every active host below threshold; returns a Plan."""
    params = effective_params(PARAMS, params)
    placement = Placement(snapshot, params)
    result = Plan(NAME, params, digest(snapshot))
    run = _Run(placement, params)
    threshold = run.threshold
    result.before = snapshot_figures(placement, run.wc, run.wm)
    result.skipped = skipped_entries(placement)

    overloaded = [h for h in run.active if run.over(h)]
    overloaded.sort(key=lambda h: (-run.pressure[h.name], h.name))
    stuck_at_least = sum(1 for h in overloaded
                         if _immovable_pressure(placement, h, run.use_cpu, run.use_mem) > threshold)

    run.place_chosen(overloaded)
    for source in overloaded:
        if run.over(source) and not run.stop:
            run.relieve(source)
    for source in overloaded:
        if not run.over(source):
            continue
        if run.stop:
            reason = "still above threshold: %s" % run.stop
        else:
            reason = ("still above threshold at %.3f: nothing more fits elsewhere within the rules"
                      " and budget" % run.pressure[source.name])
        result.skipped.append({"kind": "host", "name": source.name, "reason": reason})

    moves = run.moves
    remaining = sum(1 for h in run.active if run.over(h))
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
