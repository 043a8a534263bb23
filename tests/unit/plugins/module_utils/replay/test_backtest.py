# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's backtest (_backtest): a schedule replayed over a cloud's own history."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import xml.dom.minidom

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils import _backtest as backtest
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    group, host, instance, snapshot,
)

STEP = 300
TIMES = 24  # two hours


def cloud(pin=False):
    """h0 runs five busy instances (9 of its 8 CPUs asked for); h1-h3 one quiet one each."""
    hosts = [host("h%d" % k, cpu=0.5, memory=0.4, vcpus=8, memory_mb=32768) for k in range(4)]
    insts = []
    for k in range(5):
        extra = {"metadata": {"leveller:pin": "true"}} if pin and k < 4 else {}
        insts.append(instance("busy%d" % k, "h0", vcpus=2, memory_mb=4096, cpu=0.9, memory=0.5, **extra))
    for k in range(1, 4):
        insts.append(instance("quiet%d" % k, "h%d" % k, vcpus=2, memory_mb=4096, cpu=0.1, memory=0.5))
    return from_dict(snapshot(hosts, insts))


def history(snap, busy=0.9, quiet=0.1, gaps=False):
    instances = {}
    for inst in snap.instances:
        value = busy if inst.id.startswith("busy") else quiet
        series = [value] * TIMES
        if gaps:
            series[0] = None
            series[5] = None
        instances[inst.id] = {"cpu": series}
    return {"start": 1765000000.0, "step": STEP, "times": TIMES,
            "hosts": dict((h.name, {"cpu": [0.5] * TIMES}) for h in snap.hosts),
            "instances": instances}


IDLE = {"name": "idle", "schedule": [{"strategy": "home"}]}
HOT = {"name": "relieve", "schedule": [{"strategy": "overload", "when": "hot", "level": 1.0,
                                        "params": {"threshold": 0.9}}]}
PACK = {"name": "pack", "schedule": [{"strategy": "consolidate", "every": 3600,
                                      "params": {"max_load_after": 0.9}}]}


def test_relieving_the_hot_host_cuts_its_overloaded_time_and_the_baseline_moves_nothing():
    snap = cloud()
    result = backtest.run(snap, history(snap), [IDLE, HOT, PACK])
    idle, hot, pack = result["configurations"]
    assert [r["name"] for r in result["configurations"]] == ["idle", "relieve", "pack"]
    assert idle["migrations"] == 0 and idle["moves"] == []
    # h0 asks 9 CPUs of 8 for the whole history (each point holds for one step) when nothing moves
    assert idle["overloaded_host_hours"] == pytest.approx(TIMES * STEP / 3600.0)
    assert hot["migrations"] >= 1
    assert hot["overloaded_host_hours"] < idle["overloaded_host_hours"] / 2
    assert all(m["source"] == "h0" for m in hot["moves"])
    assert hot["refused_moves"] == 0 and pack["refused_moves"] == 0
    # consolidate packs the quiet ones: fewer hosts on than the 4 of the start
    assert pack["hosts_used_at_end"] < 4
    assert result["ticks"] == TIMES and result["hosts"] == 4 and result["instances"] == 8
    assert result["load_from"]["instance series"] == 8
    assert "relieve" in result["table"].split("\n", maxsplit=1)[0]
    xml.dom.minidom.parseString(backtest.svg(result))


def test_pinned_instances_never_move_and_the_plan_is_deterministic():
    snap = cloud(pin=True)
    first = backtest.run(snap, history(snap), [HOT, PACK])
    again = backtest.run(snap, history(snap), [HOT, PACK])
    for run in first["configurations"]:
        assert not [m for m in run["moves"] if m["instance"] in ("busy0", "busy1", "busy2", "busy3")]
    assert [r["moves"] for r in first["configurations"]] == [r["moves"] for r in again["configurations"]]


def test_anti_affinity_holds_in_every_replayed_plan():
    hosts = [host("h%d" % k, cpu=0.3, memory=0.3, vcpus=8, memory_mb=32768) for k in range(3)]
    anti = group("g1", "anti-affinity", ["a1", "a2"])
    insts = [instance("a1", "h0", cpu=0.1, groups=[anti]), instance("a2", "h1", cpu=0.1, groups=[anti]),
             instance("b1", "h2", cpu=0.1)]
    snap = from_dict(snapshot(hosts, insts))
    hist = {"start": 0.0, "step": STEP, "times": TIMES, "hosts": {},
            "instances": dict((i.id, {"cpu": [0.1] * TIMES}) for i in snap.instances)}
    result = backtest.run(snap, hist, [{"name": "pack", "schedule": [
        {"strategy": "consolidate", "every": 0, "params": {"max_load_after": 1.0}}]}])
    where = {"a1": "h0", "a2": "h1", "b1": "h2"}
    for move in result["configurations"][0]["moves"]:
        where[move["instance"]] = move["destination"]
        assert where["a1"] != where["a2"]


def test_gaps_take_the_value_before_and_host_series_stand_in_for_missing_instances():
    snap = cloud()
    hist = history(snap, gaps=True)
    del hist["instances"]["quiet1"]
    built = backtest.Cloud(snap, hist)
    assert built.load_from == {"instance series": 7, "host series": 1, "snapshot": 0, "none": 0, "stopped": 0}
    busy = built.vms[0].trace
    assert busy[0] == busy[1] == 0.9 and busy[5] == 0.9
    # quiet1 alone on h1 (8 CPUs, 2 vCPUs): h1's busy 0.5 x 8 CPUs / 2 vCPUs, capped at 1
    quiet = [vm for vm in built.vms if vm.name == "quiet1"][0]
    assert quiet.trace[0] == 1.0


@pytest.mark.parametrize("configurations, message", [
    ([], "configurations: expected a list"),
    ([{"name": "x"}], "configurations[0].schedule: expected a list"),
    ([{"name": "x", "schedule": [{"strategy": "balance", "colour": 1}]}], "schedule[0].colour: unknown key"),
    ([{"name": "x", "schedule": [{"strategy": "shuffle"}]}], "schedule[0].strategy: expected one of"),
    ([{"name": "x", "schedule": [{"strategy": "balance", "params": {"min_laod": 1}}]}],
     "schedule[0].params: min_laod: unknown parameter"),
    ([{"name": "x", "schedule": [{"strategy": "balance", "every": 60}]}], "is shorter than the history's step"),
    ([{"name": "x", "schedule": [{"strategy": "balance", "level": 0.5}]}], "level: only with when: hot"),
    ([{"name": "x", "schedule": [{"strategy": "balance", "when": "sometimes"}]}], "when: expected one of"),
    ([{"name": "x", "schedule": [{"strategy": "balance", "estimate": {"percentile": 90}}]}], "estimate: expected"),
    ([IDLE, IDLE], "configurations[1].name: 'idle' is used twice"),
    ([{"name": "x", "schedule": [{"strategy": "home"}], "extra": 1}], "configurations[0].extra: unknown key"),
])
def test_bad_configurations_fail_before_anything_is_replayed(configurations, message):
    snap = cloud()
    with pytest.raises(backtest.BacktestError) as err:
        backtest.run(snap, history(snap), configurations)
    assert message in str(err.value)


@pytest.mark.parametrize("change, message", [
    ({"times": 1}, "history.times: at least 2"),
    ({"step": 0}, "history.step"),
    ({"start": "yesterday"}, "history.start"),
    ({"instances": {"busy0": {"cpu": [0.5, 0.5]}}}, "history.instances.busy0.cpu: expected a list of 24"),
    ({"instances": {"busy0": {"cpu": ["high"] * TIMES}}}, "history.instances.busy0.cpu[0]"),
])
def test_bad_history_names_the_field(change, message):
    snap = cloud()
    hist = history(snap)
    hist.update(change)
    with pytest.raises(backtest.BacktestError) as err:
        backtest.run(snap, hist, [IDLE])
    assert message in str(err.value)


def test_missing_history_key_says_where_it_comes_from():
    snap = cloud()
    with pytest.raises(backtest.BacktestError) as err:
        backtest.run(snap, {"start": 0, "step": 300}, [IDLE])
    assert "history.times is missing" in str(err.value) and "hypervisor_load_info" in str(err.value)


def test_a_stopped_instance_uses_no_cpu_and_takes_no_share_of_its_host():
    hosts = [host("h0", cpu=0.5, memory=0.3, vcpus=8, memory_mb=32768)]
    insts = [instance("run", "h0", vcpus=2, cpu=0.5), instance("off", "h0", vcpus=2, status="SHUTOFF")]
    snap = from_dict(snapshot(hosts, insts))
    hist = {"start": 0.0, "step": STEP, "times": 4, "hosts": {"h0": {"cpu": [0.5] * 4}}, "instances": {}}
    built = backtest.Cloud(snap, hist)
    assert built.load_from["stopped"] == 1 and built.load_from["host series"] == 1
    traces = dict((vm.name, vm.trace) for vm in built.vms)
    assert set(traces["off"]) == {0.0}
    assert traces["run"][0] == 1.0  # the host's 4 busy CPUs all come from the 2-vCPU running one (capped)


def test_a_move_the_cloud_made_later_in_the_history_is_not_seen_before_it_happened():
    snap = cloud()
    moved = "2025-12-06T06:30:00+00:00"  # 1765000000 is 05:46:40; this is 2,600 s later
    snap.instances[0].last_moved_at = moved
    built = backtest.Cloud(snap, history(snap))
    policy = backtest.SnapshotPolicy(built, "home", {}, "home")
    start = backtest._Start(built)
    assert policy.snapshot(start, 0.0).instances[0].last_moved_at is None
    assert policy.snapshot(start, 3000.0).instances[0].last_moved_at == moved
