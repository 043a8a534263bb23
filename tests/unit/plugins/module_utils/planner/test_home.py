# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy home: worked cases, and invariants on random clouds with recorded homes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.benchmarks.check import check
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import STRATEGIES, make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    clouds, group, host, instance, snapshot,
)

HOME = "leveller:home"


def home(cloud, **params):
    plan = make_plan(from_dict(cloud), "home", params).to_dict()
    return json.loads(json.dumps(plan, sort_keys=True))


def away(ident, on, home_host, **extra):
    metadata = dict(extra.pop("metadata", {}), **{HOME: home_host})
    return instance(ident, on, metadata=metadata, **extra)


def after_maintenance():
    """a came back empty; i1 and i2 were drained from it to b and c; i3 always lived on b."""
    hosts = [host("a", cpu=0.05, memory=0.1), host("b", cpu=0.6, memory=0.6), host("c", cpu=0.5, memory=0.5)]
    insts = [away("i1", "b", "a", memory_mb=8192), away("i2", "c", "a"), instance("i3", "b")]
    return snapshot(hosts, insts)


def test_registered_and_every_away_instance_goes_back():
    assert "home" in STRATEGIES
    plan = home(after_maintenance())
    assert sorted((m["instance"], m["source"], m["destination"]) for m in plan["moves"]) == [
        ("i1", "b", "a"), ("i2", "c", "a")]
    assert plan["bound"] == {"away": 2, "already_home": 0, "going_home": 2, "cannot_go_home": 0, "gib": 12.0}
    assert plan["after"]["hosts"]["a"]["instances"] == 2
    assert plan["summary"]["reason"] == "2 of 2 instance(s) away from home go back"
    assert all("its leveller:home" in m["reason"] for m in plan["moves"])


def test_hosts_limits_the_plan_to_those_homes():
    cloud = after_maintenance()
    cloud["instances"].append(away("i4", "b", "c"))
    assert [m["instance"] for m in home(cloud, hosts=["c"])["moves"]] == ["i4"]
    assert len(home(cloud)["moves"]) == 3
    plan = home(cloud, hosts=["zz"])
    assert plan["moves"] == [] and plan["summary"]["reason"].startswith("hosts: zz not in the snapshot")


def test_instances_already_home_are_counted_not_moved():
    cloud = after_maintenance()
    cloud["instances"].append(away("i5", "a", "a"))
    plan = home(cloud)
    assert plan["bound"]["already_home"] == 1 and "i5" not in [m["instance"] for m in plan["moves"]]


@pytest.mark.parametrize("change, reason", [
    (lambda c: c["hosts"][0].update(enabled=False, disabled_reason="still patching"),
     "home host a is not back yet: disabled: still patching"),
    (lambda c: c["hosts"][0].update(up=False), "home host a is not back yet: down"),
    (lambda c: c["hosts"].pop(0), "home host a is not in the snapshot"),
    (lambda c: c["instances"][1].update(metadata={HOME: "a", "leveller:pin": "yes"}), "pinned"),
    (lambda c: c["instances"][1].update(status="SHUTOFF"), "status SHUTOFF cannot be live-migrated"),
    (lambda c: c["instances"][1].update(locked=True), "locked"),
    (lambda c: c["hosts"][0].update(capacity={"vcpus": 32, "memory_mb": 4096, "disk_gb": 1000}),
     "cannot go back to a: a has no room for 4096 MB RAM"),
])
def test_each_instance_that_cannot_go_back_says_why(change, reason):
    cloud = after_maintenance()
    if reason == "cannot go back to a: a has no room for 4096 MB RAM":
        # room for one 4 GiB instance but not the 8 GiB one first, then the 4 GiB one: both checked
        cloud["hosts"][0]["capacity"]["memory_mb"] = 4096
        plan = home(cloud)
        assert [m["instance"] for m in plan["moves"]] == ["i2"]
        (entry,) = plan["skipped"]
        assert entry["instance"] == "i1" and entry["home"] == "a"
        assert entry["reason"] == "cannot go back to a: a has no room for 8192 MB RAM"
        return
    change(cloud)
    plan = home(cloud)
    skipped = dict((s["instance"], s["reason"]) for s in plan["skipped"])
    assert "i2" in skipped and skipped["i2"].startswith(reason), skipped
    assert "i2" not in [m["instance"] for m in plan["moves"]]
    assert plan["bound"]["cannot_go_home"] == len(plan["skipped"])


def test_anti_affinity_is_kept_on_the_way_home():
    cloud = after_maintenance()
    # i6 took i2's place on a meanwhile; both are in one anti-affinity group
    cloud["instances"].append(instance("i6", "a"))
    g = group("g1", "anti-affinity", ["i2", "i6"])
    cloud["instances"][1]["server_groups"] = [g]
    cloud["instances"][3]["server_groups"] = [g]
    plan = home(cloud)
    skipped = dict((s["instance"], s["reason"]) for s in plan["skipped"])
    assert skipped["i2"] == "cannot go back to a: anti-affinity group g1 already has 1 on a"


def test_budget_and_cooldown_are_the_common_rules():
    cloud = after_maintenance()
    plan = home(cloud, max_moves=1)
    assert [m["instance"] for m in plan["moves"]] == ["i1"]   # largest first
    assert plan["skipped"][0]["reason"] == "budget spent: max_moves 1"
    plan = home(cloud, max_gib=5)
    assert [m["instance"] for m in plan["moves"]] == ["i2"]
    cloud["instances"][0]["last_moved_at"] = "2026-11-22T21:50:00Z"
    assert [m["instance"] for m in home(cloud)["moves"]] == ["i1", "i2"]     # cooldown 0 by default
    plan = home(cloud, cooldown=3600)
    assert [m["instance"] for m in plan["moves"]] == ["i2"]
    assert plan["skipped"][0]["reason"].startswith("cooldown: moved 600s before the snapshot")


def test_unknown_parameters_are_refused():
    with pytest.raises(PlanError, match="^threshold: unknown parameter"):
        home(after_maintenance(), threshold=0.5)


# ------------------------------------------------------------------ invariants on random clouds

@st.composite
def clouds_with_homes(draw):
    cloud = draw(clouds)
    names = [h["name"] for h in cloud["hosts"]]
    for inst in cloud["instances"]:
        if draw(st.booleans()):
            meta = dict(inst.get("metadata") or {})
            meta[HOME] = draw(st.sampled_from(names + ["gone-host"]))
            inst["metadata"] = meta
    return cloud


@settings(max_examples=60, deadline=None)
@given(cloud=clouds_with_homes(), budget=st.sampled_from([0, 1, 3]), data=st.data())
def test_every_rule_holds_and_every_move_goes_home(cloud, budget, data):
    names = sorted(h["name"] for h in cloud["hosts"])
    wanted = data.draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    plan = home(cloud, hosts=wanted, max_moves=budget)
    report = check(cloud, plan)
    assert report["violations"] == 0, report["examples"]
    homes = dict((i["id"], (i.get("metadata") or {}).get(HOME)) for i in cloud["instances"])
    where = dict((i["id"], i["host"]) for i in cloud["instances"])
    for move in plan["moves"]:
        assert move["destination"] == homes[move["instance"]] != where[move["instance"]]
        assert not wanted or move["destination"] in wanted
    if budget:
        assert len(plan["moves"]) <= budget
    # each instance away from a wanted home is either moved or listed with a reason
    moved = set(m["instance"] for m in plan["moves"])
    listed = set(s["instance"] for s in plan["skipped"] if s["kind"] == "instance")
    expected = set(i for i, h in homes.items() if h and h != where[i] and (not wanted or h in wanted))
    assert moved | listed == expected and not (moved & listed)
    assert plan == home(cloud, hosts=wanted, max_moves=budget)   # deterministic
