# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edges of the balance and overload thresholds, and small worked cases."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.cloudops.leveller.benchmarks.generate import generate
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import STRATEGIES, make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    group, host, instance, snapshot,
)


def plan_of(cloud, strategy="balance", **params):
    return make_plan(from_dict(cloud), strategy, params).to_dict()


def two_hosts(busy_cpu=0.8, idle_cpu=0.2, memory=0.0, count=8):
    """Host a carries count identical instances sharing busy_cpu; host b is empty at idle_cpu."""
    hosts = [host("a", cpu=busy_cpu, memory=memory), host("b", cpu=idle_cpu, memory=memory)]
    # Each instance is busy on busy_cpu * 32 / count cores, as a fraction (<= 1) of its own vCPUs.
    cores = busy_cpu * 32.0 / count
    vcpus = max(2, int(math.ceil(cores)))
    insts = [instance("i%d" % n, "a", vcpus=vcpus, cpu=cores / vcpus) for n in range(count)]
    return snapshot(hosts, insts)


def test_registry_lists_both_strategies():
    assert set(["balance", "overload"]) <= set(STRATEGIES)


def test_min_load_just_above_and_below():
    cloud = two_hosts(busy_cpu=0.5)
    # score(a) = 0.5 (memory 0): acting needs score >= min_load.
    assert plan_of(cloud, min_load=0.5)["summary"]["moves"] > 0
    below = plan_of(cloud, min_load=0.5000001)
    assert below["summary"]["moves"] == 0
    assert "min_load" in below["summary"]["reason"]
    assert below["summary"]["acted"] is False


def test_min_diff_just_above_and_below():
    cloud = two_hosts(busy_cpu=0.6, idle_cpu=0.5)
    # max/min - 1 = 0.2
    assert plan_of(cloud, min_load=0, min_diff=0.19, min_gain=0.001)["summary"]["moves"] > 0
    level = plan_of(cloud, min_load=0, min_diff=0.21, min_gain=0.001)
    assert level["summary"]["moves"] == 0 and "min_diff" in level["summary"]["reason"]


def test_min_zero_is_guarded():
    cloud = two_hosts(busy_cpu=0.8, idle_cpu=0.0)
    plan = plan_of(cloud, min_diff=1000)
    assert plan["before"]["spread"]["min"] == 0 and plan["before"]["spread"]["ratio"] is None
    assert plan["summary"]["moves"] > 0  # an idle host makes the ratio unbounded: act
    everything_idle = plan_of(two_hosts(busy_cpu=0.0, idle_cpu=0.0), min_load=0, min_diff=0)
    assert everything_idle["summary"]["moves"] == 0
    assert everything_idle["before"]["spread"]["ratio"] == 0


def test_no_hosts_no_instances_single_host():
    empty = plan_of(snapshot([], []))
    assert empty["moves"] == [] and empty["before"]["spread"]["active_hosts"] == 0
    assert "no active host" in empty["summary"]["reason"]
    idle = plan_of(snapshot([host("a", cpu=0.9, memory=0.9), host("b", cpu=0.1, memory=0.1)], []))
    assert idle["moves"] == []
    single = plan_of(snapshot([host("a", cpu=0.9, memory=0.9)], [instance("i1", "a")]))
    assert single["moves"] == []
    for strategy in ("balance", "overload"):
        assert plan_of(snapshot([], []), strategy)["summary"]["acted"] is False


def test_balance_levels_two_hosts_and_stops():
    plan = plan_of(two_hosts(), max_moves=0)
    assert 1 <= plan["summary"]["moves"] <= 4
    after = plan["after"]["hosts"]
    assert abs(after["a"]["cpu"] - after["b"]["cpu"]) < 0.2
    assert plan["after"]["spread"]["stddev"] < plan["before"]["spread"]["stddev"]
    assert all(m["source"] == "a" and m["destination"] == "b" for m in plan["moves"])
    assert [m["wave"] for m in plan["moves"]] == list(range(1, plan["summary"]["moves"] + 1))
    assert plan["summary"]["gib_moved"] == plan["summary"]["moves"] * 4.0


def test_min_gain_stops_tiny_moves():
    assert plan_of(two_hosts(), min_gain=100.0)["summary"]["moves"] == 0


def test_budgets():
    assert plan_of(two_hosts(), max_moves=1)["summary"]["moves"] == 1
    assert "max_moves" in plan_of(two_hosts(), max_moves=1)["summary"]["reason"]
    assert plan_of(two_hosts(), max_gib=3.9)["summary"]["moves"] == 0
    assert plan_of(two_hosts(), max_gib=8)["summary"]["moves"] <= 2


def test_cooldown_uses_snapshot_time():
    cloud = two_hosts(count=2)
    for inst in cloud["instances"]:
        inst["last_moved_at"] = "2026-11-22T21:30:00Z"  # 30 min before taken_at
    assert plan_of(cloud, cooldown=3600)["summary"]["moves"] == 0
    skipped = plan_of(cloud, cooldown=3600)["skipped"]
    assert skipped[0]["kind"] == "instance" and skipped[0]["reason"].startswith("cooldown")
    assert plan_of(cloud, cooldown=1800)["summary"]["moves"] == 1
    assert plan_of(cloud, cooldown=0)["summary"]["moves"] == 1


@pytest.mark.parametrize("extra,reason", [
    ({"metadata": {"leveller:pin": "True"}}, "pinned by metadata"),
    ({"tags": ["leveller-pin"]}, "pinned by tag"),
    ({"migratable": False, "not_migratable_reason": "vGPU"}, "not migratable: vGPU"),
    ({"status": "SHUTOFF"}, "status SHUTOFF"),
    ({"task_state": "resize_prep"}, "busy"),
    ({"locked": True}, "locked"),
])
def test_unmovable_instances_stay_and_say_why(extra, reason):
    cloud = two_hosts(count=2)
    for inst in cloud["instances"]:
        inst.update(extra)
    plan = plan_of(cloud)
    assert plan["moves"] == []
    assert [s for s in plan["skipped"] if s["kind"] == "instance"][0]["reason"].startswith(reason)


def test_exclude_by_name_and_id():
    cloud = two_hosts(count=2)
    plan = plan_of(cloud, exclude=["vm-i0", "i1"], max_moves=0)
    assert plan["moves"] == []


@pytest.mark.parametrize("extra", [{"enabled": False}, {"up": False}, {"forced_down": True}])
def test_disabled_or_down_hosts_never_receive(extra):
    cloud = two_hosts()
    cloud["hosts"][1].update(extra)
    plan = plan_of(cloud)
    assert plan["moves"] == []
    assert plan["skipped"][0] == {"kind": "host", "name": "b", "reason": plan["skipped"][0]["reason"]}
    assert plan["before"]["hosts"]["b"]["active"] is False


def test_az_and_aggregates():
    cloud = two_hosts()
    cloud["hosts"][1]["az"] = "other"
    assert plan_of(cloud)["moves"] == []
    assert plan_of(cloud, cross_az=True)["moves"]
    cloud = two_hosts()
    cloud["hosts"][1]["aggregates"] = ["gpu"]
    assert plan_of(cloud)["moves"] == []
    assert plan_of(cloud, keep_aggregates=False)["moves"]


def test_scope_limits_hosts():
    cloud = two_hosts()
    cloud["hosts"].append(host("c", cpu=0.0, memory=0.0, az="other"))
    plan = plan_of(cloud, scope={"hosts": ["a", "c"]}, cross_az=True)
    assert set(m["destination"] for m in plan["moves"]) == set(["c"])
    assert plan_of(cloud, scope={"az": ["other"]})["moves"] == []


def test_capacity_with_allocation_ratio_and_reserved():
    cloud = two_hosts(count=2)
    b = cloud["hosts"][1]
    b["capacity"]["memory_mb"] = 8192
    b["reserved"]["memory_mb"] = 4097  # 4095 MB schedulable: a 4096 MB instance does not fit
    assert plan_of(cloud)["moves"] == []
    b["reserved"]["memory_mb"] = 4096
    assert len(plan_of(cloud)["moves"]) == 1
    b["reserved"]["memory_mb"] = 0
    b["allocation_ratio"]["vcpus"] = 13 / 32.0  # 13 vCPUs schedulable: one 13-vCPU instance fits
    assert len(plan_of(cloud, max_moves=0)["moves"]) == 1


def test_anti_affinity_and_max_server_per_host():
    hosts = [host("a", cpu=0.9), host("b", cpu=0.1), host("c", cpu=0.1)]
    g = group("g", "anti-affinity", ["i1", "i2"])
    insts = [instance("i1", "a", cpu=1.0, groups=[g]), instance("i2", "b", groups=[g]),
             instance("i3", "c", groups=[g])]
    g["members"].append("i3")
    plan = plan_of(snapshot(hosts, insts), max_moves=0)
    assert plan["moves"] == []
    g["rules"] = {"max_server_per_host": 2}
    moved = plan_of(snapshot(hosts, insts), max_moves=0)["moves"]
    assert [m["instance"] for m in moved] == ["i1"]


def test_affinity_members_stay_together():
    hosts = [host("a", cpu=0.9), host("b", cpu=0.1)]
    g = group("g", "affinity", ["i1", "i2"])
    insts = [instance("i1", "a", cpu=1.0, groups=[g]), instance("i2", "a", cpu=1.0, groups=[g])]
    assert plan_of(snapshot(hosts, insts))["moves"] == []
    alone = group("solo", "affinity", ["i1"])
    insts = [instance("i1", "a", cpu=1.0, groups=[alone])]
    assert len(plan_of(snapshot(hosts, insts))["moves"]) == 1


def test_soft_policies_never_get_worse():
    hosts = [host("a", cpu=0.9), host("b", cpu=0.1)]
    g = group("g", "soft-anti-affinity", ["i1", "i2"])
    insts = [instance("i1", "a", cpu=1.0, groups=[g]), instance("i2", "b", groups=[g])]
    assert plan_of(snapshot(hosts, insts))["moves"] == []
    g = group("g", "soft-affinity", ["i1", "i2"])
    insts = [instance("i1", "a", cpu=1.0, groups=[g]), instance("i2", "a", cpu=1.0, groups=[g])]
    assert plan_of(snapshot(hosts, insts))["moves"] == []


def test_allocation_based_load_when_unmeasured():
    hosts = [host("a"), host("b")]
    insts = [instance("i%d" % n, "a", vcpus=16, memory_mb=8192) for n in range(4)]
    plan = plan_of(snapshot(hosts, insts), max_moves=0)
    # 64 of 128 schedulable vCPUs, 32768 of 65536 MB: cpu 0.5, memory 0.5
    assert plan["before"]["hosts"]["a"] == {"score": 1.0, "cpu": 0.5, "memory": 0.5, "instances": 4}
    assert plan["after"]["hosts"]["a"]["instances"] == 2


def test_unknown_instance_load_shares_host_load_by_flavor():
    hosts = [host("a", cpu=0.75, memory=0.0), host("b", cpu=0.0, memory=0.0)]
    insts = [instance("big", "a", vcpus=8, memory_mb=16384), instance("small", "a", vcpus=4, cpu=1.0)]
    # a: 24 of 32 cores busy; small uses 4, so big carries the other 20. Either move leaves a
    # 0.5 gap; small copies less RAM, so it goes.
    plan = plan_of(snapshot(hosts, insts), min_diff=0, min_load=0, max_moves=1)
    assert plan["moves"][0]["instance"] == "small"
    assert plan["after"]["hosts"]["a"]["cpu"] == 0.625


def test_bad_params_name_the_parameter():
    cloud = from_dict(two_hosts())
    with pytest.raises(PlanError, match="^max_moves: expected an integer >= 0"):
        make_plan(cloud, "balance", {"max_moves": -1})
    with pytest.raises(PlanError, match="^threshold: unknown parameter"):
        make_plan(cloud, "balance", {"threshold": 0.5})
    with pytest.raises(PlanError, match="^strategy: expected one of balance, .*got 'pack'"):
        make_plan(cloud, "pack", {})
    with pytest.raises(PlanError, match="^scope: unknown key zone"):
        make_plan(cloud, "balance", {"scope": {"zone": ["x"]}})
    with pytest.raises(PlanError, match="^weight_cpu: weight_cpu and weight_memory cannot both be 0"):
        make_plan(cloud, "balance", {"weight_cpu": 0, "weight_memory": 0})


def test_params_in_plan_are_effective_values():
    plan = plan_of(two_hosts(), max_moves=3)
    assert plan["params"]["max_moves"] == 3
    assert plan["params"]["weight_cpu"] == 1.0 and plan["params"]["min_load"] == 0.5
    assert plan["params"]["min_diff"] == 0.2 and plan["params"]["cooldown"] == 3600
    assert plan["snapshot_digest"].startswith("sha256:")
    json.dumps(plan, allow_nan=False)


def test_overload_relieves_hot_host_with_busiest_instance_first():
    hosts = [host("a", cpu=0.95, memory=0.3), host("b", cpu=0.2, memory=0.3),
             host("c", cpu=0.5, memory=0.3)]
    insts = [instance("small", "a", vcpus=2, cpu=1.0), instance("busy", "a", vcpus=8, cpu=1.0),
             instance("idle", "a", vcpus=8, cpu=0.1)]
    plan = plan_of(snapshot(hosts, insts), "overload", threshold=0.9)
    assert [(m["instance"], m["destination"]) for m in plan["moves"]] == [("busy", "b")]
    assert plan["after"]["hosts"]["a"]["cpu"] <= 0.9
    assert plan["bound"]["overloaded_before"] == 1 and plan["bound"]["overloaded_after"] == 0
    calm = plan_of(snapshot(hosts, insts), "overload", threshold=0.96)
    assert calm["moves"] == [] and "no active host above threshold" in calm["summary"]["reason"]


def test_overload_reports_hosts_it_cannot_relieve():
    hosts = [host("a", cpu=0.95), host("b", cpu=0.85)]
    insts = [instance("busy", "a", vcpus=8, cpu=1.0)]
    plan = plan_of(snapshot(hosts, insts), "overload", threshold=0.9)
    assert plan["moves"] == []
    assert any(s["name"] == "a" and "still above threshold" in s["reason"] for s in plan["skipped"])


def test_instances_kept_on_a_stuck_busiest_host_say_why():
    hosts = [host("a", cpu=0.9), host("b", cpu=0.1)]
    g = group("g", "anti-affinity", ["i1", "i2"])
    insts = [instance("i1", "a", cpu=1.0, groups=[g]), instance("i2", "b", groups=[g]),
             instance("huge", "a", vcpus=28, cpu=26.8 / 28)]
    plan = plan_of(snapshot(hosts, insts), max_moves=0)
    assert plan["moves"] == []
    reasons = dict((s["id"], s["reason"]) for s in plan["skipped"] if s["kind"] == "instance")
    assert reasons["i1"] == "stays on a, the busiest host of its pool: anti-affinity group g already has 1 on b"
    assert "cuts the spread by min_gain" in reasons["huge"]
    assert {"kind": "host", "name": "a", "reason": "no move off this host cuts the spread by min_gain and"
            " keeps every rule"} in plan["skipped"]


def test_plan_does_not_depend_on_hash_randomisation(tmp_path):
    """Sets and dicts must never decide the order: two interpreters, two hash seeds, one plan."""
    path = tmp_path / "cloud.json"
    path.write_text(json.dumps(generate(hosts=60, seed=3, per_host=8)))
    code = ("import hashlib, json, sys\n"
            "from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import load_file\n"
            "from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan\n"
            "snap = load_file(sys.argv[1])\n"
            "for name in ('balance', 'overload'):\n"
            "    text = json.dumps(make_plan(snap, name, {'max_moves': 0}).to_dict(), sort_keys=True)\n"
            "    print(hashlib.sha256(text.encode()).hexdigest())\n")
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        outputs.append(subprocess.check_output([sys.executable, "-c", code, str(path)], env=env))
    assert outputs[0] == outputs[1]


def _dense_and_sparse(count=4):
    """Host a: count small CPU-dense instances (2 GiB) and count RAM-heavy ones (32 GiB) at the
    same CPU; host b idle. Per GiB copied, the small ones cut the CPU spread far more."""
    hosts = [host("a", cpu=0.9, memory=0.0, memory_mb=524288), host("b", cpu=0.1, memory=0.0, memory_mb=524288)]
    insts = [instance("s%d" % n, "a", vcpus=2, memory_mb=2048, cpu=0.9) for n in range(count)]
    insts += [instance("r%d" % n, "a", vcpus=2, memory_mb=32768, cpu=0.9) for n in range(count)]
    return snapshot(hosts, insts)


def test_min_gain_per_gib_off_by_default():
    cloud = _dense_and_sparse()
    base = dict(max_moves=0, weight_memory=0, min_load=0)
    default = plan_of(cloud, **base)
    explicit = plan_of(cloud, min_gain_per_gib=0, **base)
    assert default["params"]["min_gain_per_gib"] == 0
    assert default["moves"] == explicit["moves"]


def test_min_gain_per_gib_skips_the_expensive_tail():
    cloud = _dense_and_sparse()
    base = dict(max_moves=0, weight_memory=0, min_load=0, min_diff=0, min_gain=0.0001)
    free = plan_of(cloud, **base)
    assert any(m["instance"].startswith("r") for m in free["moves"])
    thrifty = plan_of(cloud, min_gain_per_gib=0.004, **base)
    moved = [m["instance"] for m in thrifty["moves"]]
    # The CPU-dense instances still move; the RAM-heavy ones, which cut less than 0.004 per GiB
    # (plus move_cost_gib) copied, stay.
    assert moved and all(name.startswith("s") for name in moved)
    assert thrifty["summary"]["gib_moved"] < free["summary"]["gib_moved"]
    for move in thrifty["moves"]:
        gain = float(move["reason"].rsplit("spread -", 1)[1])
        assert gain >= 0.004 * (move["memory_mb"] / 1024.0 + 4.0) - 1e-4


def test_min_gain_per_gib_is_checked():
    with pytest.raises(PlanError, match="min_gain_per_gib"):
        plan_of(two_hosts(), min_gain_per_gib=-1)


def test_min_gain_per_gib_plans_are_deterministic():
    cloud = generate(60, 3)
    params = dict(max_moves=0, weight_memory=0, min_load=0, min_gain_per_gib=0.002)
    first = json.dumps(plan_of(cloud, **params), sort_keys=True)
    assert first == json.dumps(plan_of(json.loads(json.dumps(cloud)), **params), sort_keys=True)
