# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: moves in waves, predicted loads before and after, and why things were left alone.

Everything here is deterministic: hosts and instances are iterated in sorted order, ties are
broken by name or id, and floats are rounded before they reach the plan, so the same snapshot
and parameters always give a byte-identical plan.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

PLAN_VERSION = 1
ROUND = 6


class PlanError(ValueError):
    """Bad planner parameters; the message starts with the parameter name."""


# ---------------------------------------------------------------- parameters

def _check_number(name, value, minimum=None, integer=False, allow_none=False, exclusive=False):
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer and isinstance(value, float):
        ok = value.is_integer()
    if ok and minimum is not None:
        ok = value > minimum if exclusive else value >= minimum
    if not ok:
        bound = "" if minimum is None else (" > %s" % minimum if exclusive else " >= %s" % minimum)
        raise PlanError("%s: expected %s%s%s, got %r" % (
            name, kind, bound, " or null" if allow_none else "", value))
    return int(value) if integer else float(value)


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise PlanError("%s: expected true or false, got %r" % (name, value))
    return value


def _check_names(name, value):
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise PlanError("%s: expected a list of strings, got %r" % (name, value))
    return sorted(set(value))


def _check_scope(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError("%s: expected a mapping with az, aggregate and/or hosts, got %r" % (name, value))
    unknown = sorted(set(value) - set(("az", "aggregate", "hosts")))
    if unknown:
        raise PlanError("%s: unknown key %s (use az, aggregate, hosts)" % (name, unknown[0]))
    scope = {}
    for key in ("az", "aggregate", "hosts"):
        names = _check_names("%s.%s" % (name, key), value.get(key))
        if names:
            scope[key] = names
    return scope


# name: (default, checker). Every strategy shares these; each strategy adds its own.
COMMON_PARAMS = {
    "weight_cpu": (1.0, lambda n, v: _check_number(n, v, 0)),
    "weight_memory": (1.0, lambda n, v: _check_number(n, v, 0)),
    # 0 means no limit.
    "max_moves": (20, lambda n, v: _check_number(n, v, 0, integer=True)),
    "max_gib": (0.0, lambda n, v: _check_number(n, v, 0)),
    "cooldown": (3600, lambda n, v: _check_number(n, v, 0, integer=True)),
    "cross_az": (False, _check_bool),
    "keep_aggregates": (True, _check_bool),
    "max_parallel": (4, lambda n, v: _check_number(n, v, 1, integer=True)),
    "max_per_host": (1, lambda n, v: _check_number(n, v, 1, integer=True)),
    "exclude": ([], _check_names),
    "scope": ({}, _check_scope),
}


def effective_params(spec, params):
    """Defaults merged with params, every value checked; unknown names are an error."""
    params = dict(params or {})
    unknown = sorted(k for k in params if k not in spec)
    if unknown:
        raise PlanError("%s: unknown parameter for this strategy (known: %s)" % (
            unknown[0], ", ".join(sorted(spec))))
    result = {}
    for name in sorted(spec):
        default, check = spec[name]
        value = params.get(name)
        result[name] = check(name, default if value is None else value)
    if result["weight_cpu"] == 0 and result["weight_memory"] == 0:
        raise PlanError("weight_cpu: weight_cpu and weight_memory cannot both be 0")
    return result


# ---------------------------------------------------------------- figures

def rnd(value):
    """Round for the plan; -0.0 becomes 0.0 so the JSON text is stable."""
    if value is None:
        return None
    value = round(value, ROUND)
    return value + 0.0 if value != 0 else 0.0


def host_score(host, weight_cpu, weight_memory):
    return weight_cpu * host.abs[0] / host.denom[0] + weight_memory * host.abs[1] / host.denom[1]


def spread(scores, cpu=None, memory=None):
    """max, min, ratio (max/min - 1; null when min is 0), stddev, mean over the given scores."""
    count = len(scores)
    if not count:
        return {"max": None, "min": None, "ratio": None, "stddev": None, "mean": None,
                "active_hosts": 0, "cpu_max": None, "cpu_stddev": None, "memory_max": None,
                "memory_stddev": None}
    top = max(scores)
    low = min(scores)
    mean = math.fsum(scores) / count
    result = {
        "max": rnd(top), "min": rnd(low), "ratio": rnd(ratio(top, low)),
        "stddev": rnd(stddev(scores, mean)), "mean": rnd(mean), "active_hosts": count,
    }
    for key, values in (("cpu", cpu), ("memory", memory)):
        values = values or []
        result[key + "_max"] = rnd(max(values)) if values else None
        result[key + "_stddev"] = rnd(stddev(values)) if values else None
    return result


def ratio(top, low):
    """max/min - 1 with min = 0 guarded: None (unbounded) when min is 0 and max is not."""
    if low > 0:
        return top / low - 1.0
    return 0.0 if top <= 0 else None


def stddev(values, mean=None):
    if not values:
        return 0.0
    if mean is None:
        mean = math.fsum(values) / len(values)
    return math.sqrt(max(0.0, math.fsum((v - mean) ** 2 for v in values) / len(values)))


def snapshot_figures(placement, weight_cpu, weight_memory):
    """Per-host figures for every host, and the spread over the active ones."""
    hosts = {}
    scores, cpus, mems = [], [], []
    for host in placement.host_list:
        cpu = host.abs[0] / host.denom[0]
        mem = host.abs[1] / host.denom[1]
        score = weight_cpu * cpu + weight_memory * mem
        entry = {"score": rnd(score), "cpu": rnd(cpu), "memory": rnd(mem),
                 "instances": len(host.instances)}
        if not host.active:
            entry["active"] = False
        hosts[host.name] = entry
        if host.active:
            scores.append(score)
            cpus.append(cpu)
            mems.append(mem)
    return {"hosts": hosts, "spread": spread(scores, cpus, mems)}


# ---------------------------------------------------------------- moves and waves

class Move(object):
    __slots__ = ("instance", "name", "source", "destination", "wave", "reason", "memory_mb",
                 "flavor", "source_score_after", "destination_score_after")

    def __init__(self, inst, source, destination, reason, source_score_after,
                 destination_score_after):
        self.instance = inst.id
        self.name = inst.name
        self.source = source
        self.destination = destination
        self.wave = 0
        self.reason = reason
        self.flavor = {"vcpus": inst.flavor[0], "memory_mb": inst.flavor[1], "disk_gb": inst.flavor[2]}
        self.memory_mb = inst.flavor[1]
        self.source_score_after = source_score_after
        self.destination_score_after = destination_score_after

    def to_dict(self):
        return {"instance": self.instance, "name": self.name, "source": self.source,
                "destination": self.destination, "wave": self.wave, "reason": self.reason,
                "memory_mb": _plain(self.memory_mb),
                "flavor": dict((k, _plain(v)) for k, v in self.flavor.items()),
                "source_score_after": rnd(self.source_score_after),
                "destination_score_after": rnd(self.destination_score_after)}


def _plain(value):
    """Integral floats as ints, so flavors read as the operator wrote them."""
    return int(value) if float(value).is_integer() else value


def assign_waves(moves, max_parallel, max_per_host):
    """Give each move (in plan order) the earliest wave that keeps the limits.

    A move into host H comes after every earlier move out of H: it may need the room (or the
    server-group slot) that move frees, and Nova counts the leaving instance on H until the
    migration ends. With that rule, every wave boundary is a state some prefix of the
    sequential plan passes through or below, so capacity and groups hold during every wave.
    ``max_per_host`` counts a host's moves in a wave in both directions together.
    """
    last_out = {}
    per_wave = []
    host_wave = {}
    first_open = 1  # waves before this one are full
    for move in moves:
        wave = max(last_out.get(move.destination, 0) + 1, first_open)
        while True:
            while len(per_wave) < wave:
                per_wave.append(0)
            if (per_wave[wave - 1] < max_parallel
                    and host_wave.get((move.source, wave), 0) < max_per_host
                    and host_wave.get((move.destination, wave), 0) < max_per_host):
                break
            wave += 1
        move.wave = wave
        per_wave[wave - 1] += 1
        while first_open <= len(per_wave) and per_wave[first_open - 1] >= max_parallel:
            first_open += 1
        for name in (move.source, move.destination):
            host_wave[(name, wave)] = host_wave.get((name, wave), 0) + 1
        if last_out.get(move.source, 0) < wave:
            last_out[move.source] = wave
    return max([m.wave for m in moves] or [0])


class Plan(object):
    """A finished plan; to_dict gives the version 1 JSON document."""

    def __init__(self, strategy, params, snapshot_digest):
        self.strategy = strategy
        self.params = params
        self.snapshot_digest = snapshot_digest
        self.snapshot_taken_at = None
        self.snapshot_hosts = []
        self.moves = []
        self.waves = 0
        self.before = None
        self.after = None
        self.bound = {}
        self.skipped = []
        self.acted = False
        self.reason = ""

    def to_dict(self):
        moves = sorted(self.moves, key=lambda m: m.wave)  # stable: plan order within a wave
        gib = math.fsum(m.memory_mb for m in self.moves) / 1024.0
        return {
            "version": PLAN_VERSION, "strategy": self.strategy, "params": self.params,
            "snapshot_digest": self.snapshot_digest,
            "snapshot_taken_at": self.snapshot_taken_at, "snapshot_hosts": list(self.snapshot_hosts),
            "moves": [m.to_dict() for m in moves], "waves": self.waves,
            "before": self.before, "after": self.after, "bound": self.bound,
            "skipped": self.skipped,
            "summary": {"moves": len(self.moves), "gib_moved": rnd(gib), "acted": bool(self.moves),
                        "reason": self.reason},
        }


def skipped_entries(placement, instance_reasons=None):
    """Hosts left alone and unmovable instances on active hosts, each with its reason."""
    entries = []
    for host in placement.host_list:
        if not host.active:
            entries.append({"kind": "host", "name": host.name, "reason": host.inactive_reason})
    for key in sorted(placement.instances):
        inst = placement.instances[key]
        reason = inst.skip
        if reason is None and instance_reasons:
            reason = instance_reasons.get(key)
        if reason and inst.source.active:
            entries.append({"kind": "instance", "id": inst.id, "name": inst.name,
                            "host": inst.source.name, "reason": reason})
    return entries


def finish(plan, placement, moves, params):
    """Assign waves, compute the after figures and return the plan."""
    plan.moves = moves
    plan.waves = assign_waves(moves, params["max_parallel"], params["max_per_host"])
    plan.after = snapshot_figures(placement, params["weight_cpu"], params["weight_memory"])
    return plan
