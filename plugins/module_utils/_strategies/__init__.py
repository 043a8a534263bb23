# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning strategies: each is a module with NAME, PARAMS and plan(snapshot, params) -> Plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gc

from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import balance, consolidate, drain, home, overload

STRATEGIES = {
    balance.NAME: balance,
    consolidate.NAME: consolidate,
    drain.NAME: drain,
    home.NAME: home,
    overload.NAME: overload,
}


def make_plan(snapshot, strategy, params=None):
    """Run one strategy on a Snapshot and return the Plan.

    The weights the snapshot was gathered with (``sources.weights``) are the defaults of
    ``weight_cpu`` and ``weight_memory``; a weight given in ``params`` wins.
    """
    module = STRATEGIES.get(strategy)
    if module is None:
        raise PlanError("strategy: expected one of %s, got %r"
                        % (", ".join(sorted(STRATEGIES)), strategy))
    params = dict(params or {})
    weights = (snapshot.sources or {}).get("weights") or {}
    for metric in ("cpu", "memory"):
        if params.get("weight_" + metric) is None and weights.get(metric) is not None:
            params["weight_" + metric] = weights[metric]
    # A plan allocates many small objects and frees none until it returns: the cyclic garbage
    # collector would only rescan them (a quarter of the time at 1,000 hosts), so it is paused
    # while planning and turned back on afterwards if it was on.
    enabled = gc.isenabled()
    gc.disable()
    try:
        plan = module.plan(snapshot, params)
        # What an executor needs to age the plan and digest the live cloud the same way.
        plan.snapshot_taken_at = snapshot.taken_at
        plan.snapshot_hosts = sorted(h.name for h in snapshot.hosts)
        return plan
    finally:
        if enabled:
            gc.enable()
