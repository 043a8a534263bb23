# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy ``home``: send instances back to the host they were taken from.

When M(cloudops.leveller.evacuate_host) drains a host for maintenance or evacuates a failed one,
each instance it moves records the host it came from in its metadata, ``leveller:home``. Once
that host is back (up, enabled, in scope), this strategy plans a live migration of each such
instance back to it, through the same rules as every plan: room on the home host, server
groups, AZ and aggregates (the home host is in the instance's pool by construction, unless the
pool changed since), pins, locks, status, ``exclude``, ``cooldown`` and the budget
(``max_moves``, ``max_gib``).

Each instance that cannot go back is listed in ``skipped`` with its reason (the home host is
still disabled or down, it is not in the snapshot any more, it has no room, a server-group rule,
the instance is pinned, stopped, busy...). Instances already on their home host are counted in
``bound.already_home``; the executor removes ``leveller:home`` from an instance once a move has
landed it on that host, so the record lasts exactly as long as the instance is away.

``hosts`` limits the plan to instances whose home is one of those hosts (the usual case:
``restore.yml -e host=cmp042``); empty means every recorded home. ``cooldown`` defaults to 0,
as in ``drain``: coming back after a maintenance window should not wait for the drain's moves
to age. Largest instances go first (RAM, then vCPUs), so when the home host has less room than
before, the small ones are the ones left out and the list says so.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import (
    COMMON_PARAMS, Move, Plan, effective_params, finish, host_score, snapshot_figures, _check_names, _check_number,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import HOME_METADATA_KEY as HOME_KEY, digest

NAME = "home"
PARAMS = dict(COMMON_PARAMS)
PARAMS.update({
    "hosts": ([], _check_names),
    # Coming home ignores the drain's own recent moves unless asked to wait.
    "cooldown": (0, lambda n, v: _check_number(n, v, 0, integer=True)),
    # Every instance away from home goes back unless a budget is set.
    "max_moves": (0, lambda n, v: _check_number(n, v, 0, integer=True)),
})


def _away(placement, wanted):
    """[(instance state, home name)] of the instances recorded as away from a wanted home."""
    away, already = [], 0
    for key in sorted(placement.instances):
        inst = placement.instances[key]
        home = (inst.instance.metadata or {}).get(HOME_KEY)
        if not isinstance(home, str) or not home:
            continue
        if wanted and home not in wanted:
            continue
        if inst.host.name == home:
            already += 1
            continue
        away.append((inst, home))
    away.sort(key=lambda pair: (pair[1], -pair[0].flavor[1], -pair[0].flavor[0], pair[0].id))
    return away, already


def _why_not_home(placement, inst, home):
    """Why inst cannot go back to its home host now, or None."""
    target = placement.hosts.get(home)
    if target is None:
        return "home host %s is not in the snapshot (removed, renamed, or out of the gathered scope)" % home
    if not target.receivable:
        return "home host %s is not back yet: %s" % (home, target.inactive_reason)
    reason = placement.movable(inst)
    if reason:
        return reason
    reason = placement.fits(inst, target)
    if reason:
        return "cannot go back to %s: %s" % (home, reason)
    return None


def plan(snapshot, params=None):
    """Plan the moves that bring instances back to their ``leveller:home``; returns a Plan."""
    params = effective_params(PARAMS, params)
    placement = Placement(snapshot, params)
    result = Plan(NAME, params, digest(snapshot))
    wc, wm = params["weight_cpu"], params["weight_memory"]
    result.before = snapshot_figures(placement, wc, wm)
    wanted = set(params["hosts"])
    unknown = sorted(name for name in wanted if name not in placement.hosts)
    away, already = _away(placement, wanted)
    moves, skipped = [], []
    gib_moved = 0.0
    max_moves, max_gib = params["max_moves"], params["max_gib"]
    for inst, home in away:
        reason = _why_not_home(placement, inst, home)
        gib = inst.flavor[1] / 1024.0
        if reason is None and max_moves and len(moves) >= max_moves:
            reason = "budget spent: max_moves %d" % max_moves
        if reason is None and max_gib and gib_moved + gib > max_gib + 1e-9:
            reason = "budget spent: max_gib %g" % max_gib
        if reason is not None:
            skipped.append({"kind": "instance", "id": inst.id, "instance": inst.id, "name": inst.name,
                            "host": inst.host.name, "home": home, "reason": reason})
            continue
        source, target = inst.host, placement.hosts[home]
        placement.move(inst, target)
        gib_moved += gib
        moves.append(Move(inst, source.name, home, "home: back to %s (its leveller:home), left %s" % (
            home, source.name), host_score(source, wc, wm), host_score(target, wc, wm)))
    result.skipped = skipped
    finish(result, placement, moves, params)
    result.bound = {"away": len(away), "already_home": already, "going_home": len(moves),
                    "cannot_go_home": len(skipped),
                    "gib": round(math.fsum(m.memory_mb for m in moves) / 1024.0, 3)}
    if unknown:
        result.reason = "hosts: %s not in the snapshot; " % ", ".join(unknown)
    else:
        result.reason = ""
    if not away:
        result.reason += ("no instance records a home%s away from it (%d already home)"
                          % (" among %s" % ", ".join(sorted(wanted)) if wanted else "", already))
    else:
        result.reason += "%d of %d instance(s) away from home go back%s" % (
            len(moves), len(away), "; %d cannot: see skipped" % len(skipped) if skipped else "")
    return result
