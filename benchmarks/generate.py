# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seeded synthetic clouds for the planner benchmark (snapshot version 1 dicts).

A cloud has several AZs, two aggregates per AZ, mixed hardware and flavors, server groups of
every policy, pinned / non-migratable / recently moved / stopped instances, a few disabled or
down hosts, and skewed load: a minority of hot hosts run busy instances. The initial placement
keeps every rule, so any violation the checker finds was introduced by a plan.

    python benchmarks/generate.py --hosts 1000 --seed 1 > cloud.json
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import json
import random
import sys

HARDWARE = (  # vcpus (physical), memory_mb, disk_gb, cpu allocation ratio, weight
    (32, 131072, 960, 4.0, 3),
    (48, 262144, 1920, 4.0, 4),
    (64, 393216, 1920, 2.0, 2),
    (64, 524288, 3840, 4.0, 1),
)
FLAVORS = (  # name, vcpus, memory_mb, disk_gb, weight
    ("m1.small", 1, 2048, 20, 20),
    ("m1.medium", 2, 4096, 40, 30),
    ("m1.large", 4, 8192, 80, 25),
    ("m1.xlarge", 8, 16384, 160, 10),
    ("r1.large", 2, 16384, 40, 8),
    ("r1.xlarge", 4, 32768, 80, 4),
    ("c1.xlarge", 16, 16384, 40, 3),
)
TAKEN_AT = "2026-11-22T22:00:00Z"


def _weighted(rng, items):
    total = sum(item[-1] for item in items)
    pick = rng.uniform(0, total)
    for item in items:
        pick -= item[-1]
        if pick <= 0:
            return item
    return items[-1]


def generate(hosts=100, seed=1, per_host=20):
    """A snapshot dict with ``hosts`` hosts and about ``per_host`` instances per host."""
    rng = random.Random(seed * 1000003 + hosts)
    az_count = max(2, min(6, hosts // 40))
    host_list = []
    for index in range(hosts):
        az = "az%d" % (index % az_count + 1)
        vcpus, memory, disk, cpu_ratio, _w = _weighted(rng, HARDWARE)
        roll = rng.random()
        enabled, up, reason = True, True, None
        if roll < 0.02:
            enabled, reason = False, "maintenance"
        elif roll < 0.03:
            up = False
        host_list.append({
            "name": "cmp%05d" % index, "hypervisor_hostname": "cmp%05d.example.net" % index,
            "az": az, "aggregates": ["%s-%s" % (az, "general" if rng.random() < 0.7 else "highmem")],
            "enabled": enabled, "up": up, "forced_down": False, "disabled_reason": reason,
            "capacity": {"vcpus": vcpus, "memory_mb": memory, "disk_gb": disk},
            "allocation_ratio": {"vcpus": cpu_ratio, "memory_mb": 1.0, "disk_gb": 1.0},
            "reserved": {"vcpus": 0, "memory_mb": 4096, "disk_gb": 0},
            # Skew: a minority of hot hosts, many lukewarm ones, some nearly idle.
            "_hot": rng.choice((0.05, 0.1, 0.15, 0.2, 0.3)) if rng.random() > 0.12 else rng.uniform(0.6, 0.95),
            "_fill": rng.uniform(0.25, 0.95),
        })
    # Scale the fill so the cloud holds about per_host instances per host on average.
    mean_flavor_mb = (sum(f[2] * f[4] for f in FLAVORS) / float(sum(f[4] for f in FLAVORS)))
    instances = []
    by_host = {}
    counter = 0
    for host in host_list:
        cap = host["capacity"]
        sched_vcpus = cap["vcpus"] * host["allocation_ratio"]["vcpus"]
        sched_mem = cap["memory_mb"] - host["reserved"]["memory_mb"]
        target = min(sched_mem * 0.97, host["_fill"] / 0.6 * per_host * mean_flavor_mb
                     * cap["memory_mb"] / 262144.0)
        used = [0, 0, 0]
        members = []
        misses = 0
        while used[1] < target and misses < 20:
            name, fv, fm, fd, _w = _weighted(rng, FLAVORS)
            if (used[0] + fv > sched_vcpus or used[1] + fm > sched_mem or used[2] + fd > cap["disk_gb"]):
                misses += 1
                continue
            used[0] += fv
            used[1] += fm
            used[2] += fd
            counter += 1
            ident = "%08x-0000-4000-8000-%012x" % (seed, counter)
            cpu = min(1.0, max(0.0, rng.gauss(host["_hot"], 0.1)))
            inst = {
                "id": ident, "name": "vm-%06d" % counter, "host": host["name"],
                "project": "project-%d" % rng.randrange(50), "status": "ACTIVE", "task_state": None,
                "power_state": "running", "locked": False,
                "flavor": {"name": name, "vcpus": fv, "memory_mb": fm, "disk_gb": fd},
                "load": {"cpu": round(cpu, 4), "memory": round(rng.uniform(0.4, 0.95), 4)},
                "server_groups": [], "metadata": {}, "tags": [], "migratable": True,
                "not_migratable_reason": None, "last_moved_at": None,
            }
            roll = rng.random()
            if roll < 0.01:
                inst["metadata"]["leveller:pin"] = "true"
            elif roll < 0.015:
                inst["tags"].append("leveller-pin")
            elif roll < 0.025:
                inst["migratable"], inst["not_migratable_reason"] = False, "PCI passthrough"
            elif roll < 0.035:
                inst["status"], inst["power_state"] = "SHUTOFF", "shutdown"
                inst["load"] = {"cpu": 0.0, "memory": 0.0}
            elif roll < 0.045:
                inst["last_moved_at"] = "2026-11-22T21:30:00Z"
            elif roll < 0.08:
                inst["load"] = {"cpu": None, "memory": None}
            members.append(inst)
            instances.append(inst)
        host["used"] = {"vcpus": used[0], "memory_mb": used[1], "disk_gb": used[2]}
        by_host[host["name"]] = members
    for host in host_list:
        cap = host["capacity"]
        members = by_host[host["name"]]
        cpu = sum((i["load"]["cpu"] if i["load"]["cpu"] is not None else host["_hot"]) * i["flavor"]["vcpus"]
                  for i in members) / float(cap["vcpus"])
        mem = (sum((i["load"]["memory"] if i["load"]["memory"] is not None else 0.7) * i["flavor"]["memory_mb"]
                   for i in members) + 4096) / float(cap["memory_mb"])
        if rng.random() < 0.03:
            host["load"], host["load_source"] = {"cpu": None, "memory": None}, "none"
        else:
            host["load"] = {"cpu": round(min(1.0, cpu + 0.02), 4), "memory": round(min(1.0, mem), 4)}
            host["load_source"] = "prometheus"
        host["instances"] = len(members)
        del host["_hot"], host["_fill"]
    _add_groups(rng, host_list, by_host, len(instances))
    return {"version": 1, "taken_at": TAKEN_AT,
            "sources": {"generator": {"script": "benchmarks/generate.py", "seed": seed, "hosts": hosts}},
            "hosts": host_list, "instances": instances}


def _add_groups(rng, host_list, by_host, total):
    """Server groups of every policy, each consistent with the initial placement."""
    free = dict((name, [i for i in members if not i["server_groups"]]) for name, members in by_host.items())
    by_az = {}
    for host in host_list:
        by_az.setdefault(host["az"], []).append(host["name"])
    azs = sorted(by_az)
    groups = max(4, total // 100)
    for number in range(groups):
        policy = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity", "anti-affinity")[number % 5]
        gid = "00000000-0000-4000-9000-%012x" % number
        group = {"id": gid, "name": "group-%d" % number, "policy": policy, "rules": {}, "members": []}
        hosts = by_az[rng.choice(azs)]
        chosen = []
        if policy in ("anti-affinity", "soft-anti-affinity"):
            size = rng.randint(2, 5)
            if policy == "anti-affinity" and number % 10 == 4:
                group["rules"]["max_server_per_host"] = 2
            for name in rng.sample(hosts, min(size, len(hosts))):
                if free[name]:
                    chosen.append(free[name].pop(rng.randrange(len(free[name]))))
        else:
            name = rng.choice(hosts)
            size = rng.randint(2, 3)
            while free[name] and len(chosen) < size:
                chosen.append(free[name].pop(rng.randrange(len(free[name]))))
        if len(chosen) < 2:
            continue
        group["members"] = sorted(i["id"] for i in chosen)
        for inst in chosen:
            inst["server_groups"].append(group)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-host", type=int, default=20)
    args = parser.parse_args(argv)
    json.dump(generate(args.hosts, args.seed, args.per_host), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
