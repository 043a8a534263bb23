# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small snapshot builders for the planner tests, and a hypothesis strategy for random clouds."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random

from hypothesis import strategies as st

TAKEN_AT = "2026-11-22T22:00:00Z"


def host(name, cpu=None, memory=None, vcpus=32, memory_mb=65536, disk_gb=1000, az="nova",
         aggregates=None, **extra):
    entry = {"name": name, "az": az, "aggregates": aggregates or [],
             "capacity": {"vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb},
             "allocation_ratio": {"vcpus": 4.0, "memory_mb": 1.0, "disk_gb": 1.0},
             "reserved": {"vcpus": 0, "memory_mb": 0, "disk_gb": 0},
             "load": {"cpu": cpu, "memory": memory},
             "load_source": "prometheus" if cpu is not None else "none"}
    entry.update(extra)
    return entry


def instance(ident, on, vcpus=2, memory_mb=4096, disk_gb=20, cpu=None, memory=None, groups=None,
             **extra):
    entry = {"id": ident, "name": "vm-" + ident, "host": on,
             "flavor": {"name": "f", "vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb},
             "load": {"cpu": cpu, "memory": memory}, "server_groups": groups or []}
    entry.update(extra)
    return entry


def group(gid, policy, members, limit=None):
    rules = {"max_server_per_host": limit} if limit else {}
    return {"id": gid, "name": gid, "policy": policy, "rules": rules, "members": list(members)}


def snapshot(hosts, instances):
    return {"version": 1, "taken_at": TAKEN_AT, "sources": {}, "hosts": hosts, "instances": instances}


def random_cloud(seed, hosts=6, per_host=4):
    """A small valid cloud: every rule holds in the initial placement."""
    rng = random.Random(seed)
    azs = ["az1", "az2"][:rng.randint(1, 2)]
    host_list = []
    for index in range(hosts):
        state = rng.random()
        extra = {}
        if state < 0.1:
            extra = {"enabled": False, "disabled_reason": "maintenance"}
        elif state < 0.15:
            extra = {"up": False}
        elif state < 0.18:
            extra = {"forced_down": True}
        measured = rng.random() < 0.8
        host_list.append(host(
            "h%02d" % index, cpu=round(rng.uniform(0.0, 1.0), 3) if measured else None,
            memory=round(rng.uniform(0.0, 1.0), 3) if measured else None,
            vcpus=rng.choice([4, 8, 16]), memory_mb=rng.choice([16384, 32768, 65536]),
            disk_gb=rng.choice([100, 400]), az=rng.choice(azs),
            aggregates=rng.choice([[], ["agg-a"]]), **extra))
    instances = []
    used = dict((h["name"], [0, 0, 0]) for h in host_list)
    counter = 0
    for h in host_list:
        room = [h["capacity"]["vcpus"] * 4.0, h["capacity"]["memory_mb"], h["capacity"]["disk_gb"]]
        for _n in range(rng.randint(0, per_host * 2)):
            flavor = rng.choice([(1, 1024, 10), (2, 4096, 20), (4, 8192, 40), (8, 16384, 80), (1, 0, 0)])
            total = used[h["name"]]
            if any(total[i] + flavor[i] > room[i] for i in range(3)):
                continue
            for i in range(3):
                total[i] += flavor[i]
            counter += 1
            extra = {}
            roll = rng.random()
            if roll < 0.05:
                extra["metadata"] = {"leveller:pin": "yes"}
            elif roll < 0.08:
                extra["tags"] = ["leveller-pin"]
            elif roll < 0.11:
                extra["migratable"] = False
            elif roll < 0.14:
                extra["status"] = "SHUTOFF"
            elif roll < 0.17:
                extra["last_moved_at"] = "2026-11-22T21:50:00Z"
            elif roll < 0.19:
                extra["task_state"] = "migrating"
            known = rng.random() < 0.7
            instances.append(instance(
                "i%03d" % counter, h["name"], *flavor,
                cpu=round(rng.uniform(0, 1), 3) if known else None,
                memory=round(rng.uniform(0, 1), 3) if known else None, **extra))
    _add_groups(rng, host_list, instances)
    return snapshot(host_list, instances)


def _add_groups(rng, host_list, instances):
    by_host = {}
    for inst in instances:
        by_host.setdefault(inst["host"], []).append(inst)
    free = list(instances)
    rng.shuffle(free)
    for number in range(rng.randint(0, 4)):
        policy = rng.choice(["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"])
        limit = rng.choice([None, 2]) if policy == "anti-affinity" else None
        gid = "g%d" % number
        chosen = []
        if policy in ("affinity", "soft-affinity"):
            if not free:
                continue
            first = free[0]
            chosen = [i for i in free if i["host"] == first["host"]][:3]
            if policy == "soft-affinity" and len(free) > 3 and rng.random() < 0.5:
                chosen.append(free[-1])
        else:
            seen = {}
            for inst in free:
                if seen.get(inst["host"], 0) < (limit or 1) or policy == "soft-anti-affinity":
                    seen[inst["host"]] = seen.get(inst["host"], 0) + 1
                    chosen.append(inst)
                if len(chosen) >= 4:
                    break
        chosen_ids = set(id(i) for i in chosen)
        if len(chosen) < 2 and policy != "affinity":
            continue
        entry = group(gid, policy, [i["id"] for i in chosen], limit)
        for inst in chosen:
            inst["server_groups"] = inst.get("server_groups", []) + [entry]
        free = [i for i in free if id(i) not in chosen_ids]


clouds = st.builds(random_cloud, st.integers(0, 10 ** 6), st.integers(1, 9), st.integers(0, 6))

params = st.fixed_dictionaries({
    "max_moves": st.sampled_from([0, 1, 3, 20]),
    "max_gib": st.sampled_from([0, 8.0, 30.0]),
    "cross_az": st.booleans(),
    "keep_aggregates": st.booleans(),
    "max_parallel": st.integers(1, 4),
    "max_per_host": st.integers(1, 3),
    "min_load": st.sampled_from([0.0, 0.3, 0.5]),
    "min_diff": st.sampled_from([0.0, 0.05, 0.2]),
    "move_cost_gib": st.sampled_from([0.0, 4.0]),
})
