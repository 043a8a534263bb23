# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``consolidate``: empty whole hosts by packing their instances onto other used hosts.

Hosts are tried fewest instances first, then least used (the larger of their vCPU and RAM
allocation fractions), then by name. A host is planned empty only if every one of its instances
fits elsewhere (all-or-nothing per host); otherwise its tentative moves are undone and the
reason is listed. Instances in server groups go first, then the largest; members of a
soft-affinity group on the host move together. Each goes to the best fit among the hosts that
stay used anyway (they cannot be emptied, or already received): the one of its pool (same AZ
and aggregates) with the least RAM left under the ceiling that still takes it within every
rule; only if none does, to the used host that the emptying order would try last. The ceiling
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
compute service and power them off once the moves are done. The bound is the fewest hosts the
instances could fit on: per pool and per resource, the hosts that cannot be emptied plus the
fewest others whose capacity (under the ceiling, or what they hold now if more) covers the
demand.
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
    """The used hosts of one pool that may receive, ordered by RAM left under the ceiling.

    ``room`` sums, per resource, what all of them can still take under the ceiling, so a host
    whose instances need more than that is rejected without trying.
    """

    def __init__(self, hosts, ceiling):
        self.ceiling = ceiling
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
        key = (left[1], host.name)
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
    for metric in (0, 1):
        if host.measured[metric] and (host.abs[metric] + inst.contribution(host, metric)
                                      > ceiling * host.denom[metric] + EPSILON):
            return False
    return True


def _best_fit(placement, inst, pool, ceiling):
    """The receiver with the least RAM left under the ceiling that takes inst, or (None, why)."""
    order = pool.order
    start = bisect.bisect_left(order, (inst.flavor[1] - EPSILON, ""))
    why = None
    for index in range(start, len(order)):
        host = pool.by_name[order[index][1]]
        if not _under_ceiling(inst, host, ceiling):
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
    start = bisect.bisect_left(pool.order, (inst.flavor[1] - EPSILON, ""))
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

    def __init__(self, hosts, fixed, ceiling, rank):
        self.rank = rank
        self.keep = _Receivers([h for h in hosts if fixed[h.name] is not None], ceiling)
        self.spare = _Receivers([h for h in hosts if fixed[h.name] is None], ceiling)

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
    candidates = sorted(used, key=lambda h: (len(h.instances), _fraction(h), h.name))
    rank = dict((h.name, number) for number, h in enumerate(candidates))
    pools = dict((key, _Pool(hosts, fixed, ceiling, rank)) for key, hosts in members.items())
    needed = _needed(members, fixed, ceiling)

    moves, freed, received, notes = [], [], set(), {}
    gib_moved = 0.0
    stop = None
    for host in candidates:
        reason = fixed[host.name]
        if reason is None and host.name in received:
            reason = "received instances in this plan"
        if reason is None and stop:
            reason = stop
        if reason is None:
            reason, gib = _budget(host, params, len(moves), gib_moved)
        if reason is None:
            pool = pools[host.pool]
            pool.spare.remove(host)
            taken, reason = _empty(placement, host, pool, ceiling, wc, wm)
            if taken is None:
                pool.spare.add(host)
            else:
                moves.extend(taken)
                freed.append(host)
                received.update(m.destination for m in taken)
                gib_moved += gib
                if params["max_hosts"] and len(freed) >= params["max_hosts"]:
                    stop = "max_hosts %d reached" % params["max_hosts"]
        if reason is not None:
            notes[host.name] = reason
    for host in candidates:
        if host.name in notes:
            result.skipped.append({"kind": "host", "name": host.name, "reason": "not emptied: %s" % notes[host.name]})
    result.freed_hosts = sorted(h.name for h in freed)
    finish(result, placement, moves, params)
    result.bound = _bound(members, needed, fixed, freed, ceiling)
    if moves:
        result.reason = "%d moves free %d of %d used hosts (at least %d needed, gap %d)" % (
            len(moves), len(freed), len(used), result.bound["hosts_needed_at_least"], result.bound["gap"])
    elif not used:
        result.reason = "no moves: no active host holds instances"
    else:
        result.reason = "no moves: no host can be emptied within the rules and max_load_after %g (see skipped)" % ceiling
    return result


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
    need = math.fsum(i.flavor[1] for i in unit)
    for tier in (pool.keep, pool.spare):
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
    insts = sorted(host.instances.values(),
                   key=lambda i: (not i.groups, -i.flavor[1], -i.flavor[0], -i.flavor[2], i.id))
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


def _pool_label(key):
    az, aggregates = key
    label = "az %s" % (az or "(none)") if az is not None else "all azs"
    if aggregates is not None:
        label += ", aggregates %s" % (",".join(aggregates) or "(none)")
    return label


def _needed(members, fixed, ceiling):
    """Per pool, before any move: (fewest hosts that could hold its instances, binding resource).

    The hosts that cannot be emptied stay used; the demand they cannot hold needs the fewest
    others, largest first. A host that receives ends under the ceiling and one that does not
    keeps what it holds, so each host can hold at most the larger of the two.
    """
    result = {}
    for key, hosts in members.items():
        stay = [h for h in hosts if fixed[h.name] is not None]
        others = [h for h in hosts if fixed[h.name] is None]
        best = (len(stay), "cannot_be_emptied")
        for index in (1, 0, 2):
            demand = math.fsum(h.used[index] for h in hosts)
            have = math.fsum(max(ceiling * h.cap[index], h.used[index]) for h in stay)
            room = sorted((max(ceiling * h.cap[index], h.used[index]) for h in others), reverse=True)
            count = 0
            while have < demand - EPSILON and count < len(room):
                have += room[count]
                count += 1
            if len(stay) + count > best[0]:
                best = (len(stay) + count, RESOURCE_NAMES[index])
        result[key] = best
    return result


def _bound(members, needed, fixed, freed, ceiling):
    """Hosts used before and after against the fewest that could hold the instances, per pool."""
    freed_names = set(h.name for h in freed)
    pools = []
    total_before = total_after = total_need = 0
    for key in sorted(members, key=_pool_label):
        hosts = members[key]
        need, binding = needed[key]
        after = len(hosts) - sum(1 for h in hosts if h.name in freed_names)
        pools.append({"pool": _pool_label(key), "hosts_used_before": len(hosts), "hosts_used_after": after,
                      "hosts_needed_at_least": need, "gap": after - need,
                      "cannot_be_emptied": sum(1 for h in hosts if fixed[h.name] is not None),
                      "binding": binding})
        total_before += len(hosts)
        total_after += after
        total_need += need
    return {
        "hosts_used_before": total_before, "hosts_used_after": total_after, "hosts_needed_at_least": total_need,
        "gap": total_after - total_need, "freed": len(freed), "max_load_after": ceiling, "by_pool": pools,
        "note": "per pool (az + aggregates) and resource: the hosts that cannot be emptied, plus the fewest"
                " others whose capacity under max_load_after (or what they hold now, if more) covers the demand",
    }
