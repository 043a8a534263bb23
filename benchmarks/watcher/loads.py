# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's load model: what each host and instance uses, read from a snapshot dict.

One model serves both sides of the Watcher comparison: the Watcher harness answers Watcher's
metric queries from it (benchmarks/watcher/harness.py), and ``cpu_stddev`` judges every plan
(ours and Watcher's) with it. Standard library only: it runs in Watcher's venv too, and it
shares no code with the planner.

CPU is in vCPUs busy (a host's load.cpu is a fraction of its physical vCPUs); memory in MB.
- An instance with a measured load uses load * flavor size; a stopped one uses nothing.
- A measured host carries what it reports. The part of it that its measured instances do not
  explain is shared among its unmeasured running instances by flavor size; what is left (or
  missing, on a saturated host) is a base load that stays on the host.
- On an unmeasured host, an unmeasured instance uses the cloud-wide mean load per flavor unit,
  and the host carries what its instances use, at most all of it (as a measured host reports).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

RUNNING = ("ACTIVE", "PAUSED")
_SIZE = (("cpu", "vcpus"), ("memory", "memory_mb"))


def _metric(obj, key):
    value = (obj.get("load") or {}).get(key)
    return None if value is None else float(value)


def model(snapshot):
    """{"hosts": {name: {"base": [cpu, mem], "size": [vcpus, memory_mb], "active": bool, "az"}},
    "instances": {id: {"host", "use": [cpu, mem], "vcpus", "memory_mb"}}}."""
    hosts = {}
    for host in snapshot.get("hosts") or []:
        cap = host.get("capacity") or {}
        hosts[host["name"]] = {
            "size": [float(cap.get("vcpus") or 0), float(cap.get("memory_mb") or 0)],
            "measured": [_metric(host, "cpu"), _metric(host, "memory")],
            "base": [0.0, 0.0],
            "active": (host.get("enabled", True) is not False and host.get("up", True) is not False
                       and not host.get("forced_down")),
            "az": host.get("az") or "",
        }
    insts = {}
    members = {}
    known = [[0.0, 0.0], [0.0, 0.0]]  # per metric: load used, flavor size of measured instances
    for inst in sorted(snapshot.get("instances") or [], key=lambda i: i["id"]):
        flavor = inst.get("flavor") or {}
        sizes = [float(flavor.get(size) or 0) for _key, size in _SIZE]
        running = inst.get("status", "ACTIVE") in RUNNING
        use = []
        for index, (key, _size) in enumerate(_SIZE):
            value = _metric(inst, key) if running else 0.0
            if value is not None:
                value *= sizes[index]
                if running:
                    known[index][0] += value
                    known[index][1] += sizes[index]
            use.append(value)
        insts[inst["id"]] = {"host": inst["host"], "use": use, "vcpus": sizes[0], "memory_mb": sizes[1],
                             "size": sizes}
        members.setdefault(inst["host"], []).append(insts[inst["id"]])
    mean = [k[0] / k[1] if k[1] else 0.0 for k in known]
    for name, host in sorted(hosts.items()):
        group = members.get(name, [])
        for index in (0, 1):
            unknown = [i for i in group if i["use"][index] is None]
            explained = math.fsum(i["use"][index] for i in group if i["use"][index] is not None)
            measured = host["measured"][index]
            if measured is None:
                for inst in unknown:
                    inst["use"][index] = mean[index] * inst["size"][index]
                # Like a measured host, it cannot report more than all of itself: its
                # instances' demand beyond that is a negative base.
                busy = math.fsum(i["use"][index] for i in group)
                host["base"][index] = min(0.0, host["size"][index] - busy)
                continue
            residual = max(0.0, measured * host["size"][index] - explained)
            weight = math.fsum(i["size"][index] for i in unknown)
            for inst in unknown:
                share = inst["size"][index] / weight if weight > 0 else 1.0 / len(unknown)
                inst["use"][index] = residual * share
            # What the host reports is what it carries before any move; the base is negative
            # on a saturated host (its instances want more than it has).
            host["base"][index] = measured * host["size"][index] - math.fsum(i["use"][index] for i in group)
    return {"hosts": hosts, "instances": insts}


def host_loads(state, moves=None):
    """{host: [cpu fraction of physical vCPUs, memory fraction]} after applying moves in order."""
    where = dict((ident, inst["host"]) for ident, inst in state["instances"].items())
    for move in moves or []:
        if move["instance"] in where:
            where[move["instance"]] = move["destination"]
    total = dict((name, list(host["base"])) for name, host in state["hosts"].items())
    for ident in sorted(where):
        inst = state["instances"][ident]
        entry = total.setdefault(where[ident], [0.0, 0.0])
        entry[0] += inst["use"][0]
        entry[1] += inst["use"][1]
    result = {}
    for name, host in state["hosts"].items():
        result[name] = [total[name][i] / host["size"][i] if host["size"][i] else 0.0 for i in (0, 1)]
    return result


def _stddev(values):
    if not values:
        return None
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def cpu_stddev(snapshot, moves=None, state=None):
    """CPU standard deviation before and after the moves: {"before", "after", "hosts", ...}.

    The one figure both tools are judged by in the Watcher comparison. It counts the enabled, up
    hosts whose CPU load is measured: a host without a measurement has no known load to level
    (both tools still see an estimate for it; "all_before"/"all_after" count those too, with
    the estimate).
    """
    state = state or model(snapshot)
    active = sorted(name for name, host in state["hosts"].items() if host["active"])
    measured = [name for name in active if state["hosts"][name]["measured"][0] is not None]
    before = host_loads(state)
    after = host_loads(state, moves)
    return {"before": _stddev([before[n][0] for n in measured]),
            "after": _stddev([after[n][0] for n in measured]), "hosts": len(measured),
            "all_before": _stddev([before[n][0] for n in active]),
            "all_after": _stddev([after[n][0] for n in active]), "all_hosts": len(active)}


def pool_floor(snapshot, state=None, az_only=False):
    """The lowest CPU stddev reachable without moving instances between AZs (or pools).

    Every host of a pool at its pool's mean load, weighting hosts by physical vCPUs; a rough
    floor (base loads and flavor granularity are ignored), for context in the report.
    """
    state = state or model(snapshot)
    hosts = dict((h["name"], h) for h in snapshot.get("hosts") or [])
    loads = host_loads(state)
    pools = {}
    for name, host in state["hosts"].items():
        if not host["active"]:
            continue
        raw = hosts[name]
        key = raw.get("az") if az_only else (raw.get("az"), tuple(sorted(raw.get("aggregates") or [])))
        entry = pools.setdefault(key, [0.0, 0.0, []])
        entry[0] += loads[name][0] * host["size"][0]
        entry[1] += host["size"][0]
        entry[2].append(name)
    values = []
    for busy, size, names in pools.values():
        values.extend([busy / size if size else 0.0] * len(names))
    return _stddev(values)
