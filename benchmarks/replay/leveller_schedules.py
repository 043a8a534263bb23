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
- ``leveller-frontier``: every VM reports the larger of its current demand and its p90 over
  the last hour (``StrategyPolicy(estimate=(90, 3600))``, past samples only); consolidate
  (ceiling 0.9, cooldown 3600: hosts that received within the hour are not emptied) every
  hour; overload (threshold 1.0, ``destination: fullest``, cooldown 3600) at every tick where a
  host's estimate is above its capacity; no move budget and no wave limits. The snapshot
  reports a host's load at most 1, so at threshold 1.0 overload plans but never moves: the
  best point measured relieves nothing between consolidations (with threshold 0.9 the relief
  cost more energy, migrations and SLAV than it saved; benchmarks/results/README.md).
  See FRONTIER for the values; ``leveller-frontier:key=value+...`` runs a variant (for
  sweeps), e.g. ``leveller-frontier:percentile=80+ceiling=1.0``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay

import cloudsim_policies

# The parameters of leveller-frontier (the same for every day).
FRONTIER = {
    "percentile": 90,        # the demand estimate: max(current, this percentile of the window)
    "window": 3600.0,        # seconds of history of the estimate
    "threshold": 1.0,        # overload's threshold (on the estimate; 1.0: never moves, see above)
    "ceiling": 0.9,          # consolidate's max_load_after (CPU; RAM see memory_full)
    "period": 3600.0,        # seconds between consolidate runs
    "cooldown": 3600,        # consolidate: hosts that received within this many seconds stay
    "overload_cooldown": 3600,  # overload: a VM that moved within this many seconds stays
}
UNLIMITED_WAVES = {"max_moves": 0, "max_parallel": 100000, "max_per_host": 100000}


def frontier(values=None):
    """The leveller-frontier schedule, with values overriding FRONTIER (for the sweeps)."""
    v = dict(FRONTIER)
    v.update(values or {})
    estimate = (v["percentile"], v["window"])
    over = dict(UNLIMITED_WAVES, threshold=v["threshold"], destination="fullest",
                cooldown=v["overload_cooldown"])
    cons = dict(UNLIMITED_WAVES, max_load_after=v["ceiling"], cooldown=v["cooldown"])
    # consolidate's ceiling caps RAM allocations too; RAM allocation ratio 1 / ceiling puts
    # that cap at the host's RAM exactly (only under rules that enforce RAM: CloudSim's never do).
    overload = replay.StrategyPolicy("overload", over, estimate=estimate)
    consolidate = FullRamConsolidate(cons, estimate)
    placement = cloudsim_policies.PowerAwarePlacement(cloudsim_policies.StaticThreshold(0.8))
    return placement, [
        replay.Hot(overload, v["threshold"], "overload"),
        replay.Every(consolidate, v["period"], "consolidate"),
    ]


class FullRamConsolidate(replay.StrategyPolicy):
    """consolidate whose ceiling leaves RAM at the host's full size under real rules."""

    def __init__(self, params, estimate):
        replay.StrategyPolicy.__init__(self, "consolidate", params, estimate=estimate)

    def snapshot(self, rp, now):
        if rp.rules.ram_every_move:
            self.memory_ratio = 1.0 / self.params["max_load_after"]
        return replay.StrategyPolicy.snapshot(self, rp, now)


def schedule(name):
    if name == "leveller-simple":
        placement = cloudsim_policies.PowerAwarePlacement(cloudsim_policies.StaticThreshold(0.8))
        return placement, [
            replay.Every(replay.StrategyPolicy("overload", {"threshold": 0.8, "max_moves": 0}),
                         0.0, "overload"),
            replay.Every(replay.StrategyPolicy(
                "consolidate", {"max_load_after": 0.8, "max_moves": 0}), 3600.0, "consolidate"),
        ]
    if name == "leveller-frontier":
        return frontier()
    if name.startswith("leveller-frontier:"):
        # A variant for sweeps: leveller-frontier:threshold=1.0+percentile=80 (POLICIES is
        # comma-separated, hence the +)
        values = {}
        for item in name.split(":", 1)[1].split("+"):
            key, _sep, value = item.partition("=")
            if key not in FRONTIER:
                raise ValueError("unknown value %r (%s)" % (key, ", ".join(sorted(FRONTIER))))
            values[key] = type(FRONTIER[key])(float(value))
        return frontier(values)
    raise ValueError("unknown schedule %r (%s)" % (name, ", ".join(NAMES)))


NAMES = ("leveller-simple", "leveller-frontier")
