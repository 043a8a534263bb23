# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy consolidate: worked cases at the edges, and invariants on random clouds."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import itertools
import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.benchmarks.check import check
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict, parse_time
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import STRATEGIES, make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    TAKEN_AT, clouds, group, host, instance, random_cloud, snapshot,
)

KEYS = ("vcpus", "memory_mb", "disk_gb")


def consolidate(cloud, **params):
    plan = make_plan(from_dict(cloud), "consolidate", params).to_dict()
    return json.loads(json.dumps(plan, sort_keys=True))


def small(name, **extra):
    """A host of 8 vCPUs (32 schedulable), 10 GiB RAM and 100 GB disk, allocation-levelled."""
    return host(name, vcpus=8, memory_mb=10240, disk_gb=100, **extra)


def vm(ident, on, memory_mb, **extra):
    return instance(ident, on, vcpus=1, memory_mb=memory_mb, disk_gb=1, **extra)


def host_reason(plan, name):
    return [s["reason"] for s in plan["skipped"] if s["kind"] == "host" and s["name"] == name][0]


# ------------------------------------------------------------------ worked cases

def test_registered():
    assert "consolidate" in STRATEGIES


def test_empties_the_emptiest_host_onto_the_best_fit():
    cloud = snapshot([small("a"), small("b"), small("c")],
                     [vm("i1", "a", 1024), vm("b1", "b", 6144), vm("c1", "c", 2048)])
    plan = consolidate(cloud)
    # a goes first (fewest instances, least used); b has the least RAM left that still takes i1.
    assert [(m["instance"], m["source"], m["destination"]) for m in plan["moves"]][0] == ("i1", "a", "b")
    assert "a" in plan["freed_hosts"]
    assert plan["after"]["hosts"]["a"]["instances"] == 0
    assert plan["bound"]["hosts_used_after"] == 3 - len(plan["freed_hosts"])
    assert plan["summary"]["reason"].startswith("%d moves free" % len(plan["moves"]))


def test_all_or_nothing_per_host():
    # b and c (pinned instances) stay used with 4 GiB free under the ceiling (0.8 x 10 GiB) each:
    # 8 GiB in all, enough for a's 8 GiB on paper, but the third instance finds only 1 GiB pieces.
    pin = {"tags": ["leveller-pin"]}
    cloud = snapshot([small("a"), small("b"), small("c")],
                     [vm("i1", "a", 3072), vm("i2", "a", 3072), vm("i3", "a", 2048),
                      vm("b1", "b", 4096, **pin), vm("c1", "c", 4096, **pin)])
    plan = consolidate(cloud)
    assert plan["moves"] == [] and plan["freed_hosts"] == []
    assert "vm-i3 fits on no other used host" in host_reason(plan, "a")
    assert plan["after"]["hosts"] == plan["before"]["hosts"]  # tentative moves were undone
    loose = consolidate(cloud, max_load_after=1.0)
    assert sorted(m["instance"] for m in loose["moves"]) == ["i1", "i2", "i3"] and loose["freed_hosts"] == ["a"]
    roomless = consolidate(cloud, max_load_after=0.5)
    assert "need 8192 memory_mb" in host_reason(roomless, "a")


def test_never_onto_an_empty_host():
    cloud = snapshot([small("a"), small("e")], [vm("i1", "a", 1024)])
    plan = consolidate(cloud)
    assert plan["moves"] == []
    assert plan["bound"]["hosts_used_before"] == 1 and plan["bound"]["hosts_needed_at_least"] == 1


def test_ceiling_counts_measured_load_too():
    cloud = snapshot([small("a", cpu=0.1, memory=0.1), small("b", cpu=0.75, memory=0.2)],
                     [vm("i1", "a", 1024, cpu=1.0, memory=0.5), vm("b1", "b", 1024)])
    # i1 adds a full core of 8 to b's measured cpu: 0.75 + 0.125 > 0.8.
    assert consolidate(cloud)["moves"] == []
    assert len(consolidate(cloud, max_load_after=0.9)["moves"]) == 1


@pytest.mark.parametrize("extra,reason", [
    ({"last_moved_at": "2026-11-22T21:30:00Z"}, "just received vm-i1"),
    ({"tags": ["leveller-pin"]}, "holds vm-i1, which stays: pinned by tag"),
    ({"status": "SHUTOFF"}, "holds vm-i1, which stays: status SHUTOFF"),
    ({"migratable": False}, "holds vm-i1, which stays: not migratable"),
])
def test_hosts_that_cannot_be_emptied_say_why(extra, reason):
    cloud = snapshot([small("a"), small("b")], [vm("i1", "a", 1024, **extra), vm("b1", "b", 4096)])
    plan = consolidate(cloud)
    assert all(m["source"] != "a" for m in plan["moves"])
    assert reason in host_reason(plan, "a")
    # b can be emptied onto a, which stays used anyway.
    assert plan["freed_hosts"] == ["b"]


def test_a_host_that_received_is_not_emptied_in_the_same_plan():
    cloud = snapshot([small("a"), small("b"), small("c")],
                     [vm("i1", "a", 1024), vm("b1", "b", 1024), vm("b2", "b", 1024), vm("c1", "c", 2048)])
    plan = consolidate(cloud)
    sources = set(m["source"] for m in plan["moves"])
    destinations = set(m["destination"] for m in plan["moves"])
    assert plan["moves"] and not sources & destinations
    assert len(set(m["instance"] for m in plan["moves"])) == len(plan["moves"])
    assert any("received instances in this plan" in s["reason"] for s in plan["skipped"])


def test_anti_affinity_is_kept():
    anti = group("g", "anti-affinity", ["i1", "b1"])
    cloud = snapshot([small("a"), small("b"), small("c")],
                     [vm("i1", "a", 1024, groups=[anti]), vm("b1", "b", 6144, groups=[anti]), vm("c1", "c", 2048)])
    plan = consolidate(cloud)
    assert ("i1", "b") not in [(m["instance"], m["destination"]) for m in plan["moves"]]
    assert check(cloud, plan)["violations"] == 0


def test_bound_on_a_uniform_cloud():
    # Four hosts holding 2 GiB each: 8 GiB fit under 0.8 x 10 GiB on one host.
    cloud = snapshot([small(n) for n in "abcd"], [vm("i" + n, n, 2048) for n in "abcd"])
    plan = consolidate(cloud)
    bound = plan["bound"]
    assert bound["hosts_needed_at_least"] == 1 and bound["hosts_used_before"] == 4
    assert bound["hosts_used_after"] == 1 and bound["gap"] == 0 and len(plan["freed_hosts"]) == 3
    assert bound["by_pool"][0]["binding"] == "memory_mb"


def _pool(plan, az):
    return [p for p in plan["bound"]["by_pool"] if p["pool"].startswith("az %s," % az)][0]


def test_bound_counts_only_room_whole_instances_can_use():
    # a (pinned 2 GiB) has 6 GiB left under the ceiling, b (pinned 7 GiB) 1 GiB: c and d hold
    # 3.5 GiB each, 7 GiB in all. By volume a and b take both (6 + 1 = 7); but b has room for
    # neither, and a for one only (3.5 GiB pieces), so three hosts stay used whatever the plan.
    pin = {"tags": ["leveller-pin"]}
    hosts = [small(n) for n in "abcd"] + [small(n, az="other") for n in "ef"]
    cloud = snapshot(hosts, [vm("a1", "a", 2048, **pin), vm("b1", "b", 7168, **pin), vm("c1", "c", 3584),
                             vm("d1", "d", 3584), vm("e1", "e", 2048), vm("f1", "f", 2048)])
    plan = consolidate(cloud)
    nova, other = _pool(plan, "nova"), _pool(plan, "other")
    assert nova["hosts_needed_at_least"] == 3 and nova["hosts_used_after"] == 3 and nova["gap"] == 0
    assert nova["cannot_be_emptied"] == 2 and nova["cannot_receive"] == 1 and nova["binding"] == "memory_mb"
    # Per AZ: the other AZ's room does not help, its own two hosts fit on one.
    assert other["hosts_needed_at_least"] == 1 and other["hosts_used_after"] == 1
    assert plan["bound"]["hosts_needed_at_least"] == 4 and plan["bound"]["gap"] == 0


def test_bound_hosts_above_the_ceiling_receive_nothing():
    # b is pinned above the ceiling (9 GiB > 0.8 x 10 GiB) in RAM, so it takes nothing, not even
    # disk or vCPUs it has room for; a host whose only instance fits nowhere is never emptied.
    pin = {"tags": ["leveller-pin"]}
    cloud = snapshot([small("a"), small("b"), small("c")],
                     [vm("a1", "a", 7168), vm("b1", "b", 9216, **pin), vm("c1", "c", 2048, **pin)])
    plan = consolidate(cloud)
    pool = plan["bound"]["by_pool"][0]
    # a's 7 GiB fit neither on b (above the ceiling) nor on c (6 GiB left): all three stay.
    assert pool["cannot_be_emptied"] == 3 and pool["cannot_receive"] == 3
    assert pool["hosts_needed_at_least"] == 3 and pool["binding"] == "cannot_be_emptied"
    assert plan["moves"] == []


def test_bound_per_resource_disk():
    # RAM would fit on one host; disk (30 GB instances, 80 GB under the ceiling) needs three.
    cloud = snapshot([small(n) for n in "abcd"],
                     [instance("%s%d" % (n, k), n, vcpus=1, memory_mb=1024, disk_gb=30) for n in "abc" for k in (1, 2)]
                     + [instance("d1", "d", vcpus=1, memory_mb=1024, disk_gb=10)])
    plan = consolidate(cloud)
    pool = plan["bound"]["by_pool"][0]
    assert pool["hosts_needed_at_least"] == 3 and pool["binding"] == "disk_gb"
    assert plan["freed_hosts"] == ["d"] and pool["gap"] == 0


def test_bound_ignores_allocations_no_instance_explains():
    # a's allocation (7 GiB) is mostly not instances of the snapshot: emptying a moves 1 GiB.
    # Keeping b alone (7 GiB left) takes a's and c's instances: one host is not ruled out.
    hosts = [small("a", used={"vcpus": 1, "memory_mb": 7168, "disk_gb": 1}), small("b"), small("c")]
    cloud = snapshot(hosts, [vm("a1", "a", 1024), vm("b1", "b", 1024), vm("c1", "c", 1024)])
    plan = consolidate(cloud)
    assert plan["bound"]["hosts_needed_at_least"] == 1
    assert plan["bound"]["hosts_used_after"] >= 1 and check(cloud, plan)["violations"] == 0


def test_bound_affinity_members_sharing_a_host_stay():
    pair = group("g", "affinity", ["a1", "a2"])
    cloud = snapshot([small("a"), small("b")],
                     [vm("a1", "a", 1024, groups=[pair]), vm("a2", "a", 1024, groups=[pair]), vm("b1", "b", 1024)])
    plan = consolidate(cloud)
    pool = plan["bound"]["by_pool"][0]
    assert pool["cannot_be_emptied"] == 1 and pool["hosts_needed_at_least"] == 1
    assert plan["freed_hosts"] == ["b"]


def test_emptying_order_frees_the_most_hosts():
    # Fewest instances first tries x (nothing takes its 6 GiB), then a onto b (the used host
    # tried last), so b received and stays: one host freed. Smallest hosts first sends a and b
    # onto x: two freed, the bound. The plan keeps the better order, with a budget or without.
    big = host("x", vcpus=8, memory_mb=40960, disk_gb=400)
    cloud = snapshot([big, small("a"), small("b")],
                     [vm("x1", "x", 6144), vm("a1", "a", 2048), vm("a2", "a", 2048), vm("b1", "b", 2048),
                      vm("b2", "b", 2048)])
    plan = consolidate(cloud)
    assert plan["freed_hosts"] == ["a", "b"] and plan["bound"]["gap"] == 0
    assert check(cloud, plan)["violations"] == 0
    assert consolidate(cloud, max_moves=0)["freed_hosts"] == ["a", "b"]
    assert len(consolidate(cloud, max_hosts=1)["freed_hosts"]) == 1


def test_second_pass_tries_a_host_left_used_first(monkeypatch):
    # 16 GiB on four hosts with 8 GiB each under the ceiling: two hosts suffice only if the
    # instances pack exactly. Every first-pass order frees one host and then finds the room
    # left in pieces too small; trying first a host the best order could not empty frees two.
    from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import consolidate as module
    cloud = snapshot([small(n) for n in "abcd"],
                     [vm("a1", "a", 1024), vm("b1", "b", 3072), vm("c1", "c", 4096), vm("c2", "c", 2048),
                      vm("d1", "d", 4096), vm("d2", "d", 2048)])
    plan = consolidate(cloud, max_moves=0)
    assert len(plan["freed_hosts"]) == 2 and plan["bound"]["gap"] == 0
    assert check(cloud, plan)["violations"] == 0
    monkeypatch.setattr(module, "PROMOTE", 0)
    monkeypatch.setattr(module, "ONE_MORE_TRIES", 0)
    assert len(consolidate(cloud, max_moves=0)["freed_hosts"]) == 1


def test_one_more_empties_a_host_the_greedy_left(monkeypatch):
    # Without the second pass, the greedy frees one host of the case above; the improvement
    # phase then empties one more, re-targeting the moves planned onto it (no chain: every
    # instance moves once, from its own host, and no freed host receives).
    from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import consolidate as module
    cloud = snapshot([small(n) for n in "abcd"],
                     [vm("a1", "a", 1024), vm("b1", "b", 3072), vm("c1", "c", 4096), vm("c2", "c", 2048),
                      vm("d1", "d", 4096), vm("d2", "d", 2048)])
    monkeypatch.setattr(module, "PROMOTE", 0)
    plan = consolidate(cloud, max_moves=0)
    assert len(plan["freed_hosts"]) == 2 and plan["bound"]["gap"] == 0
    assert check(cloud, plan)["violations"] == 0
    instances = [m["instance"] for m in plan["moves"]]
    assert len(instances) == len(set(instances))
    owner = dict((i["id"], i["host"]) for i in cloud["instances"])
    assert all(m["source"] == owner[m["instance"]] for m in plan["moves"])
    assert set(m["source"] for m in plan["moves"]) == set(plan["freed_hosts"])
    assert not set(m["destination"] for m in plan["moves"]) & set(plan["freed_hosts"])
    # With a budget the phase does not run.
    assert len(consolidate(cloud, max_moves=10)["freed_hosts"]) == 1


def test_budgets_and_max_hosts():
    cloud = snapshot([small(n) for n in "abcd"], [vm("i" + n, n, 2048) for n in "abcd"])
    assert len(consolidate(cloud, max_hosts=1)["freed_hosts"]) == 1
    assert any("max_hosts 1 reached" in s["reason"] for s in consolidate(cloud, max_hosts=1)["skipped"])
    assert len(consolidate(cloud, max_moves=2)["moves"]) == 2
    assert consolidate(cloud, max_gib=1)["moves"] == []
    two = snapshot([small("a"), small("b")],
                   [vm("a1", "a", 1024), vm("a2", "a", 1024), vm("b1", "b", 1024), vm("b2", "b", 1024)])
    refused = consolidate(two, max_moves=1)
    assert refused["moves"] == [] and "would exceed max_moves 1" in host_reason(refused, "a")


def test_bad_parameters():
    cloud = snapshot([small("a")], [])
    for value in (0, 1.5, -1):
        with pytest.raises(PlanError, match="^max_load_after"):
            consolidate(cloud, max_load_after=value)
    assert consolidate(cloud)["summary"]["reason"] == "no moves: no active host holds instances"


# ------------------------------------------------------------------ invariants

consolidate_params = st.fixed_dictionaries({
    "max_load_after": st.sampled_from([0.5, 0.8, 1.0]),
    "max_moves": st.sampled_from([0, 0, 3]),
    "max_hosts": st.sampled_from([0, 0, 1]),
    "cooldown": st.sampled_from([0, 3600]),
    "cross_az": st.booleans(),
    "keep_aggregates": st.booleans(),
    "max_parallel": st.integers(1, 4),
    "max_per_host": st.integers(1, 3),
})


def _tame(cloud):
    """The same cloud with every instance free to move, so plans with moves are common."""
    cloud = copy.deepcopy(cloud)
    for inst in cloud["instances"]:
        for key in ("metadata", "tags", "migratable", "status", "task_state", "last_moved_at"):
            inst.pop(key, None)
    return cloud


def _room(entry):
    return [(entry["capacity"][k] - (entry.get("reserved") or {}).get(k, 0))
            * (entry.get("allocation_ratio") or {}).get(k, 1.0) for k in KEYS]


@settings(max_examples=200, deadline=None)
@given(cloud=clouds, chosen=consolidate_params, tame=st.booleans())
def test_every_rule_holds_and_hosts_empty_whole(cloud, chosen, tame):
    if tame:
        cloud = _tame(cloud)
    _assert_rules(cloud, chosen, consolidate(cloud, **chosen))


@settings(max_examples=200, deadline=None)
@given(cloud=clouds, chosen=consolidate_params, tame=st.booleans())
def test_improvement_phase_keeps_every_rule(cloud, chosen, tame):
    # A weak greedy (one order, no second pass) leaves the improvement phase (one_more) much
    # to do, with every failure allowed: its moves must keep every rule all the same.
    from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import consolidate as module
    if tame:
        cloud = _tame(cloud)
    chosen = dict(chosen, max_moves=0, max_hosts=0)
    saved = module.ORDERS, module.PROMOTE, module.ONE_MORE_TRIES
    try:
        module.ORDERS, module.PROMOTE, module.ONE_MORE_TRIES = saved[0][:1], 0, 1000
        plan = consolidate(cloud, **chosen)
        again = consolidate(copy.deepcopy(cloud), **chosen)
    finally:
        module.ORDERS, module.PROMOTE, module.ONE_MORE_TRIES = saved
    assert json.dumps(plan, sort_keys=True) == json.dumps(again, sort_keys=True)
    _assert_rules(cloud, chosen, plan)


def _assert_rules(cloud, chosen, plan):
    view = copy.deepcopy(cloud)
    for inst in view["instances"]:
        # cloud.py may list a group twice on one instance; the planner reads it once, so
        # does the checker here (it would count the member twice).
        inst["server_groups"] = list(dict((g["id"], g) for g in inst.get("server_groups") or []).values())
    report = check(view, plan)
    assert report["violations"] == 0, report["examples"]
    sources = set(m["source"] for m in plan["moves"])
    destinations = set(m["destination"] for m in plan["moves"])
    # All or nothing per host: a host that gives an instance gives every one and is freed.
    assert sources == set(plan["freed_hosts"])
    for name in sources:
        assert plan["after"]["hosts"][name]["instances"] == 0
    # Never onto an empty host, nor onto one freed in this plan.
    held = set(i["host"] for i in cloud["instances"])
    assert destinations <= held and not destinations & sources
    if chosen["max_hosts"]:
        assert len(plan["freed_hosts"]) <= chosen["max_hosts"]
    # Hosts that just received an instance are not emptied.
    taken = parse_time(TAKEN_AT)
    for inst in cloud["instances"]:
        if chosen["cooldown"] and inst.get("last_moved_at") and \
                (taken - parse_time(inst["last_moved_at"])).total_seconds() < chosen["cooldown"]:
            assert inst["host"] not in sources
    # The ceiling holds on every host that receives, recomputed from the snapshot.
    ceiling = chosen["max_load_after"]
    hosts = dict((h["name"], h) for h in cloud["hosts"])
    used = {}
    for inst in cloud["instances"]:
        total = used.setdefault(inst["host"], [0.0, 0.0, 0.0])
        for index, key in enumerate(KEYS):
            total[index] += inst["flavor"][key]
    moved = dict((m["instance"], m) for m in plan["moves"])
    for inst in cloud["instances"]:
        if inst["id"] in moved:
            for index, key in enumerate(KEYS):
                used[inst["host"]][index] -= inst["flavor"][key]
                used[moved[inst["id"]]["destination"]][index] += inst["flavor"][key]
    for name in destinations:
        room = _room(hosts[name])
        assert all(used[name][i] <= ceiling * room[i] + 1e-6 for i in range(3))
        after = plan["after"]["hosts"][name]
        assert after["cpu"] <= ceiling + 1e-6 and after["memory"] <= ceiling + 1e-6
    # The bound is a bound: no plan beats it.
    bound = plan["bound"]
    assert bound["hosts_needed_at_least"] <= bound["hosts_used_after"] <= bound["hosts_used_before"]
    assert bound["hosts_used_before"] - bound["hosts_used_after"] == len(plan["freed_hosts"])


@settings(max_examples=100, deadline=None)
@given(cloud=clouds, chosen=consolidate_params, seed=st.integers(0, 1000))
def test_same_input_same_plan_whatever_the_order(cloud, chosen, seed):
    first = json.dumps(consolidate(cloud, **chosen), sort_keys=True)
    shuffled = copy.deepcopy(cloud)
    rng = random.Random(seed)
    rng.shuffle(shuffled["hosts"])
    rng.shuffle(shuffled["instances"])
    for inst in shuffled["instances"]:
        rng.shuffle(inst["server_groups"])
    assert json.dumps(consolidate(shuffled, **chosen), sort_keys=True) == first


# ------------------------------------------------------------------ the bound against the optimum

def _tiny_cloud(seed):
    """Two to five hosts in one or two AZs with up to three instances each, some pinned or measured."""
    rng = random.Random(seed)
    hosts, instances = [], []
    for index in range(rng.randint(2, 5)):
        measured = rng.random() < 0.5
        hosts.append(host("h%d" % index, cpu=round(rng.uniform(0, 0.9), 3) if measured else None,
                          memory=round(rng.uniform(0, 0.9), 3) if measured else None,
                          vcpus=rng.choice([2, 4]), memory_mb=rng.choice([8192, 16384]), disk_gb=rng.choice([40, 100]),
                          az=rng.choice(["az1", "az1", "az2"])))
        total = [0, 0, 0]
        for number in range(rng.randint(0, 3)):
            flavor = rng.choice([(1, 1024, 10), (2, 2048, 20), (4, 4096, 40), (1, 3072, 0)])
            if any(total[k] + flavor[k] > hosts[-1]["capacity"][key] * (4 if k == 0 else 1) for k, key in enumerate(KEYS)):
                continue
            total = [total[k] + flavor[k] for k in range(3)]
            extra = {"tags": ["leveller-pin"]} if rng.random() < 0.15 else {}
            known = measured and rng.random() < 0.7
            instances.append(instance("i%d-%d" % (index, number), "h%d" % index, *flavor,
                                      cpu=round(rng.uniform(0, 1), 3) if known else None,
                                      memory=round(rng.uniform(0, 1), 3) if known else None, **extra))
    return snapshot(hosts, instances)


def _fewest_hosts(cloud, ceiling):
    """Exhaustively, the fewest used hosts reachable by emptying whole hosts (server groups aside).

    The model the bound relaxes: kept hosts keep what they hold; a host that receives ends at or
    under the ceiling in vCPU, RAM and disk allocations and in measured CPU and memory load.
    """
    from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement
    from ansible_collections.cloudops.leveller.plugins.module_utils._plan import effective_params
    from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import consolidate as module
    placement = Placement(from_dict(cloud), effective_params(module.PARAMS, {"max_load_after": ceiling}))
    pools = {}
    for item in placement.host_list:
        if item.active and item.instances:
            pools.setdefault(item.pool, []).append(item)
    total = 0
    for members in pools.values():
        free = [h for h in members if module._fixed_reason(h) is None]
        best = len(members)
        for size in range(len(free), 0, -1):
            if any(_packs(list(chosen), [h for h in members if h not in chosen], ceiling)
                   for chosen in itertools.combinations(free, size)):
                best = len(members) - size
                break
        total += best
    return total


def _packs(emptied, kept, ceiling):
    insts = sorted((i for h in emptied for i in h.instances.values()), key=lambda i: (-i.flavor[1], i.id))
    room = dict((h.name, [ceiling * h.cap[r] - h.used[r] for r in (0, 1, 2)]
                 + [ceiling * h.denom[m] - h.abs[m] for m in (0, 1)]) for h in kept)

    def place(index):
        if index == len(insts):
            return True
        inst = insts[index]
        for dest in kept:
            need = list(inst.flavor) + [inst.contribution(dest, m) for m in (0, 1)]
            left = room[dest.name]
            if all(need[r] <= left[r] + 1e-9 for r in range(5)):
                for r in range(5):
                    left[r] -= need[r]
                found = place(index + 1)
                for r in range(5):
                    left[r] += need[r]
                if found:
                    return True
        return False
    return place(0)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10 ** 6), ceiling=st.sampled_from([0.5, 0.8, 1.0]))
def test_bound_never_exceeds_the_optimum(seed, ceiling):
    """The bound is at most the exhaustive optimum, which is at most what the plan reaches."""
    cloud = _tiny_cloud(seed)
    best = _fewest_hosts(cloud, ceiling)
    for budget in (0, 100):
        plan = consolidate(cloud, max_load_after=ceiling, max_moves=budget)
        bound = plan["bound"]
        assert bound["hosts_needed_at_least"] <= best <= bound["hosts_used_after"]
        assert sum(p["hosts_needed_at_least"] for p in bound["by_pool"]) == bound["hosts_needed_at_least"]


def test_improvement_phase_retargets_the_moves_it_makes_room_with():
    # Found by test_improvement_phase_keeps_every_rule: _make_room sent an instance already
    # planned onto a host elsewhere, but its move still named that host, so the plan put
    # 69,632 MB on h04 (65,536 MB). Every move whose destination changed is rebuilt now.
    chosen = {"max_load_after": 1.0, "max_moves": 0, "max_hosts": 0, "cooldown": 0, "cross_az": True,
              "keep_aggregates": False, "max_parallel": 1, "max_per_host": 1}
    test_improvement_phase_keeps_every_rule.hypothesis.inner_test(
        cloud=random_cloud(7, 7, 3), chosen=chosen, tame=False)
