# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``drain``: empty the named hosts, spreading their instances over the others.

The instances of the hosts in ``hosts`` are placed largest first (RAM, then vCPUs), each on
the host of its pool (same AZ and aggregates) that keeps every rule and has the lowest score
after the move, so the load lands on the idlest hosts and the cloud ends level, not piled up.
Drained hosts never receive; empty hosts receive only with ``use_empty_hosts``.

All-or-nothing by default: if any instance that must leave cannot (no room, a server-group
rule, pinned, not migratable, busy, the budget), the plan has no moves and ``skipped`` names
each such instance with its reason (``blocking: true``). With ``partial: true`` the plan moves
what fits and lists the rest the same way. Stopped (SHUTOFF) instances cannot be
live-migrated; they stay on the host and do not block: they are listed in the plan's
``staying``, not in ``skipped`` (M(cloudops.leveller.evacuate_host) reads ``skipped`` as what
did not fit, and can cold-migrate stopped instances itself with ``migrate_stopped``).

A drain ignores ``cooldown`` unless it is set (default 0): a host going into maintenance has to
be emptied even of instances that moved recently.

The bound is on time: every instance must be copied once, so the drain takes at least
RAM to copy / (``bandwidth_mbps`` x parallelism); the plan also reports its own estimate
(each wave lasts as long as its largest copy) and the gap.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import (
    COMMON_PARAMS, Move, Plan, PlanError, effective_params, finish, host_score, rnd,
    snapshot_figures, _check_bool, _check_names, _check_number,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import digest
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies._common import HostHeap

NAME = "drain"
PARAMS = dict(COMMON_PARAMS)
PARAMS.update({
    "hosts": ([], _check_names),
    "use_empty_hosts": (False, _check_bool),
    "partial": (False, _check_bool),
    # Megabits (10^6 bit) per second that one live migration copies at; 10 GbE by default.
    "bandwidth_mbps": (10000.0, lambda n, v: _check_number(n, v, 0, exclusive=True)),
    # A drain must empty the hosts: no move budget and no cooldown unless asked for.
    "max_moves": (0, lambda n, v: _check_number(n, v, 0, integer=True)),
    "cooldown": (0, lambda n, v: _check_number(n, v, 0, integer=True)),
})

STOPPED_STATUSES = ("SHUTOFF",)
# Mbit in one MiB: 2**20 bytes * 8 bits / 10**6.
MBIT_PER_MIB = 8.388608
# How many of a pool's idlest hosts are looked at first, then if none of them fits.
CANDIDATES = (8, 64)


class DrainPlan(Plan):
    """A Plan that also says which hosts it empties."""

    def __init__(self, strategy, params, snapshot_digest):
        super(DrainPlan, self).__init__(strategy, params, snapshot_digest)
        self.drained_hosts = []
        self.staying = []

    def to_dict(self):
        result = super(DrainPlan, self).to_dict()
        result["drained_hosts"] = list(self.drained_hosts)
        result["staying"] = [dict(entry) for entry in self.staying]
        return result


def _resolve(placement, names):
    """HostStates for the names (host name or hypervisor hostname); unknown names are an error."""
    by_name = {}
    for host in placement.host_list:
        by_name[host.name] = host
        if host.host.hypervisor_hostname:
            by_name.setdefault(host.host.hypervisor_hostname, host)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise PlanError("hosts: unknown host %s (not in the snapshot)" % ", ".join(unknown))
    found = dict((by_name[n].name, by_name[n]) for n in names)
    return [found[name] for name in sorted(found)]


def plan(snapshot, params=None):
    """Plan the moves that empty params['hosts']; returns a Plan (a DrainPlan)."""
    params = effective_params(PARAMS, params)
    if not params["hosts"]:
        raise PlanError("hosts: name at least one host to drain")
    placement = Placement(snapshot, params)
    result = DrainPlan(NAME, params, digest(snapshot))
    drained = _resolve(placement, params["hosts"])
    wc, wm = params["weight_cpu"], params["weight_memory"]
    for host in drained:
        # Never a destination, and not part of the spread of the hosts that remain.
        host.active = False
        host.inactive_reason = "being drained"
    result.before = snapshot_figures(placement, wc, wm)
    drained_names = set(h.name for h in drained)
    result.skipped = [{"kind": "host", "name": h.name, "reason": "not a destination: %s" % h.inactive_reason}
                      for h in placement.host_list if not h.active and h.name not in drained_names]

    to_move, blocking, staying = _sort_out(placement, drained)
    moves, unplaced = _place(placement, to_move, params)
    blocking.extend(unplaced)
    failed = bool(blocking) and not params["partial"]
    if failed:
        for move in reversed(moves):
            inst = placement.instances[move.instance]
            placement.move(inst, placement.hosts[move.source])
            inst.moved = False
        moves = []
    entries = [_entry(inst, reason, True) for inst, reason in blocking]
    result.skipped.extend(sorted(entries, key=lambda e: (e["host"], e["id"])))
    result.staying = sorted((_entry(inst, reason, False) for inst, reason in staying),
                            key=lambda e: (e["host"], e["id"]))
    if not failed:
        kept = set(inst.source.name for inst, _reason in blocking)
        result.drained_hosts = [h.name for h in drained if h.name not in kept]
    result.reason = _reason(drained, moves, blocking, staying, failed, params)
    finish(result, placement, moves, params)
    result.bound = _bound(moves, to_move, blocking, drained, params)
    return result


def _entry(inst, reason, blocking):
    # ``instance`` as well as ``id``: evacuate_host reads the instance id from that key.
    return {"kind": "instance", "id": inst.id, "instance": inst.id, "name": inst.name,
            "host": inst.source.name, "reason": reason, "blocking": blocking}


def _sort_out(placement, drained):
    """Split the drained hosts' instances: (to move, cannot move, stopped and staying)."""
    to_move, blocking, staying = [], [], []
    for host in drained:
        down = None
        if host.host.forced_down or not host.host.up:
            down = ("%s is down: its instances cannot be live-migrated; if it has failed, use"
                    " evacuate_host state=evacuated" % host.name)
        for key in sorted(host.instances):
            inst = host.instances[key]
            if inst.instance.status in STOPPED_STATUSES and not inst.instance.task_state:
                staying.append((inst, "stopped (%s): not live-migrated, stays on %s unless"
                                      " evacuate_host migrate_stopped cold-migrates it"
                                % (inst.instance.status, host.name)))
            elif down:
                blocking.append((inst, down))
            elif inst.skip:
                blocking.append((inst, inst.skip))
            else:
                to_move.append(inst)
    # Largest first: the big ones are the hard ones to fit.
    to_move.sort(key=lambda i: (-i.flavor[1], -i.flavor[0], -i.flavor[2], i.id))
    return to_move, blocking, staying


def soft_affinity_units(to_move):
    """The instances in placing order, members of a soft-affinity group on one host together.

    Moving such members one by one would spread the group at the first move, which the
    placement rules refuse; moved together to one host, the group spans as many hosts as before.
    """
    units, by_key = [], {}
    for inst in to_move:
        soft = sorted((g for g in inst.groups if g.policy == "soft-affinity" and g.counts.get(inst.host.name, 0) > 1),
                      key=lambda g: g.id)
        if not soft:
            units.append((None, [inst]))
            continue
        key = (inst.host.name, soft[0].id)
        if key in by_key:
            by_key[key][1].append(inst)
        else:
            by_key[key] = (soft[0], [inst])
            units.append(by_key[key])
    return units


def _left_behind(group, unit):
    """Why unit cannot leave without the rest of its group on the same host, or None."""
    source = unit[0].host
    staying = group.counts.get(source.name, 0) - len(unit)
    if staying > 0:
        return ("soft-affinity group %s keeps its members together and %d of them cannot leave %s"
                % (group.name or group.id, staying, source.name))
    return None


def _place(placement, to_move, params):
    """Place each instance (or soft-affinity unit) on a pool host with the lowest score after it."""
    wc, wm = params["weight_cpu"], params["weight_memory"]
    use_empty = params["use_empty_hosts"]
    max_moves, max_gib = params["max_moves"], params["max_gib"]
    receivers = [h for h in placement.host_list if h.active and (use_empty or h.instances)]
    scores = dict((h.name, host_score(h, wc, wm)) for h in receivers)
    members = {}
    for host in receivers:
        members.setdefault(host.pool, []).append(host)
    heaps = dict((key, HostHeap(scores, hosts)) for key, hosts in members.items())
    moves, unplaced = [], []
    gib_moved = 0.0
    for group, unit in soft_affinity_units(to_move):
        gib = math.fsum(inst.flavor[1] for inst in unit) / 1024.0
        if max_moves and len(moves) + len(unit) > max_moves:
            unplaced.extend((inst, "budget spent: max_moves %d" % max_moves) for inst in unit)
            continue
        if max_gib and gib_moved + gib > max_gib + 1e-9:
            unplaced.extend((inst, "budget spent: max_gib %g" % max_gib) for inst in unit)
            continue
        source = unit[0].host
        pool = members.get(source.pool, [])
        before = None
        if group is None:
            inst = unit[0]
            dest = _destination(placement, inst, heaps.get(source.pool), pool, scores, wc, wm)
            if dest is None:
                unplaced.append((inst, _why_not(placement, inst, pool, use_empty)))
                continue
            before = scores[dest.name]
            placement.move(inst, dest)
            how = "to the idlest host that takes it"
        else:
            behind = _left_behind(group, unit)
            if behind:
                unplaced.extend((inst, behind) for inst in unit)
                continue
            dest, before = _unit_destination(placement, group, unit, heaps.get(source.pool), pool, scores)
            if dest is None:
                unplaced.extend((inst, "nowhere to go: no host of its pool takes the %d members of soft-affinity"
                                       " group %s on %s together" % (len(unit), group.name or group.id, source.name))
                                for inst in unit)
                continue
            how = "with its soft-affinity group %s" % (group.name or group.id)
        scores[dest.name] = host_score(dest, wc, wm)
        heaps[source.pool].push(dest)
        gib_moved += gib
        for inst in unit:
            moves.append(Move(inst, source.name, dest.name, "drain %s: %s, %s %.3f -> %.3f" % (
                source.name, how, dest.name, before, scores[dest.name]),
                host_score(source, wc, wm), scores[dest.name]))
    return moves, unplaced


def _unit_destination(placement, group, unit, heap, pool, scores):
    """Move the unit to a host already holding members of group, else the idlest that takes all.

    Returns (host, its score before) with the moves applied, or (None, None) with none applied.
    """
    if heap is None:
        return None, None
    tried = set()
    batches = [[h for h in pool if group.counts.get(h.name)]]
    batches += [heap.first(size) for size in CANDIDATES + (len(pool),)]
    for batch in batches:
        for dest in batch:
            if dest.name in tried:
                continue
            tried.add(dest.name)
            before = scores[dest.name]
            if move_together(placement, group, unit, dest):
                return dest, before
    return None, None


def move_together(placement, group, unit, dest):
    """Move every instance of unit to dest, or none of them; True when they all moved."""
    source = unit[0].host
    done = []
    for inst in unit:
        if not done and not group.counts.get(dest.name):
            # The first member alone would spread the group; the rest follow it to dest.
            index = inst.groups.index(group)
            del inst.groups[index]
            reason = placement.fits(inst, dest)
            inst.groups.insert(index, group)
        else:
            reason = placement.fits(inst, dest)
        if reason is not None:
            for moved in reversed(done):
                placement.move(moved, source)
                moved.moved = False
            return False
        placement.move(inst, dest)
        done.append(inst)
    return True


def _score_after(inst, dest, score, wc, wm):
    return (score + wc * inst.contribution(dest, 0) / dest.denom[0]
            + wm * inst.contribution(dest, 1) / dest.denom[1])


def _destination(placement, inst, heap, pool, scores, wc, wm):
    """The host with the lowest score after taking inst among the idlest that keep every rule."""
    if heap is None:
        return None
    tried = set()
    for size in CANDIDATES + (len(pool),):
        best = None
        for dest in heap.first(size):
            if dest.name in tried:
                continue
            tried.add(dest.name)
            if placement.fits(inst, dest) is None:
                key = (_score_after(inst, dest, scores[dest.name], wc, wm), dest.name)
                if best is None or key < best[0]:
                    best = (key, dest)
        if best is not None:
            return best[1]
        if len(tried) >= len(pool):
            break
    return None


def _why_not(placement, inst, pool, use_empty):
    """Why no host takes inst: the rules that stopped it, counted over the candidate hosts."""
    if not pool:
        return ("nowhere to go: no %shost in its pool (same az%s) can receive" % (
            "" if use_empty else "non-empty ",
            " and aggregates" if placement.keep_aggregates else ""))
    counts = {}
    for dest in pool:
        reason = placement.fits(inst, dest)
        if reason is None:
            continue
        text = reason.replace(dest.name, "the host").replace("the host has", "has")
        counts[text] = counts.get(text, 0) + 1
    parts = ["%d: %s" % (n, text) for text, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "nowhere to go: none of the %d candidate hosts of its pool takes it (%s)" % (
        len(pool), "; ".join(parts[:4]) + ("; ..." if len(parts) > 4 else ""))


def _reason(drained, moves, blocking, staying, failed, params):
    names = ", ".join(h.name for h in drained)
    stay = " (%d stopped instances stay)" % len(staying) if staying else ""
    if failed:
        return ("no moves: %d instances of %s cannot be moved (see skipped, blocking=true); a drain"
                " is all-or-nothing unless partial is true" % (len(blocking), names))
    if blocking:
        return "%d moves; partial drain of %s: %d instances stay (see skipped)%s" % (
            len(moves), names, len(blocking), stay)
    if not moves:
        return "no moves: %s hold no instance that has to move%s" % (names, stay)
    return "%d moves empty %s%s" % (len(moves), names, stay)


def _bound(moves, to_move, blocking, drained, params):
    """Makespan: RAM to copy over (bandwidth x parallelism), against the plan's own estimate."""
    bandwidth = params["bandwidth_mbps"]
    per_host = params["max_per_host"]
    # What has to be copied: the planned moves, or everything that must leave when none is planned.
    planned = moves or []
    if planned:
        memory = [(m.source, m.memory_mb) for m in planned]
    else:
        memory = [(i.source.name, i.flavor[1]) for i in to_move]
        memory += [(i.source.name, i.flavor[1]) for i, _r in blocking]
    total_mb = math.fsum(mb for _src, mb in memory)
    by_source = {}
    for name, mb in memory:
        by_source[name] = by_source.get(name, 0.0) + mb
    # Every move leaves a drained host, and max_per_host caps each host's moves in a wave.
    parallel = min(params["max_parallel"], max(1, len(by_source)) * per_host)
    seconds = total_mb * MBIT_PER_MIB / (bandwidth * parallel)
    if by_source:
        seconds = max(seconds, max(by_source.values()) * MBIT_PER_MIB / (bandwidth * per_host),
                      max(mb for _src, mb in memory) * MBIT_PER_MIB / bandwidth)
    result = {
        "ram_to_copy_gib": rnd(total_mb / 1024.0), "bandwidth_mbps": rnd(bandwidth),
        "parallelism": parallel, "makespan_s_at_least": rnd(seconds),
        "note": "a drain copies each instance's RAM once: it takes at least RAM / (bandwidth_mbps"
                " x parallelism), parallelism = min(max_parallel, hosts drained x max_per_host);"
                " the estimate lets each wave last as long as its largest copy",
    }
    if planned:
        longest = {}
        for move in planned:
            longest[move.wave] = max(longest.get(move.wave, 0.0), move.memory_mb)
        estimate = math.fsum(longest.values()) * MBIT_PER_MIB / bandwidth
        result["makespan_s_estimate"] = rnd(estimate)
        result["makespan_gap_s"] = rnd(estimate - seconds)
    else:
        result["makespan_s_estimate"] = None
        result["makespan_gap_s"] = None
    return result
