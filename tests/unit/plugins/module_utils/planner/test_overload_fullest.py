# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy overload with ``destination: fullest``: packs onto used hosts, every rule kept."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.benchmarks.check import check
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    clouds, group, host, instance, params, snapshot,
)

# Hosts have 32 cores: an instance of v vCPUs at cpu c adds v * c / 32 to its host's CPU load.


def overload(cloud, **chosen):
    chosen.setdefault("threshold", 0.5)
    chosen.setdefault("weight_memory", 0)
    chosen.setdefault("max_moves", 0)
    plan = make_plan(from_dict(cloud), "overload", chosen).to_dict()
    assert check(cloud, plan)["violations"] == 0
    return json.loads(json.dumps(plan, sort_keys=True))


def moved(plan):
    return [(m["instance"], m["source"], m["destination"]) for m in plan["moves"]]


def three_hosts():
    # hot at 0.75 (one movable instance worth 0.25); used at 0.2 and 0.25 (with an instance
    # each); empty at 0.
    hosts = [host("hot", cpu=0.75), host("low", cpu=0.2), host("mid", cpu=0.25), host("zero", cpu=0.0)]
    insts = [instance("big", "hot", vcpus=8, cpu=1.0),
             instance("rest", "hot", vcpus=8, cpu=1.0, tags=["leveller-pin"]),
             instance("l", "low", vcpus=8, cpu=0.8), instance("m", "mid", vcpus=8, cpu=1.0)]
    return hosts, insts


def test_default_is_headroom_and_unchanged():
    hosts, insts = three_hosts()
    plan = overload(snapshot(hosts, insts))
    assert moved(plan) == [("big", "hot", "zero")]
    assert plan["params"]["destination"] == "headroom"
    assert overload(snapshot(hosts, insts), destination="headroom")["moves"] == plan["moves"]


def test_fullest_used_host_that_stays_at_threshold():
    hosts, insts = three_hosts()
    plan = overload(snapshot(hosts, insts), destination="fullest")
    # mid (0.25) + 0.25 = 0.5: not above the threshold, and fuller than low.
    assert moved(plan) == [("big", "hot", "mid")]


def test_fullest_skips_a_used_host_it_would_overload():
    hosts, insts = three_hosts()
    hosts[2]["load"]["cpu"] = 0.2500001
    plan = overload(snapshot(hosts, insts), destination="fullest")
    assert moved(plan) == [("big", "hot", "low")]


def test_empty_host_only_when_no_used_host_takes_it():
    hosts, insts = three_hosts()
    hosts[1]["load"]["cpu"] = 0.3
    hosts[2]["load"]["cpu"] = 0.3
    plan = overload(snapshot(hosts, insts), destination="fullest")
    assert moved(plan) == [("big", "hot", "zero")]


def test_fullest_keeps_anti_affinity():
    # big and m may not share a host: mid is out, low is the fullest used host left.
    hosts, insts = three_hosts()
    g = group("g", "anti-affinity", ["big", "m"])
    insts[0]["server_groups"] = [g]
    insts[3]["server_groups"] = [g]
    plan = overload(snapshot(hosts, insts), destination="fullest")
    assert moved(plan) == [("big", "hot", "low")]


def test_unknown_destination_is_an_error():
    hosts, insts = three_hosts()
    with pytest.raises(PlanError):
        make_plan(from_dict(snapshot(hosts, insts)), "overload", {"destination": "emptiest"})


def _chosen(chosen):
    chosen = dict(chosen)
    for name in ("min_load", "min_diff", "move_cost_gib"):
        chosen.pop(name, None)
    chosen["threshold"] = 0.5
    chosen["destination"] = "fullest"
    return chosen


def _plan(cloud, chosen):
    plan = make_plan(from_dict(cloud), "overload", _chosen(chosen)).to_dict()
    return json.loads(json.dumps(plan, sort_keys=True))


@settings(max_examples=150, deadline=None)
@given(cloud=clouds, chosen=params)
def test_fullest_keeps_every_rule_and_the_threshold(cloud, chosen):
    """Capacity, groups, AZ, aggregates, pins, host state, budget, waves: zero violations; no
    destination ends above the threshold."""
    plan = _plan(cloud, chosen)
    report = check(cloud, plan)
    assert report["violations"] == 0, report["examples"]
    for move in plan["moves"]:
        entry = plan["after"]["hosts"][move["destination"]]
        assert max(entry["cpu"], entry["memory"]) <= 0.5 + 1e-6


@settings(max_examples=100, deadline=None)
@given(cloud=clouds, chosen=params, data=st.data())
def test_fullest_leaves_excluded_and_pinned_instances(cloud, chosen, data):
    ids = sorted(i["id"] for i in cloud["instances"])
    excluded = data.draw(st.lists(st.sampled_from(ids), unique=True) if ids else st.just([]))
    pinned = set(i["id"] for i in cloud["instances"] if "leveller-pin" in (i.get("tags") or []))
    plan = _plan(cloud, dict(chosen, exclude=excluded))
    assert not set(m["instance"] for m in plan["moves"]) & (set(excluded) | pinned)
    assert check(cloud, plan)["violations"] == 0


@settings(max_examples=100, deadline=None)
@given(cloud=clouds, chosen=params, seed=st.integers(0, 1000))
def test_fullest_same_input_same_plan_whatever_the_order(cloud, chosen, seed):
    first = json.dumps(_plan(cloud, chosen), sort_keys=True)
    shuffled = copy.deepcopy(cloud)
    rng = random.Random(seed)
    rng.shuffle(shuffled["hosts"])
    rng.shuffle(shuffled["instances"])
    for inst in shuffled["instances"]:
        rng.shuffle(inst["server_groups"])
    assert json.dumps(_plan(shuffled, chosen), sort_keys=True) == first
    assert json.dumps(_plan(cloud, chosen), sort_keys=True) == first
