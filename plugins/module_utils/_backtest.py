# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's backtest: a schedule of strategy runs replayed over the cloud's own history.

Pure. The start is a snapshot (``hypervisor_load_info`` with ``at``: Nova's current placement,
the loads at the start of the history); the loads over time are the ``load_history`` that the
same module reads from Prometheus (``history``). Each *configuration* is a schedule: strategy
runs with their parameters (the same as ``level_plan``'s), each run every so often, or when a
host is hot, or when the pool is cool. The replay engine (``_replay``) plays the history through
the simulated cloud under real rules (RAM enforced on every move; a migrating instance holds
its RAM on both hosts; nothing deleted), the planner sees at every run a snapshot with
everything the real one carries (zones, aggregates, server groups, pins, locks, states, the real
``last_moved_at``) and the replayed placement and loads.

The model, in the cloud's units: a host's CPU capacity is its physical CPUs (Placement's VCPU
total before the allocation ratio), an instance asks for its measured CPU share times its
flavor's vCPUs. A migration takes the flavor's RAM over ``migration_mib_per_s``, and costs the
instance 10 % of its CPU while it runs (the engine's rule, as CloudSim's). Memory use is taken
from the start and does not vary (only CPU is replayed). Energy: a linear power model per host
between ``power_idle_watts`` and ``power_max_watts``; a host without instances counts as off --
what switching empty hosts off would save, not what the cloud uses today.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import dataclasses
import datetime
import math

from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay
from ansible_collections.cloudops.leveller.plugins.module_utils import _snapshot as snap
from ansible_collections.cloudops.leveller.plugins.module_utils import _timeline as timeline
from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError, effective_params
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import STRATEGIES, make_plan

# CPU in the engine's units: 1,000 per physical CPU (the engine rounds allocations down when a
# host is overcommitted, as CloudSim does, so whole CPUs would be too coarse).
UNIT = 1000.0
# Nova statuses of an instance that uses no CPU: its load is 0 whatever its host does.
STOPPED = ("SHUTOFF", "SUSPENDED", "PAUSED", "SHELVED", "SHELVED_OFFLOADED", "STOPPED", "ERROR")
WHEN = ("always", "hot", "cool")
MAX_TICKS = 100000


class BacktestError(ValueError):
    """Bad input: the message names the field and the fix."""


def _series(values, count, path):
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != count:
        raise BacktestError("%s: expected a list of %d values (one per grid point), got %s"
                            % (path, count, type(values).__name__ if not isinstance(values, list)
                               else "%d" % len(values)))
    out = []
    for k, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise BacktestError("%s[%d]: expected a number or null, got %r" % (path, k, value))
        out.append(min(1.0, max(0.0, float(value))))
    return out


def _filled(values):
    """Gaps filled: a null takes the value before it (the first known value at the start)."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    last = known[0]
    out = []
    for value in values:
        if value is not None:
            last = value
        out.append(last)
    return out


def check_history(history):
    """The load_history of hypervisor_load_info, checked; returns (start, step, count)."""
    if not isinstance(history, dict):
        raise BacktestError("history: expected the load_history of hypervisor_load_info (a dict)")
    for key in ("start", "step", "times", "hosts"):
        if key not in history:
            raise BacktestError("history.%s is missing: pass the load_history that hypervisor_load_info "
                                "returns with its history option (or the file of its history_dest)" % key)
    start, step, count = history["start"], history["step"], history["times"]
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise BacktestError("history.start: expected Unix seconds, got %r" % (start,))
    if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
        raise BacktestError("history.step: expected seconds > 0, got %r" % (step,))
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise BacktestError("history.times: at least 2 grid points are needed to replay anything, got %r; "
                            "gather a longer history or a smaller step" % (count,))
    if count > MAX_TICKS:
        raise BacktestError("history.times: %d grid points; at most %d (use a larger step)" % (count, MAX_TICKS))
    return float(start), float(step), count


def _linear_model(idle, peak):
    return replay.PowerModel([idle + (peak - idle) * k / 10.0 for k in range(11)], "linear")


class _Placement(object):
    def __init__(self, hosts_of):
        self.hosts_of = hosts_of

    def place(self, rp):
        return list(self.hosts_of)


class Cloud(object):
    """The start snapshot and the history turned into the engine's hosts and instances."""

    def __init__(self, snapshot, history, migration_mib_per_s=1000.0, power_idle_watts=150.0,
                 power_max_watts=350.0):
        self.snapshot = snapshot
        self.start, self.step, self.count = check_history(history)
        model = _linear_model(power_idle_watts, power_max_watts)
        # the engine copies RAM over its share of the link (CloudSim's half): the link it is
        # given makes that share migration_mib_per_s
        bandwidth_mbit = migration_mib_per_s * 8.0 / replay.MIGRATION_BANDWIDTH_SHARE
        self.hosts = []
        self.host_cpu = {}
        self.host_cpus = {}
        index = {}
        host_series = history.get("hosts") or {}
        for host in snapshot.hosts:
            cpus = host.capacity.vcpus - host.reserved.vcpus
            if cpus <= 0:
                raise BacktestError("snapshot host %s has no CPU capacity (%r vCPUs): the backtest needs "
                                    "the hosts' CPU counts" % (host.name, host.capacity.vcpus))
            ram = (host.capacity.memory_mb - host.reserved.memory_mb) * host.allocation_ratio.memory_mb
            index[host.name] = len(self.hosts)
            self.host_cpus[host.name] = cpus
            self.hosts.append(replay.Host(len(self.hosts), host.name, 0, 1, cpus * UNIT, ram,
                                          bandwidth_mbit, model))
            cpu = _series((host_series.get(host.name) or {}).get("cpu"), self.count,
                          "history.hosts.%s.cpu" % host.name)
            self.host_cpu[host.name] = _filled(cpu) if cpu else None
        instance_series = history.get("instances") or {}
        on_host = {}
        for inst in snapshot.instances:
            if inst.status not in STOPPED:
                on_host.setdefault(inst.host, []).append(inst)
        self.vms = []
        self.instances = []
        hosts_of = []
        self.load_from = {"instance series": 0, "host series": 0, "snapshot": 0, "none": 0, "stopped": 0}
        for inst in snapshot.instances:
            if inst.host not in index:
                continue
            cpu = _series((instance_series.get(inst.id) or {}).get("cpu"), self.count,
                          "history.instances.%s.cpu" % inst.id)
            trace = _filled(cpu) if cpu else None
            if inst.status in STOPPED:
                trace = [0.0] * self.count
                self.load_from["stopped"] += 1
            elif trace is not None:
                self.load_from["instance series"] += 1
            else:
                trace = self._from_host(inst, on_host.get(inst.host) or [])
            vcpus = max(inst.flavor.vcpus, 1)
            self.vms.append(replay.Vm(len(self.vms), inst.id, 0, vcpus * UNIT, inst.flavor.memory_mb,
                                      trace, self.step))
            self.instances.append(inst)
            hosts_of.append(index[inst.host])
        self.placement = _Placement(hosts_of)
        self.index = index
        # memory use per instance (static) and what else uses each host's memory
        self.memory_mb = [i.flavor.memory_mb * (i.load.memory if i.load.memory is not None else 1.0)
                          for i in self.instances]
        self.memory_base = {}
        used = {}
        for inst, mem in zip(self.instances, self.memory_mb):
            used[inst.host] = used.get(inst.host, 0.0) + mem
        for host in snapshot.hosts:
            if host.load.memory is None or host.capacity.memory_mb <= 0:
                self.memory_base[host.name] = None
            else:
                self.memory_base[host.name] = max(
                    0.0, host.load.memory * host.capacity.memory_mb - used.get(host.name, 0.0))

    def _from_host(self, inst, neighbours):
        """An instance without its own series: its host's busy CPUs shared by vCPUs."""
        busy = self.host_cpu.get(inst.host)
        if busy is not None:
            cpus = self.host_cpus[inst.host]
            total = sum(max(n.flavor.vcpus, 1) for n in neighbours)
            self.load_from["host series"] += 1
            return [min(1.0, b * cpus / float(total)) for b in busy]
        if inst.load.cpu is not None:
            self.load_from["snapshot"] += 1
            return [inst.load.cpu] * self.count
        self.load_from["none"] += 1
        return [0.0] * self.count


class SnapshotPolicy(replay.StrategyPolicy):
    """A strategy run on the real start snapshot with the replayed placement and loads."""

    def __init__(self, cloud, strategy, params, name, estimate=None):
        replay.StrategyPolicy.__init__(self, strategy, params, name=name, estimate=estimate)
        self.cloud = cloud
        self.epoch_dt = datetime.datetime.fromtimestamp(cloud.start, tz=datetime.timezone.utc)
        self.moved_at = {}

    def _stamp(self, seconds):
        return (self.epoch_dt + datetime.timedelta(seconds=seconds)).isoformat()

    def _real_move(self, inst, now):
        """The snapshot's last_moved_at if it was before ``now`` in the replay (a move the cloud
        made later in the history had not happened yet at that point)."""
        if inst.last_moved_at is None:
            return None
        moved = self.moved_at.get(inst.id)
        if moved is None:
            moved = (snap.parse_time(inst.last_moved_at) - self.epoch_dt).total_seconds()
            self.moved_at[inst.id] = moved
        return inst.last_moved_at if moved <= now else None

    def snapshot(self, rp, now):
        cloud = self.cloud
        demand = self.demands(rp, now)
        cpu = {}
        used = {}
        memory = {}
        count = {}
        instances = []
        for vm, inst, mem in zip(rp.vms, cloud.instances, cloud.memory_mb):
            host = vm.host
            name = host.name
            if vm not in host.incoming:
                cpu[name] = cpu.get(name, 0.0) + demand[vm.index]
                memory[name] = memory.get(name, 0.0) + mem
            held = used.setdefault(name, [0.0, 0.0, 0.0])
            held[0] += inst.flavor.vcpus
            held[1] += inst.flavor.memory_mb
            held[2] += inst.flavor.disk_gb
            count[name] = count.get(name, 0) + 1
            moved = self._stamp(vm.landed) if vm.landed is not None else self._real_move(inst, now)
            instances.append(dataclasses.replace(
                inst, host=name, status="MIGRATING" if vm.in_migration else inst.status,
                load=snap.Load(min(1.0, max(0.0, demand[vm.index] / vm.mips)), inst.load.memory),
                last_moved_at=moved))
        for host in rp.hosts:  # an instance in flight holds its flavor on both hosts
            for vm in host.incoming:
                inst = cloud.instances[vm.index]
                held = used.setdefault(host.name, [0.0, 0.0, 0.0])
                held[0] += inst.flavor.vcpus
                held[1] += inst.flavor.memory_mb
                held[2] += inst.flavor.disk_gb
        hosts = []
        for host, real in zip(rp.hosts, cloud.snapshot.hosts):
            base = cloud.memory_base[real.name]
            mem = None
            if base is not None:
                mem = min(1.0, (base + memory.get(real.name, 0.0)) / real.capacity.memory_mb)
            held = used.get(real.name, [0.0, 0.0, 0.0])
            hosts.append(dataclasses.replace(
                real, used=snap.Resources(held[0], held[1], held[2]), instances=count.get(real.name, 0),
                load=snap.Load(min(1.0, cpu.get(real.name, 0.0) / host.mips), mem),
                load_source=real.load_source if real.load_source != "none" else "prometheus"))
        return snap.Snapshot(taken_at=self._stamp(now), hosts=hosts, instances=instances,
                             sources=cloud.snapshot.sources)

    def plan(self, rp, now):
        snapshot = self.snapshot(rp, now)
        plan = make_plan(snapshot, self.strategy, self.params)
        self.last_plan = plan
        moves = []
        position = dict((inst.id, k) for k, inst in enumerate(self.cloud.instances))
        for move in plan.moves:
            moves.append((position[move.instance], self.cloud.index[move.destination], move.wave))
        return moves


def _number(value, path, low=None, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
        raise BacktestError("%s: expected %s, got %r" % (path, "an integer" if integer else "a number", value))
    if isinstance(value, float) and math.isnan(value):
        raise BacktestError("%s: expected a number, got NaN" % path)
    if low is not None and value < low:
        raise BacktestError("%s: must be at least %s, got %r" % (path, low, value))
    return value


ENTRY_KEYS = ("strategy", "params", "every", "when", "level", "estimate")


def _entry(entry, where, step=None):
    """One schedule entry checked without a snapshot; returns it normalised."""
    if not isinstance(entry, dict):
        raise BacktestError("%s: expected a dict with strategy, params, every, when, level, estimate" % where)
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise BacktestError("%s.%s: unknown key (known: %s)" % (where, unknown[0], ", ".join(ENTRY_KEYS)))
    strategy = entry.get("strategy")
    if strategy not in STRATEGIES:
        raise BacktestError("%s.strategy: expected one of %s, got %r"
                            % (where, ", ".join(sorted(STRATEGIES)), strategy))
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise BacktestError("%s.params: expected a dict of %s's parameters" % (where, strategy))
    try:  # level_plan's own checks of every value; those that need the cloud come on the start
        effective_params(STRATEGIES[strategy].PARAMS, params)
    except PlanError as exc:
        raise BacktestError("%s.params: %s" % (where, exc))
    every = entry.get("every")
    every = _number(every if every is not None else 0, where + ".every", 0)
    if step is not None and every and every < step:
        raise BacktestError("%s.every: %s s is shorter than the history's step (%s s); use 0 (every step) "
                            "or a multiple of the step" % (where, every, step))
    when = entry.get("when") or "always"
    if when not in WHEN:
        raise BacktestError("%s.when: expected one of %s, got %r" % (where, ", ".join(WHEN), when))
    level = entry.get("level")
    if when != "always":
        if level is None:
            level = 1.0 if when == "hot" else 0.5
        level = _number(level, where + ".level", 0)
        if level > 2:
            raise BacktestError("%s.level: a share of a host's CPU (0..2), got %r" % (where, level))
    elif level is not None:
        raise BacktestError("%s.level: only with when: hot or when: cool" % where)
    estimate = entry.get("estimate")
    if estimate is not None:
        if not isinstance(estimate, dict) or sorted(estimate) != ["percentile", "window"]:
            raise BacktestError("%s.estimate: expected {percentile: 0-100, window: seconds}" % where)
        percentile = _number(estimate["percentile"], where + ".estimate.percentile", 1)
        window = _number(estimate["window"], where + ".estimate.window", 0)
        if percentile > 100:
            raise BacktestError("%s.estimate.percentile: at most 100, got %r" % (where, percentile))
        estimate = (percentile, window)
    return {"strategy": strategy, "params": params, "every": every, "when": when, "level": level,
            "estimate": estimate}


def check_configurations(configurations, step=None):
    """Every configuration checked without a snapshot (names, keys, each entry's parameters);
    returns them normalised. ``step`` (seconds), when known, bounds ``every``."""
    if not isinstance(configurations, list) or not configurations:
        raise BacktestError("configurations: expected a list of {name, schedule}")
    names = []
    checked = []
    for k, configuration in enumerate(configurations):
        path = "configurations[%d]" % k
        if not isinstance(configuration, dict):
            raise BacktestError("%s: expected a dict with name and schedule" % path)
        unknown = sorted(set(configuration) - set(("name", "schedule")))
        if unknown:
            raise BacktestError("%s.%s: unknown key (known: name, schedule)" % (path, unknown[0]))
        name = configuration.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BacktestError("%s.name: a name for the table is required" % path)
        if name in names:
            raise BacktestError("%s.name: %r is used twice" % (path, name))
        names.append(name)
        entries = configuration.get("schedule")
        if not isinstance(entries, list) or not entries:
            raise BacktestError("%s.schedule: expected a list of strategy runs, e.g. "
                                "[{strategy: overload, when: hot}, {strategy: consolidate, every: 3600}]" % path)
        checked.append({"name": name, "schedule": [
            _entry(entry, "%s.schedule[%d]" % (path, j), step) for j, entry in enumerate(entries)]})
    return checked


def schedule_of(cloud, configuration, path):
    """The engine's schedule for one checked configuration; each entry's parameters are also
    planned once on the start (checks that need the cloud, e.g. drain's hosts)."""
    schedule = []
    for k, entry in enumerate(configuration["schedule"]):
        where = "%s.schedule[%d]" % (path, k)
        strategy = entry["strategy"]
        name = "%s #%d" % (strategy, k + 1)
        policy = SnapshotPolicy(cloud, strategy, entry["params"], name, estimate=entry["estimate"])
        try:
            make_plan(policy.snapshot(_Start(cloud), 0.0), strategy, entry["params"])
        except PlanError as exc:
            raise BacktestError("%s.params: %s" % (where, exc))
        if entry["when"] == "hot":
            schedule.append(replay.Hot(policy, entry["level"], name, period=entry["every"]))
        elif entry["when"] == "cool":
            schedule.append(replay.Below(policy, entry["level"], entry["every"], name))
        else:
            schedule.append(replay.Every(policy, entry["every"], name))
    return schedule


class _Start(object):
    """Just enough of a Replay for a snapshot of the start (to check parameters)."""

    def __init__(self, cloud):
        self.interval = cloud.step
        self.hosts = [replay.Host(h.index, h.name, 0, 1, h.mips, h.ram_mb, h.bandwidth_mbit, h.model)
                      for h in cloud.hosts]
        self.vms = []
        for vm, index in zip(cloud.vms, cloud.placement.hosts_of):
            copy = replay.Vm(vm.index, vm.name, 0, vm.mips, vm.ram_mb, vm.trace[:-1], cloud.step)
            copy.req = copy.trace[0] * copy.mips
            copy.host = self.hosts[index]
            self.hosts[index].vms.append(copy)
            self.vms.append(copy)


def run(snapshot, history, configurations, ping_pong_window=3600.0, migration_mib_per_s=1000.0,
        power_idle_watts=150.0, power_max_watts=350.0):
    """Replay each configuration over the history; returns the backtest dict (see level_backtest)."""
    if power_max_watts < power_idle_watts or power_idle_watts < 0:
        raise BacktestError("power_idle_watts and power_max_watts: need 0 <= idle <= max, got %s and %s"
                            % (power_idle_watts, power_max_watts))
    if migration_mib_per_s <= 0:
        raise BacktestError("migration_mib_per_s: must be > 0, got %s" % migration_mib_per_s)
    configurations = check_configurations(configurations, check_history(history)[1])
    # every schedule is built (and checked on the start) before any is replayed
    clouds = []
    for k, configuration in enumerate(configurations):
        cloud = Cloud(snapshot, history, migration_mib_per_s, power_idle_watts, power_max_watts)
        clouds.append((cloud, schedule_of(cloud, configuration, "configurations[%d]" % k)))
    runs = []
    for configuration, (cloud, schedule) in zip(configurations, clouds):
        rp = replay.Replay(cloud.hosts, cloud.vms, cloud.placement, schedule, replay.REAL, cloud.step,
                           ping_pong_window=ping_pong_window, keep_log=True)
        result = rp.run()
        result["name"] = configuration["name"]
        result["moves"] = _moves(rp, cloud)
        # the placement at the end, as host -> instance count (what the schedule would leave)
        result["hosts_used_at_end"] = sum(1 for h in rp.hosts if h.vms)
        runs.append(result)
    first = clouds[0][0]
    end = first.start + first.count * first.step  # each grid point holds for one step
    return {
        "start": _iso(first.start), "end": _iso(end), "step": first.step, "ticks": first.count,
        "hosts": len(first.hosts), "instances": len(first.vms), "load_from": dict(first.load_from),
        "configurations": runs,
        "table": timeline.comparison_table(runs),
    }


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).isoformat(timespec="seconds")


def _moves(rp, cloud):
    """The moves the schedule started: time, instance, from, to (at most 1,000, the first)."""
    out = []
    for event in rp.log or ():
        if event[0] != "start" or len(out) >= 1000:
            continue
        t, vm_index, source, target = event[1], event[2], event[3], event[4]
        inst = cloud.instances[vm_index]
        out.append({"at": _iso(cloud.start + t), "instance": inst.id, "name": inst.name,
                    "source": rp.hosts[source].name, "destination": rp.hosts[target].name})
    return out


def svg(backtest, title="Backtest"):
    """The picture of a backtest: hosts on, overloaded, migrations over the history."""
    return timeline.timeline_svg(
        backtest["configurations"], title,
        "%s to %s, step %g s; %d hosts, %d instances; one line per configuration"
        % (backtest["start"], backtest["end"], backtest["step"], backtest["hosts"], backtest["instances"]))
