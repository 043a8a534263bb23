# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One placement model shared by every strategy: capacity, load, scope and server groups.

``Placement`` holds the mutable state a strategy works on. ``fits(instance, host)`` answers in
O(number of the instance's server groups) whether a move keeps every rule, and ``move`` applies
it. Strategies never touch usage counters themselves, so every strategy keeps the same rules.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import (
    METRICS, parse_time,
)

EPSILON = 1e-9
LIVE_MIGRATABLE_STATUSES = ("ACTIVE", "PAUSED")


class HostState(object):
    """A host as the planner sees it: schedulable capacity, usage, and load per metric."""

    __slots__ = ("name", "az", "aggregates", "cap", "used", "measured", "denom", "abs",
                 "instances", "active", "receivable", "inactive_reason", "pool", "host")

    def load(self, metric):
        """Load of one metric (0 = cpu, 1 = memory) as a fraction of the host's capacity."""
        return self.abs[metric] / self.denom[metric]


class InstanceState(object):
    """An instance: its flavor, its load in absolute units and why it may not move."""

    __slots__ = ("id", "name", "host", "flavor", "alloc", "meas", "groups", "skip", "moved",
                 "source", "instance", "by_mode")

    def contribution(self, host, metric):
        """What this instance adds to ``host.abs[metric]``, in the host's load units.

        A host with a measurement for the metric gets the instance's measured (or estimated)
        load; a host without one is levelled on allocations, so it gets the flavor's size.
        """
        return self.by_mode[metric][host.measured[metric]]


class GroupState(object):
    """A server group with per-host member counts so every check is O(1)."""

    __slots__ = ("id", "name", "policy", "limit", "counts", "total")


def _in_scope(host, scope):
    azs = scope.get("az")
    if azs and host.az not in azs:
        return "out of scope: az %s not in %s" % (host.az, ", ".join(azs))
    aggregates = scope.get("aggregate")
    if aggregates and not set(aggregates).intersection(host.aggregates):
        return "out of scope: in none of the aggregates %s" % ", ".join(aggregates)
    names = scope.get("hosts")
    if names and host.name not in names and host.hypervisor_hostname not in names:
        return "out of scope: not in the hosts list"
    return None


class Placement(object):
    """The mutable placement state every strategy plans against.

    params used here: exclude, scope, cross_az, keep_aggregates, cooldown.
    """

    def __init__(self, snapshot, params):
        self.cross_az = bool(params.get("cross_az", False))
        self.keep_aggregates = bool(params.get("keep_aggregates", True))
        scope = params.get("scope") or {}
        exclude = set(params.get("exclude") or ())
        cooldown = params.get("cooldown") or 0
        taken_at = parse_time(snapshot.taken_at)

        self.hosts = {}
        for host in sorted(snapshot.hosts, key=lambda h: h.name):
            state = HostState()
            state.host = host
            state.name = host.name
            state.az = host.az or ""
            state.aggregates = tuple(sorted(host.aggregates))
            state.cap = [host.schedulable(r) for r in ("vcpus", "memory_mb", "disk_gb")]
            state.used = [float(host.used.vcpus), float(host.used.memory_mb), float(host.used.disk_gb)]
            measured_cpu = host.load.cpu is not None
            measured_mem = host.load.memory is not None
            state.measured = (measured_cpu, measured_mem)
            # Measured load is a fraction of physical capacity; allocation-based load is a
            # fraction of what Placement lets the host schedule.
            denom_cpu = host.capacity.vcpus if measured_cpu else state.cap[0]
            denom_mem = host.capacity.memory_mb if measured_mem else state.cap[1]
            state.denom = (float(denom_cpu) if denom_cpu > 0 else 1.0,
                           float(denom_mem) if denom_mem > 0 else 1.0)
            state.abs = [host.load.cpu * state.denom[0] if measured_cpu else state.used[0],
                         host.load.memory * state.denom[1] if measured_mem else state.used[1]]
            state.instances = {}
            reason = None
            if not host.enabled:
                reason = "disabled" + (": %s" % host.disabled_reason if host.disabled_reason else "")
            elif host.forced_down:
                reason = "forced down"
            elif not host.up:
                reason = "down: the compute service does not report"
            state.receivable = reason is None
            scope_reason = _in_scope(host, scope)
            state.inactive_reason = reason or scope_reason
            state.active = state.inactive_reason is None
            state.pool = self._pool_key(state)
            self.hosts[host.name] = state
        self.host_list = [self.hosts[name] for name in sorted(self.hosts)]

        self.groups = {}
        self.instances = {}
        for inst in sorted(snapshot.instances, key=lambda i: i.id):
            state = InstanceState()
            state.instance = inst
            state.id = inst.id
            state.name = inst.name or inst.id
            state.host = self.hosts[inst.host]
            state.source = state.host
            state.flavor = (float(inst.flavor.vcpus), float(inst.flavor.memory_mb),
                            float(inst.flavor.disk_gb))
            state.alloc = (state.flavor[0], state.flavor[1])
            state.meas = [None if inst.load.cpu is None else inst.load.cpu * state.flavor[0],
                          None if inst.load.memory is None else inst.load.memory * state.flavor[1]]
            state.moved = False
            state.groups = []
            for group in inst.server_groups:
                gstate = self.groups.get(group.id)
                if gstate is None:
                    gstate = GroupState()
                    gstate.id = group.id
                    gstate.name = group.name
                    gstate.policy = group.policy
                    limit = group.max_server_per_host
                    if group.policy == "anti-affinity":
                        limit = limit or 1
                    gstate.limit = limit
                    gstate.counts = {}
                    gstate.total = 0
                    self.groups[group.id] = gstate
                if gstate not in state.groups:
                    state.groups.append(gstate)
                    gstate.counts[inst.host] = gstate.counts.get(inst.host, 0) + 1
                    gstate.total += 1
            state.skip = self._skip_reason(inst, exclude, cooldown, taken_at)
            state.host.instances[inst.id] = state
            self.instances[inst.id] = state
        self._estimate_unknown_loads()

    # ------------------------------------------------------------------ setup

    def _pool_key(self, host):
        return (None if self.cross_az else host.az,
                host.aggregates if self.keep_aggregates else None)

    @staticmethod
    def _skip_reason(inst, exclude, cooldown, taken_at):
        if inst.id in exclude or (inst.name is not None and inst.name in exclude):
            return "excluded by the exclude parameter"
        pinned = inst.pinned_by
        if pinned:
            return pinned
        if not inst.migratable:
            return "not migratable" + (": %s" % inst.not_migratable_reason
                                       if inst.not_migratable_reason else "")
        if inst.status not in LIVE_MIGRATABLE_STATUSES:
            return "status %s cannot be live-migrated" % inst.status
        if inst.task_state:
            return "busy: task_state %s" % inst.task_state
        if inst.locked:
            return "locked"
        if cooldown and inst.last_moved_at:
            age = (taken_at - parse_time(inst.last_moved_at)).total_seconds()
            if age < cooldown:
                return "cooldown: moved %ds before the snapshot, cooldown is %ds" % (age, cooldown)
        return None

    def _estimate_unknown_loads(self):
        """Share each measured host's unexplained load among instances with no measurement."""
        for host in self.host_list:
            members = [host.instances[key] for key in sorted(host.instances)]
            for metric in METRICS_INDEX:
                if not host.measured[metric]:
                    continue
                unknown = [i for i in members if i.meas[metric] is None]
                if not unknown:
                    continue
                known = math.fsum(i.meas[metric] for i in members if i.meas[metric] is not None)
                residual = max(0.0, host.abs[metric] - known)
                weights = [i.alloc[metric] for i in unknown]
                total = math.fsum(weights)
                for inst, weight in zip(unknown, weights):
                    share = weight / total if total > 0 else 1.0 / len(unknown)
                    inst.meas[metric] = residual * share
        for inst in self.instances.values():
            inst.by_mode = tuple(
                (inst.alloc[m], inst.alloc[m] if inst.meas[m] is None else inst.meas[m])
                for m in METRICS_INDEX)

    # ------------------------------------------------------------------ queries

    def movable(self, inst):
        """None when the instance may move in this plan, else the reason it stays."""
        if inst.skip:
            return inst.skip
        if inst.moved:
            return "already moved in this plan"
        if not inst.host.active:
            return "its host is left alone: %s" % inst.host.inactive_reason
        return None

    def fits(self, inst, host):
        """None when moving inst to host keeps every rule, else the first rule it breaks."""
        source = inst.host
        if host is source:
            return "already on %s" % host.name
        if not host.active:
            return "%s does not receive: %s" % (host.name, host.inactive_reason)
        if not self.cross_az and host.az != source.az:
            return "%s is in az %s, not %s" % (host.name, host.az, source.az)
        if self.keep_aggregates and host.aggregates != source.aggregates:
            return "%s is not in the same aggregates" % host.name
        used = host.used
        cap = host.cap
        flavor = inst.flavor
        if used[0] + flavor[0] > cap[0] + EPSILON:
            return "%s has no room for %g vCPUs" % (host.name, flavor[0])
        if used[1] + flavor[1] > cap[1] + EPSILON:
            return "%s has no room for %g MB RAM" % (host.name, flavor[1])
        if used[2] + flavor[2] > cap[2] + EPSILON:
            return "%s has no room for %g GB disk" % (host.name, flavor[2])
        for group in inst.groups:
            reason = self._group_blocks(group, source.name, host.name)
            if reason:
                return reason
        return None

    @staticmethod
    def _group_blocks(group, source, destination):
        on_dest = group.counts.get(destination, 0)
        on_source = group.counts.get(source, 0)
        policy = group.policy
        if policy == "anti-affinity":
            if on_dest + 1 > group.limit:
                return "anti-affinity group %s already has %d on %s" % (
                    group.name or group.id, on_dest, destination)
        elif policy == "affinity":
            if on_dest != group.total - 1:
                return "affinity group %s keeps its members together" % (group.name or group.id)
        elif policy == "soft-anti-affinity":
            # Never worse: a collision on the destination is fine only if one leaves the source.
            if on_dest >= 1 and on_source < 2:
                return "soft-anti-affinity group %s already has a member on %s" % (
                    group.name or group.id, destination)
        elif policy == "soft-affinity":
            # Never worse: do not add a host to a group that is spread over several already.
            if on_dest == 0 and on_source > 1:
                return "soft-affinity group %s would spread to %s" % (group.name or group.id,
                                                                      destination)
        return None

    def host_loads(self, host):
        return host.abs[0] / host.denom[0], host.abs[1] / host.denom[1]

    def delta(self, inst, host, metric):
        """Change of host's metric load (fraction) when inst leaves or arrives."""
        return inst.contribution(host, metric) / host.denom[metric]

    # ------------------------------------------------------------------ updates

    def move(self, inst, host):
        """Move inst to host, updating usage, load and server-group counts."""
        source = inst.host
        flavor = inst.flavor
        for index in (0, 1, 2):
            source.used[index] -= flavor[index]
            host.used[index] += flavor[index]
        for metric in METRICS_INDEX:
            source.abs[metric] -= inst.contribution(source, metric)
            host.abs[metric] += inst.contribution(host, metric)
        del source.instances[inst.id]
        host.instances[inst.id] = inst
        for group in inst.groups:
            counts = group.counts
            left = counts[source.name] - 1
            if left:
                counts[source.name] = left
            else:
                del counts[source.name]
            counts[host.name] = counts.get(host.name, 0) + 1
        inst.host = host
        inst.moved = True


METRICS_INDEX = tuple(range(len(METRICS)))
