# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy drain: worked cases at the edges, and invariants on random clouds."""

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
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import STRATEGIES, make_plan
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies.drain import MBIT_PER_MIB
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    clouds, group, host, instance, snapshot,
)


def drain(cloud, **params):
    plan = make_plan(from_dict(cloud), "drain", params).to_dict()
    return json.loads(json.dumps(plan, sort_keys=True))


def blocking(plan):
    return [s for s in plan["skipped"] if s["kind"] == "instance" and s["blocking"]]


def three_hosts():
    """a holds two instances; b is busier than c; both have room for both instances."""
    hosts = [host("a", cpu=0.5, memory=0.5), host("b", cpu=0.6, memory=0.6), host("c", cpu=0.2, memory=0.2)]
    insts = [instance("i1", "a", memory_mb=8192, cpu=0.5, memory=0.5),
             instance("i2", "a", memory_mb=4096, cpu=0.5, memory=0.5),
             instance("i3", "b"), instance("i4", "c")]
    return snapshot(hosts, insts)


# ------------------------------------------------------------------ worked cases

def test_registered_for_the_executor():
    assert "drain" in STRATEGIES
    plan = drain(three_hosts(), hosts=["a"])
    for move in plan["moves"]:
        assert set(["instance", "source", "destination", "wave", "memory_mb"]) <= set(move)


def test_empties_the_host_onto_the_idlest_first():
    plan = drain(three_hosts(), hosts=["a"])
    assert sorted(m["instance"] for m in plan["moves"]) == ["i1", "i2"]
    assert all(m["source"] == "a" for m in plan["moves"])
    first = [m for m in plan["moves"] if m["instance"] == "i1"][0]  # largest is placed first
    assert first["destination"] == "c"
    assert plan["drained_hosts"] == ["a"]
    assert plan["after"]["hosts"]["a"]["instances"] == 0
    assert plan["before"]["hosts"]["a"]["active"] is False  # not part of the remaining spread
    assert plan["after"]["spread"]["stddev"] <= plan["before"]["spread"]["stddev"] + 1e-9
    assert plan["summary"]["acted"] is True and "empty a" in plan["summary"]["reason"]


def test_hypervisor_hostname_names_the_host_too():
    cloud = three_hosts()
    cloud["hosts"][0]["hypervisor_hostname"] = "a.example.net"
    plan = drain(cloud, hosts=["a.example.net"])
    assert plan["drained_hosts"] == ["a"] and len(plan["moves"]) == 2


def test_bad_parameters():
    with pytest.raises(PlanError, match="^hosts: name at least one"):
        drain(three_hosts())
    with pytest.raises(PlanError, match="^hosts: unknown host nope"):
        drain(three_hosts(), hosts=["a", "nope"])
    with pytest.raises(PlanError, match="^bandwidth_mbps"):
        drain(three_hosts(), hosts=["a"], bandwidth_mbps=0)
    with pytest.raises(PlanError, match="^threshold: unknown parameter"):
        drain(three_hosts(), hosts=["a"], threshold=0.5)


@pytest.mark.parametrize("extra,reason", [
    ({"metadata": {"leveller:pin": "yes"}}, "pinned by metadata"),
    ({"tags": ["leveller-pin"]}, "pinned by tag"),
    ({"migratable": False, "not_migratable_reason": "PCI passthrough"}, "not migratable: PCI passthrough"),
    ({"task_state": "migrating"}, "busy"),
    ({"status": "ERROR"}, "status ERROR"),
    ({"locked": True}, "locked"),
])
def test_an_instance_that_cannot_move_makes_it_all_or_nothing(extra, reason):
    cloud = three_hosts()
    cloud["instances"][1].update(extra)
    plan = drain(cloud, hosts=["a"])
    assert plan["moves"] == [] and plan["drained_hosts"] == []
    entries = blocking(plan)
    assert [(e["instance"], e["host"]) for e in entries] == [("i2", "a")]
    assert entries[0]["reason"].startswith(reason)
    assert "all-or-nothing" in plan["summary"]["reason"]
    assert plan["after"]["hosts"] == plan["before"]["hosts"]  # the undo left nothing behind
    partial = drain(cloud, hosts=["a"], partial=True)
    assert [m["instance"] for m in partial["moves"]] == ["i1"]
    assert [e["instance"] for e in blocking(partial)] == ["i2"]
    assert partial["drained_hosts"] == []


def test_stopped_instances_stay_without_blocking():
    cloud = three_hosts()
    cloud["instances"][1]["status"] = "SHUTOFF"
    plan = drain(cloud, hosts=["a"])
    assert [m["instance"] for m in plan["moves"]] == ["i1"]
    # Not in skipped: evacuate_host reads every instance there as one that did not fit.
    assert [s for s in plan["skipped"] if s["kind"] == "instance"] == []
    assert [(s["instance"], s["host"], s["blocking"]) for s in plan["staying"]] == [("i2", "a", False)]
    assert "migrate_stopped" in plan["staying"][0]["reason"]
    assert plan["drained_hosts"] == ["a"]


def test_cooldown_ignored_unless_asked_for():
    cloud = three_hosts()
    cloud["instances"][0]["last_moved_at"] = "2026-11-22T21:59:00Z"
    assert len(drain(cloud, hosts=["a"])["moves"]) == 2
    held = drain(cloud, hosts=["a"], cooldown=600)
    assert held["moves"] == [] and blocking(held)[0]["reason"].startswith("cooldown")


def test_disabled_host_can_be_drained_down_host_cannot():
    cloud = three_hosts()
    cloud["hosts"][0].update(enabled=False, disabled_reason="maintenance")
    assert len(drain(cloud, hosts=["a"])["moves"]) == 2
    for extra in ({"up": False}, {"forced_down": True}):
        cloud = three_hosts()
        cloud["hosts"][0].update(extra)
        plan = drain(cloud, hosts=["a"], partial=True)
        assert plan["moves"] == []
        assert len(blocking(plan)) == 2 and "state=evacuated" in blocking(plan)[0]["reason"]


def test_empty_hosts_receive_only_when_allowed():
    hosts = [host("a", cpu=0.5, memory=0.5), host("e", cpu=0.0, memory=0.0)]
    cloud = snapshot(hosts, [instance("i1", "a")])
    refused = drain(cloud, hosts=["a"])
    assert refused["moves"] == [] and blocking(refused)[0]["reason"].startswith("nowhere to go")
    allowed = drain(cloud, hosts=["a"], use_empty_hosts=True)
    assert [(m["instance"], m["destination"]) for m in allowed["moves"]] == [("i1", "e")]


def test_drained_hosts_never_receive_from_each_other():
    hosts = [host("a", cpu=0.5, memory=0.5), host("b", cpu=0.0, memory=0.0), host("c", cpu=0.9, memory=0.9)]
    cloud = snapshot(hosts, [instance("i1", "a"), instance("i2", "b"), instance("i3", "c")])
    plan = drain(cloud, hosts=["a", "b"])
    assert sorted((m["instance"], m["destination"]) for m in plan["moves"]) == [("i1", "c"), ("i2", "c")]
    assert plan["drained_hosts"] == ["a", "b"]


def test_no_room_is_explained():
    hosts = [host("a", cpu=0.5, memory=0.5), host("b", memory_mb=8192, cpu=0.1, memory=0.1)]
    cloud = snapshot(hosts, [instance("big", "a", memory_mb=16384), instance("i2", "b")])
    plan = drain(cloud, hosts=["a"])
    assert plan["moves"] == []
    assert "no room for 16384 MB RAM" in blocking(plan)[0]["reason"]


def test_server_groups_are_kept():
    hosts = [host("a", cpu=0.5, memory=0.5), host("b", cpu=0.0, memory=0.0), host("c", cpu=0.8, memory=0.8)]
    anti = group("g-anti", "anti-affinity", ["i1", "i2"])
    cloud = snapshot(hosts, [instance("i1", "a", groups=[anti]), instance("i2", "b", groups=[anti]),
                             instance("i3", "c")])
    plan = drain(cloud, hosts=["a"])
    # b is idler, but already holds a member of the group.
    assert [(m["instance"], m["destination"]) for m in plan["moves"]] == [("i1", "c")]
    together = group("g-aff", "affinity", ["j1", "j2"])
    cloud = snapshot(hosts, [instance("j1", "a", groups=[together]), instance("j2", "a", groups=[together]),
                             instance("i2", "b"), instance("i3", "c")])
    plan = drain(cloud, hosts=["a"], partial=True)
    assert plan["moves"] == []  # one at a time, the first to leave would split the group
    assert all("affinity group g-aff" in e["reason"] for e in blocking(plan))


def test_soft_affinity_members_leave_together():
    hosts = [host("a", cpu=0.5, memory=0.5), host("b", cpu=0.1, memory=0.1), host("c", cpu=0.2, memory=0.2)]
    soft = group("g-soft", "soft-affinity", ["s1", "s2", "s3"])
    cloud = snapshot(hosts, [instance("s%d" % n, "a", groups=[soft]) for n in (1, 2, 3)]
                     + [instance("b1", "b"), instance("c1", "c")])
    plan = drain(cloud, hosts=["a"])
    assert sorted(m["instance"] for m in plan["moves"]) == ["s1", "s2", "s3"]
    assert len(set(m["destination"] for m in plan["moves"])) == 1
    assert all("soft-affinity group g-soft" in m["reason"] for m in plan["moves"])
    assert check(cloud, plan)["violations"] == 0
    # No single host has room for all three: they stay together rather than spread.
    for entry in cloud["hosts"][1:]:
        entry["capacity"]["memory_mb"] = 10240
    tight = drain(cloud, hosts=["a"], partial=True)
    assert tight["moves"] == []
    assert all("members of soft-affinity group g-soft" in e["reason"] for e in blocking(tight))
    # A member that cannot move keeps the others with it, even in a partial drain.
    cloud = snapshot(hosts, [instance("s1", "a", groups=[soft], tags=["leveller-pin"])]
                     + [instance("s%d" % n, "a", groups=[soft]) for n in (2, 3)] + [instance("b1", "b")])
    held = drain(cloud, hosts=["a"], partial=True)
    assert held["moves"] == [] and len(blocking(held)) == 3
    assert "1 of them cannot leave a" in [e for e in blocking(held) if e["instance"] == "s2"][0]["reason"]


def test_budget_is_all_or_nothing_too():
    plan = drain(three_hosts(), hosts=["a"], max_moves=1)
    assert plan["moves"] == [] and "max_moves" in blocking(plan)[0]["reason"]
    assert len(drain(three_hosts(), hosts=["a"], max_moves=1, partial=True)["moves"]) == 1
    assert drain(three_hosts(), hosts=["a"], max_gib=8)["moves"] == []


def test_makespan_bound_and_gap():
    plan = drain(three_hosts(), hosts=["a"], bandwidth_mbps=1000, max_parallel=4, max_per_host=1)
    bound = plan["bound"]
    assert bound["parallelism"] == 1  # one drained host, one move per host per wave
    assert bound["ram_to_copy_gib"] == 12.0
    assert bound["makespan_s_at_least"] == pytest.approx(12288 * MBIT_PER_MIB / 1000, abs=1e-3)
    assert bound["makespan_gap_s"] == pytest.approx(0.0, abs=1e-3)  # one move per wave is the bound
    wide = drain(three_hosts(), hosts=["a"], bandwidth_mbps=1000, max_per_host=2)["bound"]
    assert wide["parallelism"] == 2
    # Two waves of one or one wave of two: either way no faster than the larger copy alone.
    assert wide["makespan_s_at_least"] == pytest.approx(8192 * MBIT_PER_MIB / 1000, abs=1e-3)
    assert wide["makespan_s_estimate"] >= wide["makespan_s_at_least"]


def test_nothing_to_move():
    cloud = three_hosts()
    cloud["instances"] = [i for i in cloud["instances"] if i["host"] != "a"]
    plan = drain(cloud, hosts=["a"])
    assert plan["moves"] == [] and plan["drained_hosts"] == ["a"]
    assert plan["summary"]["reason"].startswith("no moves: a hold no instance")


# ------------------------------------------------------------------ invariants

drain_params = st.fixed_dictionaries({
    "partial": st.booleans(),
    "use_empty_hosts": st.booleans(),
    "cross_az": st.booleans(),
    "keep_aggregates": st.booleans(),
    "max_parallel": st.integers(1, 4),
    "max_per_host": st.integers(1, 3),
    "max_moves": st.sampled_from([0, 0, 2]),
    "cooldown": st.sampled_from([0, 3600]),
})


def _tame(cloud):
    """The same cloud with every instance free to move, so plans with moves are common."""
    cloud = copy.deepcopy(cloud)
    for inst in cloud["instances"]:
        for key in ("metadata", "tags", "migratable", "status", "task_state", "last_moved_at"):
            inst.pop(key, None)
    return cloud


def _pick(cloud, data):
    names = sorted(h["name"] for h in cloud["hosts"])
    return data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))


def _checked(cloud, plan, names):
    """The independent checker, told that a drained host may send even when it is disabled."""
    view = copy.deepcopy(cloud)
    for entry in view["hosts"]:
        if entry["name"] in names:
            entry["enabled"] = True
    for inst in view["instances"]:
        # cloud.py may list a group twice on one instance; the planner reads it once, so
        # does the checker here (it would count the member twice).
        inst["server_groups"] = list(dict((g["id"], g) for g in inst.get("server_groups") or []).values())
    return check(view, plan)


@settings(max_examples=150, deadline=None)
@given(cloud=clouds, chosen=drain_params, data=st.data(), tame=st.booleans())
def test_every_rule_holds_and_each_instance_is_accounted_for(cloud, chosen, data, tame):
    if tame:
        cloud = _tame(cloud)
    names = _pick(cloud, data)
    plan = drain(cloud, hosts=names, **chosen)
    report = _checked(cloud, plan, names)
    assert report["violations"] == 0, report["examples"]
    moved = set(m["instance"] for m in plan["moves"])
    assert all(m["source"] in names and m["destination"] not in names for m in plan["moves"])
    on_drained = set(i["id"] for i in cloud["instances"] if i["host"] in names)
    skipped = [s["instance"] for s in plan["skipped"] if s["kind"] == "instance"]
    assert all(s["blocking"] for s in plan["skipped"] if s["kind"] == "instance")
    listed = skipped + [s["instance"] for s in plan["staying"]]
    assert len(listed) == len(set(listed))
    # Every instance of a drained host is moved or listed with its reason, never both.
    assert not moved & set(listed)
    blocked = set(e["instance"] for e in blocking(plan))
    if chosen["partial"]:
        assert moved | set(listed) == on_drained
    elif blocked:
        assert plan["moves"] == [] and plan["drained_hosts"] == []
    else:
        assert moved | set(listed) == on_drained
        assert plan["drained_hosts"] == sorted(names)
    assert all(e["reason"] for e in blocking(plan))
    stopped = set(i["id"] for i in cloud["instances"] if i.get("status") == "SHUTOFF" and not i.get("task_state"))
    assert set(s["instance"] for s in plan["staying"]) <= stopped and set(skipped) == blocked
    if not chosen["use_empty_hosts"]:
        empty = set(h["name"] for h in cloud["hosts"]) - set(i["host"] for i in cloud["instances"])
        assert not empty & set(m["destination"] for m in plan["moves"])
    for name in plan["drained_hosts"]:
        left = [i for i in cloud["instances"] if i["host"] == name and i["id"] not in moved]
        assert all(i["id"] in stopped for i in left)


@settings(max_examples=100, deadline=None)
@given(cloud=clouds, chosen=drain_params, data=st.data(), tame=st.booleans())
def test_partial_changes_nothing_when_everything_fits(cloud, chosen, data, tame):
    if tame:
        cloud = _tame(cloud)
    names = _pick(cloud, data)
    chosen = dict(chosen, partial=False)
    whole = drain(cloud, hosts=names, **chosen)
    if whole["moves"] or not blocking(whole):
        partial = drain(cloud, hosts=names, **dict(chosen, partial=True))
        assert partial["moves"] == whole["moves"]
        assert partial["skipped"] == whole["skipped"]


@settings(max_examples=100, deadline=None)
@given(cloud=clouds, chosen=drain_params, data=st.data(), seed=st.integers(0, 1000))
def test_same_input_same_plan_whatever_the_order(cloud, chosen, data, seed):
    names = _pick(cloud, data)
    first = json.dumps(drain(cloud, hosts=names, **chosen), sort_keys=True)
    shuffled = copy.deepcopy(cloud)
    rng = random.Random(seed)
    rng.shuffle(shuffled["hosts"])
    rng.shuffle(shuffled["instances"])
    assert json.dumps(drain(shuffled, hosts=list(reversed(names)), **chosen), sort_keys=True) == first
