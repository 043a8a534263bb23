# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning strategies: each is a module with NAME, PARAMS and plan(snapshot, params) -> Plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import balance, consolidate, drain, overload

STRATEGIES = {
    balance.NAME: balance,
    consolidate.NAME: consolidate,
    drain.NAME: drain,
    overload.NAME: overload,
}


def make_plan(snapshot, strategy, params=None):
    """Run one strategy on a Snapshot and return the Plan."""
    module = STRATEGIES.get(strategy)
    if module is None:
        raise PlanError("strategy: expected one of %s, got %r"
                        % (", ".join(sorted(STRATEGIES)), strategy))
    return module.plan(snapshot, params)
