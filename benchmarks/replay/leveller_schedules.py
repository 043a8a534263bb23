# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schedules of the collection's own strategies for the PlanetLab replay.

Each name gives (placement, schedule). The first placement is CloudSim's power-aware one (the
cloud LR-MMT starts from), so the comparison with the reference policies starts from the same
cloud. The strategies run unchanged through ``make_plan`` on a Snapshot of the simulated cloud
(``_replay.StrategyPolicy``).

- ``leveller-simple``: overload (threshold 0.8, no move budget) every tick, consolidate
  (ceiling 0.8, no move budget) every hour -- a first, untuned schedule.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay

import cloudsim_policies


def schedule(name):
    if name == "leveller-simple":
        placement = cloudsim_policies.PowerAwarePlacement(cloudsim_policies.StaticThreshold(0.8))
        return placement, [
            replay.Every(replay.StrategyPolicy("overload", {"threshold": 0.8, "max_moves": 0}),
                         0.0, "overload"),
            replay.Every(replay.StrategyPolicy(
                "consolidate", {"max_load_after": 0.8, "max_moves": 0}), 3600.0, "consolidate"),
        ]
    raise ValueError("unknown schedule %r (leveller-simple)" % name)


NAMES = ("leveller-simple",)
