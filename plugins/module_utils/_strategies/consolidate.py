# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``consolidate``: empty whole hosts by packing their instances onto other used hosts.

Hosts are tried in one of three orders (ORDERS): fewest instances first, then least used (the
larger of their vCPU and RAM allocation fractions); or smallest first (the RAM they hold or may
hold under the ceiling), best fit by RAM or by disk; then the best of them again with one of
the hosts it could not empty tried first (up to three such tries). Each pool keeps the try that
frees the most hosts (with a budget, which pools share, the whole plan does); each try starts
from the same state. Without a budget, an improvement phase follows per pool (_Run.one_more):
hosts left used are tried again, holding the least RAM first, with the moves planned onto them
re-targeted and one planned move allowed to go elsewhere to make room; all-or-nothing, every rule
kept. A host is planned empty only if every one of its instances fits elsewhere
(all-or-nothing per host); otherwise its tentative moves are undone and the reason is listed.
Instances in server groups go first, then the largest; members of a soft-affinity group on the
host move together. Each goes to the best fit among the hosts that stay used anyway (they cannot
be emptied, or already received): the one of its pool (same AZ and aggregates) with the least
RAM (or disk) left under the ceiling that still takes it within every rule; only if none does,
to the used host that the emptying order would try last. The ceiling
``max_load_after`` (default 0.8) caps, on every host that receives, the vCPU, RAM and disk
allocations (a fraction of what Placement lets the host schedule) and the measured CPU and
memory load (a fraction of physical capacity, where measured).

Never onto an empty host, never onto a host emptied in this plan, and a host that receives
an instance is not emptied afterwards (no chains, no ping-pong). Hosts that just received an
instance are not emptied either: the snapshot records ``last_moved_at`` per instance, and an
instance sits on the destination of its last move, so a host holding an instance that moved
less than ``cooldown`` seconds before the snapshot was taken has just received it. Hosts with a
pinned, excluded, non-migratable, stopped or busy instance cannot be emptied by live migration.

The plan lists the emptied hosts in ``freed_hosts``: the hook for a playbook to disable their
compute service and power them off once the moves are done. The bound is a valid lower bound
on the hosts any plan of consolidate can end with (see ``_needed``): per pool, the hosts that
cannot be emptied plus the fewest others whose room under the ceiling, with that of the hosts
that stay, takes what the emptied ones hold, per resource and per mix of two resources.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bisect
import math

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import EPSILON, Placement
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import (
    COMMON_PARAMS, Move, Plan, PlanError, effective_params, finish, host_score,
    snapshot_figures, _check_number,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import digest
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import drain
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies._common import pool_label

NAME = "consolidate"
RESOURCE_NAMES = ("vcpus", "memory_mb", "disk_gb")


def _check_ceiling(name, value):
    value = _check_number(name, value, 0, exclusive=True)
    if value > 1:
        raise PlanError("%s: expected a fraction of capacity in (0, 1], got %r" % (name, value))
    return value


PARAMS = dict(COMMON_PARAMS)
PARAMS.update({
    "max_load_after": (0.8, _check_ceiling),
    # 0 means no limit.
    "max_hosts": (0, lambda n, v: _check_number(n, v, 0, integer=True)),
    # Emptying one host takes as many moves as it has instances.
    "max_moves": (100, lambda n, v: _check_number(n, v, 0, integer=True)),
})


class ConsolidatePlan(Plan):
    """A Plan that also lists the hosts it empties."""

    def __init__(self, strategy, params, snapshot_digest):
        super(ConsolidatePlan, self).__init__(strategy, params, snapshot_digest)
        self.freed_hosts = []

    def to_dict(self):
        result = super(ConsolidatePlan, self).to_dict()
        result["freed_hosts"] = list(self.freed_hosts)
        return result


class _Receivers(object):
    """The used hosts of one pool that may receive, ordered by room left under the ceiling (RAM or disk).

    ``room`` sums, per resource, what all of them can still take under the ceiling, so a host
    whose instances need more than that is rejected without trying.
    """

    def __init__(self, hosts, ceiling, resource=1):
        self.ceiling = ceiling
        self.resource = resource
        self.order = []
        self.keys = {}
        self.by_name = {}
        self.room = [0.0, 0.0, 0.0]
        for host in hosts:
            self.add(host)

    def _left(self, host):
        return [self.ceiling * host.cap[r] - host.used[r] for r in (0, 1, 2)]

    def add(self, host):
        left = self._left(host)
        key = (left[self.resource], host.name)
        bisect.insort(self.order, key)
        self.keys[host.name] = (key, left)
        self.by_name[host.name] = host
        for index in (0, 1, 2):
            self.room[index] += max(0.0, left[index])

    def remove(self, host):
        key, left = self.keys.pop(host.name)
        index = bisect.bisect_left(self.order, key)
        del self.order[index]
        del self.by_name[host.name]
        for resource in (0, 1, 2):
            self.room[resource] -= max(0.0, left[resource])

    def __contains__(self, host):
        return host.name in self.by_name


def _fraction(host):
    cap = host.cap
    return max(host.used[0] / cap[0] if cap[0] > 0 else 0.0,
               host.used[1] / cap[1] if cap[1] > 0 else 0.0)


def _fixed_reason(host):
    """Why host cannot be emptied by live migration, or None."""
    for key in sorted(host.instances):
        inst = host.instances[key]
        if inst.skip and inst.skip.startswith("cooldown"):
            return "just received %s (%s)" % (inst.name, inst.skip)
    for key in sorted(host.instances):
        inst = host.instances[key]
        if inst.skip:
            return "holds %s, which stays: %s" % (inst.name, inst.skip)
    return None


def _under_ceiling(inst, host, ceiling):
    flavor = inst.flavor
    used, cap = host.used, host.cap
    for index in (0, 1, 2):
        if used[index] + flavor[index] > ceiling * cap[index] + EPSILON:
            return False
    return _load_under_ceiling(inst, host, ceiling)


def _load_under_ceiling(inst, host, ceiling):
    """The measured CPU and memory load part of _under_ceiling."""
    for metric in (0, 1):
        if host.measured[metric] and (host.abs[metric] + inst.contribution(host, metric)
                                      > ceiling * host.denom[metric] + EPSILON):
            return False
    return True


def _best_fit(placement, inst, pool, ceiling):
    """The receiver with the least room left (RAM or disk) under the ceiling that takes inst, or (None, why)."""
    order, by_name = pool.order, pool.by_name
    f0, f1, f2 = inst.flavor
    start = bisect.bisect_left(order, (inst.flavor[pool.resource] - EPSILON, ""))
    why = None
    for index in range(start, len(order)):
        host = by_name[order[index][1]]
        used, cap = host.used, host.cap
        # _under_ceiling with its allocation checks inline: most receivers fail there, and this
        # loop is the planner's hottest.
        if (used[0] + f0 > ceiling * cap[0] + EPSILON or used[1] + f1 > ceiling * cap[1] + EPSILON
                or used[2] + f2 > ceiling * cap[2] + EPSILON or not _load_under_ceiling(inst, host, ceiling)):
            if why is None:
                why = "above max_load_after %g" % ceiling
            continue
        reason = placement.fits(inst, host)
        if reason is None:
            return host, None
        if why is None or why.startswith("above"):
            why = reason.replace(host.name, "a host")
    return None, why


def _latest_fit(placement, inst, pool, ceiling, rank):
    """The receiver that takes inst and comes last in the emptying order, or (None, why)."""
    best = None
    why = None
    start = bisect.bisect_left(pool.order, (inst.flavor[pool.resource] - EPSILON, ""))
    for entry in pool.order[start:]:
        host = pool.by_name[entry[1]]
        if best is not None and rank[host.name] < rank[best.name]:
            continue
        if not _under_ceiling(inst, host, ceiling):
            continue
        reason = placement.fits(inst, host)
        if reason is None:
            best = host
        elif why is None:
            why = reason.replace(host.name, "a host")
    return best, (None if best is not None else why)


class _Pool(object):
    """The receivers of one pool in two tiers, tried in order.

    ``keep`` holds hosts that stay used whatever happens (they cannot be emptied, or they
    received in this plan), ``spare`` the used hosts that might still be emptied later. Filling
    the keepers first (best fit) leaves the spare hosts free to be emptied in their turn; when a
    spare host has to take an instance, it is the one the emptying order would try last.
    """

    def __init__(self, hosts, fixed, ceiling, rank, resource=1):
        self.rank = rank
        self.resource = resource
        self.keep = _Receivers([h for h in hosts if fixed[h.name] is not None], ceiling, resource)
        self.spare = _Receivers([h for h in hosts if fixed[h.name] is None], ceiling, resource)

    def room(self, index):
        return self.keep.room[index] + self.spare.room[index]

    def best_fit(self, placement, inst, ceiling):
        host, why = _best_fit(placement, inst, self.keep, ceiling)
        if host is not None:
            return host, self.keep, None
        host, why_spare = _latest_fit(placement, inst, self.spare, ceiling, self.rank)
        if host is not None:
            return host, self.spare, None
        return None, None, why or why_spare or (
            "no used host of its pool has %g MB RAM left under max_load_after %g" % (inst.flavor[1], ceiling))


def plan(snapshot, params=None):
    """Plan moves that empty whole hosts; returns a Plan (a ConsolidatePlan)."""
    params = effective_params(PARAMS, params)
    placement = Placement(snapshot, params)
    result = ConsolidatePlan(NAME, params, digest(snapshot))
    wc, wm = params["weight_cpu"], params["weight_memory"]
    ceiling = params["max_load_after"]
    result.before = snapshot_figures(placement, wc, wm)
    result.skipped = [{"kind": "host", "name": h.name, "reason": h.inactive_reason}
                      for h in placement.host_list if not h.active]

    used = [h for h in placement.host_list if h.active and h.instances]
    fixed = dict((h.name, _fixed_reason(h)) for h in used)
    members = {}
    for host in used:
        members.setdefault(host.pool, []).append(host)
    needed = _needed(members, fixed, ceiling)

    run = _Run(placement, params, fixed, ceiling)
    if params["max_moves"] or params["max_gib"] or params["max_hosts"]:
        # A budget is shared by every pool: the order is chosen for the whole plan.
        run.best_of(used)
    else:
        for key in sorted(members, key=pool_label):
            run.best_of(members[key])
            run.one_more(members[key])
    moves, freed = run.moves, run.freed
    for name, reason in run.notes:
        result.skipped.append({"kind": "host", "name": name, "reason": "not emptied: %s" % reason})
    result.freed_hosts = sorted(h.name for h in freed)
    finish(result, placement, moves, params)
    result.bound = _bound(members, needed, freed, ceiling)
    if moves:
        result.reason = "%d moves free %d of %d used hosts (at least %d needed, gap %d)" % (
            len(moves), len(freed), len(used), result.bound["hosts_needed_at_least"], result.bound["gap"])
    elif not used:
        result.reason = "no moves: no active host holds instances"
    else:
        result.reason = "no moves: no host can be emptied within the rules and max_load_after %g (see skipped)" % ceiling
    return result


# The orders in which hosts are tried for emptying, and the resource whose room left decides the
# best fit (0 vCPU, 1 RAM, 2 disk). Each pool keeps the one that frees the most
# hosts (then copies the fewest GiB, then comes first here); with a budget (max_moves, max_gib,
# max_hosts), which every pool shares, the whole plan does.
# Hosts the second pass tries first, one at a time (see _Run.best_of).
PROMOTE = 3
ORDERS = (
    # The order: fewest instances, then least used.
    ("fewest instances", lambda h, ceiling: (len(h.instances), _fraction(h), h.name), 1),
    # Smallest hosts first (RAM they hold, or may hold under the ceiling): the bound's order,
    # where emptying a host costs what it holds plus the room it takes away.
    ("smallest", lambda h, ceiling: (max(h.used[1], ceiling * h.cap[1]), _fraction(h), h.name), 1),
    # The same, each instance to the receiver with the least disk (not RAM) left that takes
    # it: where disk binds, RAM best fit strands disk room.
    ("smallest, disk best fit", lambda h, ceiling: (max(h.used[1], ceiling * h.cap[1]), _fraction(h), h.name), 2),
)


class _Run(object):
    """The moves, emptied hosts and notes of one plan, built one pool or one pass at a time."""

    def __init__(self, placement, params, fixed, ceiling):
        self.placement = placement
        self.params = params
        self.fixed = fixed
        self.ceiling = ceiling
        self.moves = []
        self.freed = []
        self.notes = []
        self.gib = 0.0
        self.stop = None

    def empty_hosts(self, hosts, order, resource=1):
        """Try to empty hosts in the given order (ORDERS), keeping every rule and the budget."""
        params, fixed, ceiling = self.params, self.fixed, self.ceiling
        wc, wm = params["weight_cpu"], params["weight_memory"]
        candidates = sorted(hosts, key=lambda h: order(h, ceiling))
        rank = dict((h.name, number) for number, h in enumerate(candidates))
        members = {}
        for host in hosts:
            members.setdefault(host.pool, []).append(host)
        pools = dict((key, _Pool(part, fixed, ceiling, rank, resource)) for key, part in members.items())
        received = set()
        for host in candidates:
            reason = fixed[host.name]
            if reason is None and host.name in received:
                reason = "received instances in this plan"
            if reason is None and self.stop:
                reason = self.stop
            if reason is None:
                reason, gib = _budget(host, params, len(self.moves), self.gib)
            if reason is None:
                pool = pools[host.pool]
                pool.spare.remove(host)
                taken, reason = _empty(self.placement, host, pool, ceiling, wc, wm)
                if taken is None:
                    pool.spare.add(host)
                else:
                    self.moves.extend(taken)
                    self.freed.append(host)
                    received.update(m.destination for m in taken)
                    self.gib += gib
                    if params["max_hosts"] and len(self.freed) >= params["max_hosts"]:
                        self.stop = "max_hosts %d reached" % params["max_hosts"]
            if reason is not None:
                self.notes.append((host.name, reason))

    def best_of(self, hosts):
        """Empty hosts (one pool, or all under a budget) in the order of ORDERS that frees the most.

        Each order is tried from the same state, which is restored exactly afterwards (the
        usage figures are copied back rather than recomputed, so no rounding creeps in). Then a
        second pass: the best order again, with one of the hosts it could not empty (those
        holding the least RAM first, up to PROMOTE of them) tried first; emptying one such host
        sometimes lets more be emptied in all. The best try's moves are then replayed.
        """
        placement = self.placement
        saved = [(h, list(h.used), list(h.abs)) for h in hosts]
        tries = [(order, resource) for _label, order, resource in ORDERS]
        best = None
        number = 0
        while number < len(tries):
            order, resource = tries[number]
            trial = _Run(placement, self.params, self.fixed, self.ceiling)
            trial.empty_hosts(hosts, order, resource)
            score = (len(trial.freed), -trial.gib, -number)
            if best is None or score > best[0]:
                best = (score, trial, number)
            self._undo(trial, saved)
            number += 1
            if number == len(ORDERS):
                tries.extend(self._promotions(hosts, best[1], tries[best[2]]))
        trial = best[1]
        for move in trial.moves:
            placement.move(placement.instances[move.instance], placement.hosts[move.destination])
        self.moves.extend(trial.moves)
        self.freed.extend(trial.freed)
        self.notes.extend(trial.notes)
        self.gib += trial.gib

    def one_more(self, hosts):
        """After the greedy, empty more hosts of one pool, one at a time, all-or-nothing (no budget only).

        A host left used that could be emptied (not fixed, not stuck) is tried, holding the least
        RAM first (at most ONE_MORE_TRIES failures per pool): the instances planned onto it go
        straight to another host instead (their source stays the host they leave; their move
        is re-targeted, not added), and its own instances leave. Each goes to the used host of
        the pool, not emptied, with the least RAM left under the ceiling that takes it within
        every rule (Placement.fits, the ceiling); if none does, one instance already planned to
        move (without server groups) makes room on a host by going to another one instead.
        Any instance that still fits nowhere undoes the whole try.
        """
        placement, fixed, ceiling = self.placement, self.fixed, self.ceiling
        wc, wm = self.params["weight_cpu"], self.params["weight_memory"]
        origin = dict((m.instance, m.source) for m in self.moves)
        freed = set(h.name for h in self.freed)
        kept = [h for h in hosts if h.name not in freed and h.instances]
        held = dict((h.name, math.fsum(i.flavor[1] for i in h.instances.values() if i.id not in origin))
                    for h in kept)
        candidates = sorted((h for h in kept if fixed[h.name] is None and _stuck(h) is None),
                            key=lambda h: (held[h.name], h.name))
        failures = 0
        for host in candidates:
            if failures >= ONE_MORE_TRIES:
                break
            receivers = [h for h in kept if h is not host and h.name not in freed]
            saved = [(h, list(h.used), list(h.abs)) for h in receivers + [host]]
            done = _empty_again(placement, host, receivers, origin, ceiling)
            if done is None:
                failures += 1
                for h, used, load in saved:
                    h.used[:] = used
                    h.abs[:] = load
                continue
            freed.add(host.name)
            self.freed.append(host)
            self.gib += math.fsum(i.flavor[1] for i in done if origin.get(i.id) is None) / 1024.0
            self.notes = [(name, reason) for name, reason in self.notes if name != host.name]
            # The moves, re-built: a re-targeted instance keeps its place in the list.
            index = dict((m.instance, number) for number, m in enumerate(self.moves))
            for inst in done:
                source = origin.get(inst.id) or host.name
                move = Move(inst, source, inst.host.name,
                            "consolidate: empty %s, best fit on %s under max_load_after %g (second pass)" % (
                                source, inst.host.name, ceiling),
                            host_score(placement.hosts[source], wc, wm), host_score(inst.host, wc, wm))
                if inst.id in index:
                    self.moves[index[inst.id]] = move
                else:
                    origin[inst.id] = source
                    index[inst.id] = len(self.moves)
                    self.moves.append(move)

    def _undo(self, trial, saved):
        placement = self.placement
        for move in reversed(trial.moves):
            inst = placement.instances[move.instance]
            placement.move(inst, placement.hosts[move.source])
            inst.moved = False
        for host, used, load in saved:
            host.used[:] = used
            host.abs[:] = load

    def _promotions(self, hosts, trial, best):
        """The second pass's tries: the best order with one host it did not empty put first."""
        order, resource = best
        held = dict((h.name, math.fsum(i.flavor[1] for i in h.instances.values())) for h in hosts
                    if _stuck(h) is None)
        # Hosts left used for want of room (not pinned, not a receiver, not the budget).
        failed = sorted((held[name], name) for name, reason in trial.notes if name in held and (
            " fits on no other used host" in reason or reason.startswith("its instances need")))
        return [((lambda h, ceiling, first=name: (h.name != first,) + order(h, ceiling)), resource)
                for _held, name in failed[:PROMOTE]]


# Hosts one_more may fail to empty in a pool before it stops.
ONE_MORE_TRIES = 6
# Instances _make_room may try to send elsewhere for one instance that fits nowhere.
MAKE_ROOM_TRIES = 40


def _take(placement, inst, receivers, ceiling, skip=None):
    """The receiver with the least RAM left under the ceiling that takes inst within every rule, or None."""
    best = None
    f0, f1, f2 = inst.flavor
    for dest in receivers:
        used, cap = dest.used, dest.cap
        left = ceiling * cap[1] - used[1]
        if (left + EPSILON < f1 or (best is not None and left >= best[0]) or dest is skip or dest is inst.host
                or used[0] + f0 > ceiling * cap[0] + EPSILON or used[2] + f2 > ceiling * cap[2] + EPSILON):
            continue
        # The allocations are checked above (RAM through left): only the loads remain.
        if _load_under_ceiling(inst, dest, ceiling) and placement.fits(inst, dest) is None:
            best = (left, dest)
    return best[1] if best is not None else None


def _settle(placement, inst, was):
    """Undo a tentative move of inst; was is (host it came from, whether it had moved before)."""
    placement.move(inst, was[0])
    inst.moved = was[1]


def _empty_again(placement, host, receivers, origin, ceiling):
    """Instances whose destination changed (each now on its new host), or None with every tentative move undone.

    Instances planned onto host first go back to their source (emptied, so it receives nothing
    in the end) and leave from there, so every rule is checked against the move that will run.
    """
    log = []

    def undo():
        for inst, was in reversed(log):
            _settle(placement, inst, was)
        return None

    back = [i for i in host.instances.values() if i.id in origin]
    if any(i.groups for i in back):
        return None
    for inst in sorted(back, key=lambda i: i.id):
        log.append((inst, (host, True)))
        placement.move(inst, placement.hosts[origin[inst.id]])
    insts = list(host.instances.values()) + back
    insts.sort(key=lambda i: (not i.groups, -i.flavor[1], -i.flavor[0], -i.flavor[2], i.id))
    for inst in insts:
        was = (inst.host, inst.moved)
        dest = _take(placement, inst, receivers, ceiling)
        if dest is None:
            dest = _make_room(placement, inst, receivers, origin, ceiling, log)
        if dest is None:
            return undo()
        log.append((inst, was))
        placement.move(inst, dest)
    # Every instance whose destination changed: those of host, and the planned ones that
    # _make_room sent elsewhere (their moves must be re-targeted too, or the plan would still
    # send them where they no longer fit).
    changed = {}
    for inst, _was in log:
        changed.setdefault(inst.id, inst)
    return list(changed.values())


def _make_room(placement, inst, receivers, origin, ceiling, log):
    """A receiver that takes inst once one instance planned onto it goes to another receiver, or None."""
    order = sorted(receivers, key=lambda h: (ceiling * h.cap[1] - h.used[1], h.name))
    flavor = inst.flavor
    tries = MAKE_ROOM_TRIES
    for dest in order:
        used, cap = dest.used, dest.cap
        for key in sorted(dest.instances):
            other = dest.instances[key]
            if other.id not in origin or other.groups:
                continue
            # Allocations first (cheap): the room other leaves must take inst.
            if any(used[r] - other.flavor[r] + flavor[r] > ceiling * cap[r] + EPSILON for r in (0, 1, 2)):
                continue
            tries -= 1
            if tries < 0:
                return None
            was = (dest, other.moved)
            placement.move(other, placement.hosts[origin[other.id]])
            if _under_ceiling(inst, dest, ceiling) and placement.fits(inst, dest) is None:
                elsewhere = _take(placement, other, receivers, ceiling, skip=dest)
                if elsewhere is not None:
                    log.append((other, was))
                    placement.move(other, elsewhere)
                    return dest
            _settle(placement, other, was)
    return None


def _budget(host, params, count, gib_moved):
    """(reason the budget forbids emptying host or None, GiB that emptying it copies)."""
    gib = math.fsum(i.flavor[1] for i in host.instances.values()) / 1024.0
    if params["max_moves"] and count + len(host.instances) > params["max_moves"]:
        return "its %d moves would exceed max_moves %d" % (len(host.instances), params["max_moves"]), gib
    if params["max_gib"] and gib_moved + gib > params["max_gib"] + 1e-9:
        return "its %.1f GiB would exceed max_gib %g" % (gib, params["max_gib"]), gib
    return None, gib


def _unit_under_ceiling(unit, host, ceiling):
    """Whether host stays under the ceiling with every instance of unit added."""
    used, cap = host.used, host.cap
    for index in (0, 1, 2):
        if used[index] + math.fsum(i.flavor[index] for i in unit) > ceiling * cap[index] + EPSILON:
            return False
    for metric in (0, 1):
        if host.measured[metric] and (host.abs[metric] + math.fsum(i.contribution(host, metric) for i in unit)
                                      > ceiling * host.denom[metric] + EPSILON):
            return False
    return True


def _unit_fit(placement, group, unit, pool, ceiling):
    """Move the unit (soft-affinity members) together to the best fit; (host, tier) or (None, None)."""
    for tier in (pool.keep, pool.spare):
        need = math.fsum(i.flavor[tier.resource] for i in unit)
        order = tier.order
        start = bisect.bisect_left(order, (need - EPSILON, ""))
        for entry in list(order[start:]):
            dest = tier.by_name[entry[1]]
            if not _unit_under_ceiling(unit, dest, ceiling):
                continue
            tier.remove(dest)
            if drain.move_together(placement, group, unit, dest):
                return dest, tier
            tier.add(dest)
    return None, None


def _empty(placement, host, pool, ceiling, wc, wm):
    """Moves that empty host, or (None, reason) with every tentative move undone.

    Instances in server groups go first (they have the fewest places to go), then the largest.
    Members of a soft-affinity group move together, as in a drain.
    """
    first = pool.resource
    insts = sorted(host.instances.values(),
                   key=lambda i: (not i.groups, -i.flavor[first], -i.flavor[1], -i.flavor[0], -i.flavor[2], i.id))
    need = [math.fsum(i.flavor[r] for i in insts) for r in (0, 1, 2)]
    for index in (0, 1, 2):
        if need[index] > pool.room(index) + EPSILON:
            return None, ("its instances need %g %s, the other used hosts of its pool have %g left under"
                          " max_load_after %g" % (need[index], RESOURCE_NAMES[index], max(0.0, pool.room(index)),
                                                  ceiling))
    done = []
    for group, unit in drain.soft_affinity_units(insts):
        if group is None:
            inst = unit[0]
            dest, tier, why = pool.best_fit(placement, inst, ceiling)
            if dest is not None:
                tier.remove(dest)
                placement.move(inst, dest)
        else:
            dest, tier = _unit_fit(placement, group, unit, pool, ceiling)
            why = "its %d members of soft-affinity group %s fit together on no other used host" % (
                len(unit), group.name or group.id)
        if dest is None:
            for moved, target, was in reversed(done):
                pool.keep.remove(target)
                for inst in reversed(moved):
                    placement.move(inst, host)
                    inst.moved = False
                was.add(target)
            return None, "%s fits on no other used host: %s" % (unit[0].name, why)
        # A host that receives stays used: it joins the keepers.
        pool.keep.add(dest)
        done.append((unit, dest, tier))
    moves = []
    left = len(insts)
    for unit, dest, _tier in done:
        for inst in unit:
            left -= 1
            moves.append(Move(inst, host.name, dest.name,
                              "consolidate: empty %s (%d left), best fit on %s under max_load_after %g" % (
                                  host.name, left, dest.name, ceiling),
                              host_score(host, wc, wm), host_score(dest, wc, wm)))
    return moves, None


BOUND_RESOURCES = RESOURCE_NAMES + ("cpu_load", "memory_load")


def _spare(host, ceiling):
    """What host can still take under the ceiling: vCPU, RAM, disk allocations, CPU and memory load.

    For a host without a measurement of a metric the load is its allocation, so that entry
    repeats the allocation's.
    """
    used, cap = host.used, host.cap
    return [ceiling * cap[0] - used[0], ceiling * cap[1] - used[1], ceiling * cap[2] - used[2],
            ceiling * host.denom[0] - host.abs[0], ceiling * host.denom[1] - host.abs[1]]


def _kinds(hosts, fixed):
    """The smallest demand of each flavor among the instances that could leave their host.

    Key: flavor; value: (vCPU, RAM, disk, least CPU load added, least memory load added), where
    what an instance adds to a host's load is the smaller of its measured load and its flavor
    (the host's kind of measurement decides which one counts).
    """
    kinds = {}
    for host in hosts:
        if fixed[host.name] is not None:
            continue
        for inst in host.instances.values():
            cpu = min(inst.by_mode[0])
            mem = min(inst.by_mode[1])
            seen = kinds.get(inst.flavor)
            if seen is None:
                kinds[inst.flavor] = [inst.flavor[0], inst.flavor[1], inst.flavor[2], cpu, mem]
            else:
                seen[3] = min(seen[3], cpu)
                seen[4] = min(seen[4], mem)
    return kinds


def _takes(spare, demand):
    for index in range(5):
        if demand[index] > spare[index] + EPSILON:
            return False
    return True


def _usable(room, demands):
    """Room per resource that the instances able to come (demands) can actually fill.

    An allocation r arrives with at least r / s of allocation or load s for some flavor that
    fits, at most the largest such ratio, so the room in r is at most the room in s times it.
    """
    result = list(room)
    for r in (0, 1, 2):
        for s in range(5):
            if s == r or room[s] < 0:
                continue
            ratio = 0.0
            for demand in demands:
                if demand[r] <= 0:
                    continue
                if demand[s] <= 0:
                    ratio = None
                    break
                ratio = max(ratio, demand[r] / demand[s])
            if ratio is not None:
                result[r] = min(result[r], room[s] * ratio)
    return result


def _step(sizes):
    """The greatest common divisor of whole-number sizes, or None (then room is not rounded)."""
    step = 0
    for size in sizes:
        if size < 0 or not float(size).is_integer():
            return None
        step = _gcd(step, int(size))
    return step or None


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def _round_down(value, step):
    """Room rounded down to what whole instances can fill: a sum of sizes is a multiple of their gcd."""
    if step is None or value <= 0:
        return value
    return math.floor((value + EPSILON) / step) * step


def _stuck(host):
    """Why no plan of consolidate can move one of host's instances (beyond _fixed_reason), or None.

    An instance of a hard-affinity group sharing the host with another member never moves:
    a member moves only to the host holding all the others.
    """
    for key in sorted(host.instances):
        inst = host.instances[key]
        for group in inst.groups:
            if group.policy == "affinity" and group.counts.get(host.name, 0) >= 2:
                return "holds %s, which stays: affinity group %s keeps its members together" % (
                    inst.name, group.name or group.id)
    return None


# Mixes of two resources tried on top of each single one (see _fewest).
MIXES = tuple((a, b, t) for a in range(5) for b in range(a + 1, 5) for t in (0.25, 0.5, 0.75))


def _fewest(stay, others, spare):
    """(fewest of others that stay used too, what binds): see _needed.

    With E the hosts emptied and w(h, r) = demand(h, r) + spare(h, r), every resource r
    needs ``sum over E of w(h, r) <= total spare(r)``. Any non-negative mix of these
    inequalities holds too, and the most hosts that fit one of them (smallest first) bounds
    how many can be emptied. Single resources, mixes of two and the even mix of all are tried.
    """
    demand = [[math.fsum(i.flavor[r] for i in h.instances.values()) for r in (0, 1, 2)]
              + [math.fsum(min(i.by_mode[m]) for i in h.instances.values()) for m in (0, 1)] for h in others]
    total = [math.fsum(spare[h.name][r] for h in stay) + math.fsum(spare[h.name][r] for h in others) for r in range(5)]
    weights = []
    for host, need in zip(others, demand):
        room = spare[host.name]
        weight = [need[r] + room[r] for r in range(5)]
        # A resource with no room anywhere: a host holding any of it cannot be emptied.
        if any(total[r] <= EPSILON and weight[r] > EPSILON for r in range(5)):
            continue
        weights.append([weight[r] / total[r] if total[r] > EPSILON else 0.0 for r in range(5)])
    # RAM first: on a tie it is named as the binding resource.
    mixes = [(((r, 1.0),), BOUND_RESOURCES[r]) for r in (1, 0, 2, 3, 4)]
    mixes += [(((a, t), (b, 1.0 - t)), "%s+%s" % (BOUND_RESOURCES[a], BOUND_RESOURCES[b])) for a, b, t in MIXES]
    mixes.append((tuple((r, 0.2) for r in range(5)), "all resources"))
    most, binding = len(weights), "cannot_be_emptied"
    for mix, label in mixes:
        values = sorted(math.fsum(share * weight[r] for r, share in mix) for weight in weights)
        limit = math.fsum(share for _r, share in mix) * (1.0 + 1e-9) + EPSILON
        count, acc = 0, 0.0
        for value in values:
            acc += value
            if acc > limit:
                break
            count += 1
        if count < most:
            most, binding = count, label
    return len(others) - most, binding


def _needed(members, fixed, ceiling):
    """Per pool, before any move: (fewest hosts any plan of consolidate can end with, binding, facts).

    A valid lower bound, checked against the CP-SAT optimum in the benchmark. Used hosts that
    stay used (K) keep everything they hold; those emptied (E) send their instances to K,
    where a host that receives ends under the ceiling. So for each resource r the room left
    under the ceiling in K covers what E holds:
    ``sum over K of spare(h, r) >= sum over E of demand(h, r)``. Hosts that cannot be emptied
    are in K; each other host put in K adds its spare and takes its demand off, so the fewest
    hosts follow from adding the others largest (spare + demand) first. A host with no room
    under the ceiling for any instance that could come (already above it in some resource, or
    below the smallest flavor) receives nothing and has no spare in any resource; a host
    holding an instance that no other host has room for is never emptied. Server groups and
    aggregates beyond the pool are left out, which keeps the bound valid, only weaker.
    """
    result = {}
    for key, hosts in members.items():
        kinds = _kinds(hosts, fixed)
        spare = {}
        takers = dict((flavor, []) for flavor in kinds)
        steps = [_step(flavor[r] for flavor in kinds) for r in (0, 1, 2)] + [None, None]
        cannot_receive = 0
        for host in hosts:
            room = _spare(host, ceiling)
            fitting = [flavor for flavor in sorted(kinds) if _takes(room, kinds[flavor])]
            if not fitting:
                room = [0.0] * 5
                cannot_receive += 1
            for flavor in fitting:
                if len(takers[flavor]) < 2:
                    takers[flavor].append(host.name)
            room = _usable(room, [kinds[flavor] for flavor in fitting])
            spare[host.name] = [max(0.0, _round_down(value, steps[r])) for r, value in enumerate(room)]
        stay, others = [], []
        for host in hosts:
            kept = fixed[host.name] is not None or _stuck(host) is not None
            if not kept:
                for inst in host.instances.values():
                    if not [name for name in takers[inst.flavor] if name != host.name]:
                        kept = True
                        break
            (stay if kept else others).append(host)
        result_pool = _fewest(stay, others, spare)
        best = (len(stay) + result_pool[0], result_pool[1]) if result_pool[0] else (len(stay), "cannot_be_emptied")
        result[key] = best + ({"cannot_be_emptied": len(stay), "cannot_receive": cannot_receive},)
    return result


def _bound(members, needed, freed, ceiling):
    """Hosts used before and after against the fewest that could hold the instances, per pool."""
    freed_names = set(h.name for h in freed)
    pools = []
    total_before = total_after = total_need = 0
    for key in sorted(members, key=pool_label):
        hosts = members[key]
        need, binding, facts = needed[key]
        after = len(hosts) - sum(1 for h in hosts if h.name in freed_names)
        pools.append({"pool": pool_label(key), "hosts_used_before": len(hosts), "hosts_used_after": after,
                      "hosts_needed_at_least": need, "gap": after - need,
                      "cannot_be_emptied": facts["cannot_be_emptied"], "cannot_receive": facts["cannot_receive"],
                      "binding": binding})
        total_before += len(hosts)
        total_after += after
        total_need += need
    return {
        "hosts_used_before": total_before, "hosts_used_after": total_after, "hosts_needed_at_least": total_need,
        "gap": total_after - total_need, "freed": len(freed), "max_load_after": ceiling, "by_pool": pools,
        "note": "per pool (az + aggregates): the hosts that cannot be emptied, plus the fewest others that must"
                " stay used so that the room left under max_load_after on the hosts that stay takes what the"
                " emptied hosts hold, per resource (and mix of two); no plan of consolidate can use fewer",
    }
