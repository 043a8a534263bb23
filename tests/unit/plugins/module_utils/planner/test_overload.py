# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy overload: threshold edges, placing every hot host's instances together, making room."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.benchmarks.check import check
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    group, host, instance, random_cloud, snapshot,
)

# Hosts have 32 cores: an instance of v vCPUs at cpu c adds v * c / 32 to its host's CPU load.


def overload(cloud, **params):
    params.setdefault("threshold", 0.5)
    params.setdefault("weight_memory", 0)
    params.setdefault("max_moves", 0)
    plan = make_plan(from_dict(cloud), "overload", params).to_dict()
    assert check(cloud, plan)["violations"] == 0
    return plan


def moved(plan):
    return [(m["instance"], m["source"], m["destination"]) for m in plan["moves"]]


def cpu_after(plan):
    return dict((name, entry["cpu"]) for name, entry in plan["after"]["hosts"].items())


# ---------------------------------------------------------------- threshold edges

def edge_cloud(load):
    hosts = [host("a", cpu=load), host("b", cpu=0.25)]
    insts = [instance("i1", "a", vcpus=8, cpu=0.5), instance("i2", "a", vcpus=8, cpu=0.5)]
    return snapshot(hosts, insts)


def test_host_exactly_at_threshold_is_left_alone():
    plan = overload(edge_cloud(0.5))
    assert plan["moves"] == [] and plan["bound"]["overloaded_before"] == 0
    assert "no active host above threshold 0.5" in plan["summary"]["reason"]


def test_host_just_above_threshold_is_relieved_with_one_move():
    plan = overload(edge_cloud(0.5000001))
    assert len(plan["moves"]) == 1 and plan["bound"]["overloaded_after"] == 0
    assert cpu_after(plan)["a"] <= 0.5


def test_destination_may_end_exactly_at_threshold():
    # b at 0.25 takes an instance worth 0.25: 0.5 is not above the threshold.
    hosts = [host("a", cpu=0.75), host("b", cpu=0.25)]
    insts = [instance("big", "a", vcpus=8, cpu=1.0), instance("rest", "a", vcpus=8, cpu=1.0, **{"tags": ["leveller-pin"]})]
    plan = overload(snapshot(hosts, insts))
    assert moved(plan) == [("big", "a", "b")]
    assert cpu_after(plan) == {"a": 0.5, "b": 0.5}
    # A hair less room on b and the move would overload it: nothing moves.
    hosts[1]["load"]["cpu"] = 0.2500001
    stuck = overload(snapshot(hosts, insts))
    assert stuck["moves"] == [] and stuck["bound"]["overloaded_after"] == 1


# ---------------------------------------------------------------- all hot hosts together

def test_biggest_instance_of_any_hot_host_gets_the_big_room_first():
    """Relieving the hottest host first on its own would spend the one big room on its small
    instances; placing every chosen instance biggest first needs 3 moves instead of 6."""
    hosts = [host("x", cpu=0.65), host("y", cpu=0.6), host("d1", cpu=0.3), host("d2", cpu=0.4),
             host("d3", cpu=0.4)]
    insts = [instance("x1", "x", vcpus=4, cpu=0.75), instance("x2", "x", vcpus=4, cpu=0.75),
             instance("y1", "y", vcpus=8, cpu=0.5)]
    insts += [instance("y-small%d" % n, "y", vcpus=1, cpu=1.0) for n in range(4)]
    plan = overload(snapshot(hosts, insts))
    assert sorted(moved(plan)) == [("x1", "x", "d2"), ("x2", "x", "d3"), ("y1", "y", "d1")]
    assert max(cpu_after(plan).values()) <= 0.5


# ---------------------------------------------------------------- making room

def room_cloud(filler_extra=None, hot_groups=None, buddy_groups=None):
    """a is hot (0.7, threshold 0.5): "hot" alone is enough to relieve it; the warm instances
    need four moves and there is room for only two of them. b has the CPU room for hot but
    not the RAM, held by an idle "filler"; c has RAM but not the CPU room for hot."""
    hosts = [host("a", cpu=0.7), host("b", cpu=0.1), host("c", cpu=0.4)]
    insts = [instance("hot", "a", vcpus=8, cpu=1.0, memory_mb=16384, groups=hot_groups)]
    insts += [instance("warm%d" % n, "a", vcpus=4, cpu=0.5, memory_mb=4096) for n in range(4)]
    insts.append(instance("filler", "b", vcpus=2, cpu=0.05, memory_mb=61440, **(filler_extra or {})))
    insts.append(instance("buddy", "c", vcpus=1, cpu=0.1, memory_mb=1024, groups=buddy_groups))
    return snapshot(hosts, insts)


def test_make_room_when_it_saves_moves():
    plan = overload(room_cloud())
    assert moved(plan) == [("filler", "b", "c"), ("hot", "a", "b")]
    assert plan["moves"][0]["reason"].startswith("overload: make room on b for vm-hot from a")
    # The hot instance waits for the room: it moves in a later wave than the filler.
    assert plan["moves"][1]["wave"] > plan["moves"][0]["wave"]
    assert plan["bound"]["overloaded_after"] == 0 and max(cpu_after(plan).values()) <= 0.5


def test_no_room_is_made_by_breaking_anti_affinity():
    # filler and buddy may not share a host: filler cannot go to c, the only host with its RAM.
    g = group("g", "anti-affinity", ["filler", "buddy"])
    plan = overload(room_cloud(filler_extra={"server_groups": [g]}, buddy_groups=[g]))
    assert "filler" not in [m[0] for m in moved(plan)]
    assert "hot" not in [m[0] for m in moved(plan)]
    assert plan["bound"]["overloaded_after"] == 1
    assert any(s["name"] == "a" and "still above threshold" in s["reason"] for s in plan["skipped"])


def test_no_room_is_made_where_the_instance_still_may_not_go():
    # hot is anti-affine with "guard" on b: moving the filler off b would free the RAM but hot
    # still could not land there, and one move cannot clear both; nothing is moved to make room.
    g = group("g", "anti-affinity", ["hot", "guard"])
    cloud = room_cloud(hot_groups=[g])
    cloud["instances"].append(instance("guard", "b", vcpus=1, cpu=0.1, memory_mb=0, groups=[g]))
    plan = overload(cloud)
    assert "filler" not in [m[0] for m in moved(plan)] and "guard" not in [m[0] for m in moved(plan)]
    assert ("hot", "a", "b") not in moved(plan)
    assert plan["bound"]["overloaded_after"] == 1


def test_make_room_by_moving_two_instances_off_one_host():
    """No host has the CPU room for "big"; b has it once both its instances leave, each to its
    own host. Three moves, where a's small instances could not relieve it at all."""
    hosts = [host("a", cpu=0.9), host("b", cpu=0.25), host("c", cpu=0.3), host("d", cpu=0.3)]
    insts = [instance("big", "a", vcpus=16, cpu=1.0)]
    insts += [instance("small%d" % n, "a", vcpus=1, cpu=1.0) for n in range(10)]
    insts += [instance("y1", "b", vcpus=4, cpu=1.0), instance("y2", "b", vcpus=4, cpu=1.0)]
    plan = overload(snapshot(hosts, insts))
    assert moved(plan) == [("y2", "b", "c"), ("y1", "b", "d"), ("big", "a", "b")]
    assert all(m["reason"].startswith("overload: make room on b for vm-big") for m in plan["moves"][:2])
    assert cpu_after(plan) == {"a": 0.4, "b": 0.5, "c": 0.425, "d": 0.425}
    # With a budget of two moves there is no room to make: the two would be wasted.
    tight = overload(snapshot(hosts, insts), max_moves=2)
    assert not [m for m in tight["moves"] if m["instance"] in ("y1", "y2")]


def test_pinned_filler_is_never_moved_to_make_room():
    plan = overload(room_cloud(filler_extra={"tags": ["leveller-pin"]}))
    assert "filler" not in [m[0] for m in moved(plan)]
    assert plan["bound"]["overloaded_after"] == 1


def test_no_room_is_made_when_direct_moves_do_as_well():
    # Excess 0.1: two warm instances (0.0625 each) are enough, as many moves as making room.
    cloud = room_cloud()
    cloud["hosts"][0]["load"]["cpu"] = 0.6
    plan = overload(cloud)
    assert len(plan["moves"]) == 2 and "filler" not in [m[0] for m in moved(plan)]
    assert all(m[0].startswith("warm") for m in moved(plan))
    assert plan["bound"]["overloaded_after"] == 0


def test_make_room_needs_two_moves_of_budget():
    plan = overload(room_cloud(), max_moves=1)
    assert len(plan["moves"]) <= 1 and "filler" not in [m[0] for m in moved(plan)]
    assert plan["bound"]["overloaded_after"] == 1


def test_same_plan_twice():
    first = overload(room_cloud())
    assert overload(room_cloud()) == first


# random_cloud(seed, hosts, per_host) draws on which overload (threshold 0.5, cpu and memory)
# makes room, found by searching seeds 0-2999: make-room is rare on random clouds, so the
# hypothesis properties alone seldom see it.
MAKE_ROOM_CLOUDS = [(92, 7, 6), (406, 7, 5), (508, 9, 5), (537, 8, 2), (690, 6, 5), (755, 9, 3), (1005, 8, 2),
                    (1666, 9, 6), (1850, 9, 3), (1894, 9, 6), (2016, 8, 1), (2046, 9, 5), (2212, 9, 2),
                    (2383, 7, 3), (2445, 8, 2), (2491, 3, 6), (2741, 8, 3), (2868, 8, 3)]
# Where moving every instance off a host would still not make room (load no instance explains):
# an early version moved them anyway.
NO_ROOM_CLOUDS = [(565, 8, 6), (2597, 9, 5)]


def test_make_room_on_random_clouds_keeps_every_rule():
    rooms = 0
    for seed, hosts, per_host in MAKE_ROOM_CLOUDS + NO_ROOM_CLOUDS:
        cloud = random_cloud(seed, hosts, per_host)
        for max_parallel in (1, 4):
            plan = overload(cloud, weight_memory=1.0, max_parallel=max_parallel, max_per_host=2)  # checked inside
            after = plan["after"]["hosts"]
            for move in plan["moves"]:
                if not move["reason"].startswith("overload: make room"):
                    continue
                assert (seed, hosts, per_host) not in NO_ROOM_CLOUDS, move
                rooms += 1
                # The host room was made on ends at or under the threshold (it may have been
                # above it on one metric before, if the leaving instance carried that load).
                source = after[move["source"]]
                assert max(source["cpu"], source["memory"]) <= 0.5 + 1e-6
                helped = [m for m in plan["moves"] if m["destination"] == move["source"] and m["wave"] > move["wave"]]
                assert helped, move
    assert rooms >= len(MAKE_ROOM_CLOUDS) * 2
