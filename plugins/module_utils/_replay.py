# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replay: a day of measured loads through a simulated cloud, with a schedule of planner runs.

Pure Python, standard library only. The engine keeps hosts, instances ("VMs" here, as in the
simulators it is calibrated against), the CPU each VM asks for at every instant, migrations in
flight, a power model per host type, and the metrics. At every tick (one interval of the load
series) it brings the loads up to date, runs the schedule entries that are due, and starts the
moves of their plans; each migration takes RAM / bandwidth seconds and costs CPU while it runs.

What it measures (``Replay.run`` returns them in one dict):

- ``migrations``, ``gib_moved``, ``max_migrations_per_vm``, ``ping_pong`` (a VM moved to a host it
  left less than ``ping_pong_window`` seconds before);
- ``energy_kwh`` from the power model of each host type;
- ``slatah``: over all hosts, the time a host was active *and* allocated less CPU than its VMs
  asked for, divided by the total active time (``overloaded_host_hours`` is the numerator);
- ``pdm``: the CPU the VMs asked for but did not get while migrating, over all the CPU they
  asked for (``mips_s_lost_to_migration`` is the numerator); ``slav`` = slatah x pdm;
- ``active_hosts_mean`` (active host-time over the measured time), ``vms_deleted``,
  ``plan_seconds`` (time spent in the planners), ``refused_moves``, ``ram_peak_ratio``,
  ``wall_seconds`` and ``cpu_seconds`` of the whole replay;
- ``timeline``: per tick, its time ``t``, the hosts ``active`` and ``overloaded`` (allocated less
  CPU than their VMs asked for) after the tick's refresh, the ``energy_kwh`` used since the tick
  before, and the ``migrations`` started at it with their ``gib_moved`` and the ``plan_seconds``
  it took (``_timeline.timeline_svg`` draws it).

**The model, and which part of CloudSim 3.0.3 each rule reproduces.** The reference figures of
the PlanetLab benchmark come from CloudSim's power package (``PowerDatacenter``,
``HostDynamicWorkload``, ``VmSchedulerTimeSharedOverSubscription``, ``PowerVm``,
``UtilizationModelPlanetLabInMemory``, ``PowerModelSpecPower``, and the metrics of the examples'
``Helper``). The engine reproduces their behaviour rule by rule (its own code, not a port):

1. *Demand.* A VM's demand at time t is trace(t) x its MIPS, the trace interpolated linearly
   between samples (``UtilizationModelPlanetLabInMemory.getUtilization``, same arithmetic, so the
   same doubles); past the last sample the last value repeats.
2. *Allocation on a host* (``allocation``): each VM asks for its demand capped at one core's MIPS
   (a single-core VM cannot use more than one core: on the G4 hosts, 1,860 MIPS, below the
   2,500 and 2,000 MIPS VM types -- "the G4 core cap"). VMs are served in the host's list
   order; once the capped demands no longer fit, every VM gets floor(capped x capacity / sum).
   A VM migrating out gets 90 % of its share; the destination reserves 10 % of the VM's capped
   demand for it as well.
3. *Host utilisation and SLA state* (``HostDynamicWorkload.updateVmsProcessing``): the host's
   utilisation is the sum of allocations, a migrating-out VM counted at its full share
   (allocation / 0.9), a migrating-in VM at its 10 %; what the host's VMs *ask for* includes the
   migrating-in VM's full demand, so a destination host is short of CPU for as long as a
   migration into it runs. Each refresh records (time, allocated, requested, active) for the
   host and (time, allocated, requested, in migration) for each VM it runs (not for the VMs
   migrating into it); a record at the same time replaces the previous one.
4. *Refreshes* (``PowerDatacenter``): every tick refreshes all hosts, then the energy of the
   elapsed time is added, then (CloudSim rules) VMs asking for exactly 0 MIPS are deleted
   (``HostDynamicWorkload.getCompletedVms``; with interpolation that is two zero samples in a
   row), then the schedule plans and the migrations start (each start refreshes its source and
   destination at once). A migration ends RAM / (bandwidth / 2) later: all hosts are refreshed
   at that instant (energy added), the VMs land on their destinations (appended to the list),
   and the hosts involved are refreshed again.
5. *Energy* (``PowerDatacenter`` + ``PowerHost.getEnergyLinearInterpolation``): between two
   refreshes a host uses the mean of the power at the start and at the end (power interpolated
   between the 10 % points of its model, ``PowerModelSpecPower``), or nothing when its
   utilisation at the start was 0 (switched off; no switching cost).
6. *Clock* (CloudSim rules): CloudSim submits the workload at 0.1 s and first refreshes the hosts
   at 300.1 s (until then every host reads 0 % and so uses 0 J); the simulation stops at 86,400 s,
   so the refresh due at 86,400.1 s never happens. The measured time is therefore 300.1 s to
   86,100.1 s (plus the migrations started at 86,100.1 s). Under real rules the ticks are at
   0, 300, ..., and a last refresh at the end of the series closes the last interval.
7. *Utilisation history* (``PowerVm``): at every tick each VM records its utilisation
   (fraction of its MIPS), most recent first, 30 values kept; policies read ``vm.hist``.

**Rule sets** (``Rules``): ``CLOUDSIM`` reproduces CloudSim's runs: RAM is checked only at the
first placement (afterwards a VM's requested RAM reads 0 because its RAM utilisation model is
null, so migrations are limited by CPU alone), zero-MIPS VMs are deleted, CloudSim's clock, and
a VM may appear twice in one plan (CloudSim executes both moves and counts both). ``REAL``
enforces RAM on every move (a migrating VM holds its RAM on both hosts until it lands), keeps
every VM, ticks from 0 and closes the last interval, refuses a move of a VM already migrating,
and a host with VMs on it is on (it is off only when empty). A refused move is counted in
``refused_moves``; under ``REAL`` every planned move must keep RAM within capacity.

**Schedule and policies.** A policy is any object with ``plan(replay, now)`` returning moves,
each ``(vm_index, host_index)`` or ``(vm_index, host_index, wave)``; the moves of one wave start
together, a wave starts when the one before has landed. ``place(replay)`` (optional, on the
object given as ``placement``) returns the first host of each VM. ``Every(policy, period)`` runs a
policy every ``period`` seconds of simulated time, ``Below(policy, level, period)`` when the mean
CPU utilisation of the active hosts is under ``level``. Policies see the simulated state
(``replay.hosts``, ``replay.vms``, ``Host.util_mips``, ``Vm.req``, ``Vm.hist``...) and must not
change it: the engine applies their moves.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import heapq
import math
import time

HISTORY_LENGTH = 30
# CloudSim models the bandwidth available to a migration as half the host's link.
MIGRATION_BANDWIDTH_SHARE = 0.5
# CPU during a migration (CloudSim's VmSchedulerTimeShared): the VM keeps 90 % on its source,
# the destination reserves 10 %.
MIGRATION_SOURCE_SHARE = 0.9
MIGRATION_DESTINATION_SHARE = 0.1


class Rules(object):
    """A rule set: which constraints hold and how time is measured. See the module docstring."""

    __slots__ = ("name", "ram_every_move", "delete_zero_mips", "cloudsim_clock", "off_when_idle",
                 "allow_double_moves")

    def __init__(self, name, ram_every_move, delete_zero_mips, cloudsim_clock, off_when_idle,
                 allow_double_moves):
        self.name = name
        self.ram_every_move = ram_every_move
        self.delete_zero_mips = delete_zero_mips
        self.cloudsim_clock = cloudsim_clock
        self.off_when_idle = off_when_idle
        self.allow_double_moves = allow_double_moves


CLOUDSIM = Rules("cloudsim", ram_every_move=False, delete_zero_mips=True, cloudsim_clock=True,
                 off_when_idle=True, allow_double_moves=True)
REAL = Rules("real", ram_every_move=True, delete_zero_mips=False, cloudsim_clock=False,
             off_when_idle=False, allow_double_moves=False)
RULES = {"cloudsim": CLOUDSIM, "real": REAL}


class PowerModel(object):
    """Power in watts at 0, 10, ..., 100 % CPU, linear in between (CloudSim PowerModelSpecPower)."""

    __slots__ = ("points", "name")

    def __init__(self, points, name=None):
        if len(points) != 11:
            raise ValueError("a power model has 11 points (0, 10, ..., 100 %%), got %d" % len(points))
        self.points = tuple(float(p) for p in points)
        self.name = name

    def power(self, utilization):
        """Watts at a utilisation in [0, 1], the same arithmetic as CloudSim (same doubles)."""
        if utilization < 0 or utilization > 1:
            raise ValueError("utilisation must be within [0, 1], got %r" % utilization)
        points = self.points
        if math.fmod(utilization, 0.1) == 0:
            return points[int(utilization * 10)]
        scaled = utilization * 10
        low = int(scaled)  # floor and ceil of a non-negative number, as CloudSim takes them
        high = low if scaled == low else low + 1
        delta = (points[high] - points[low]) / 10
        return points[low] + delta * (utilization - low / 10.0) * 100


def clamp_utilization(utilization):
    """CloudSim reads a utilisation within 1 % above 1 as 1; beyond that we clamp as well."""
    if utilization > 1:
        return 1.0
    return utilization


def energy_ws(model, start_util, end_util, seconds, off_when_idle=True, powered=True):
    """Energy in W*s of one host over one stretch: trapezoid of the power at both ends.

    A host whose utilisation is 0 at the start of the stretch is switched off (0 W) when
    ``off_when_idle`` (CloudSim); otherwise it is off only when not ``powered`` (no VMs).
    """
    if seconds <= 0:
        return 0.0
    if off_when_idle:
        if start_util == 0:
            return 0.0
    elif not powered:
        return 0.0
    start = model.power(clamp_utilization(start_util))
    end = model.power(clamp_utilization(end_util))
    return (start + (end - start) / 2) * seconds


def migration_seconds(ram_mb, bandwidth_mbit):
    """Seconds to copy ram_mb over the share of the link given to migrations (CloudSim: half)."""
    return ram_mb * 8.0 / (bandwidth_mbit * MIGRATION_BANDWIDTH_SHARE)


def allocation(total, core, demands, modes):
    """CPU allocated to each VM of a host, CloudSim's VmSchedulerTimeSharedOverSubscription.

    demands: MIPS each VM asks for, in the host's list order; modes: 0 plain, 1 migrating out,
    2 migrating in. Returns (allocations, available MIPS left). Each demand is capped at one core;
    a migrating-in VM needs 10 % of its capped demand. VMs are served in order while they fit;
    when one does not, every VM is scaled by capacity / total need and rounded down.
    """
    available = total
    over = False
    needs = []
    for demand, mode in zip(demands, modes):
        capped = core if demand > core else demand
        need = capped * MIGRATION_DESTINATION_SHARE if mode == 2 else capped
        needs.append((capped, need, mode))
        if not over:
            if available >= need:
                available -= need
            else:
                over = True
    result = []
    if not over:
        for capped, need, mode in needs:
            if mode == 1:
                result.append(capped * MIGRATION_SOURCE_SHARE)
            elif mode == 2:
                result.append(capped * MIGRATION_DESTINATION_SHARE)
            else:
                result.append(capped)
        return result, available
    factor = total / sum(need[1] for need in needs)
    for capped, need, mode in needs:
        if mode == 1:
            result.append(math.floor(capped * factor * MIGRATION_SOURCE_SHARE))
        elif mode == 2:
            result.append(math.floor(capped * MIGRATION_DESTINATION_SHARE * factor))
        else:
            result.append(math.floor(capped * factor))
    return result, 0.0


class Host(object):
    """A simulated host. ``vms`` is in arrival order (CloudSim's list order matters)."""

    __slots__ = ("index", "name", "kind", "cores", "core_mips", "mips", "ram_mb", "bandwidth_mbit",
                 "model", "vms", "incoming", "util_mips", "req_mips", "ram_used",
                 "e_time", "e_alloc", "e_req", "e_active", "powered")

    def __init__(self, index, name, kind, cores, core_mips, ram_mb, bandwidth_mbit, model):
        self.index = index
        self.name = name
        self.kind = kind
        self.cores = cores
        self.core_mips = float(core_mips)
        self.mips = float(cores * core_mips)
        self.ram_mb = ram_mb
        self.bandwidth_mbit = bandwidth_mbit
        self.model = model
        self.vms = []
        self.incoming = []
        self.util_mips = 0.0
        self.req_mips = 0.0
        self.ram_used = 0
        self.e_time = None
        self.e_alloc = 0.0
        self.e_req = 0.0
        self.e_active = False
        self.powered = False

    def utilization(self):
        return self.util_mips / self.mips


class Vm(object):
    """A simulated VM: its trace (fractions of its MIPS per sample) and its state."""

    __slots__ = ("index", "name", "kind", "mips", "ram_mb", "trace", "slope", "host", "in_migration",
                 "pending", "alive", "req", "hist", "e_time", "e_alloc", "e_req", "e_mig", "moves",
                 "left", "landed")

    def __init__(self, index, name, kind, mips, ram_mb, trace, interval):
        self.index = index
        self.name = name
        self.kind = kind
        self.mips = float(mips)
        self.ram_mb = ram_mb
        trace = [float(u) for u in trace]
        trace.append(trace[-1])  # past the last sample the last value repeats (CloudSim too)
        self.trace = trace
        self.slope = [(trace[k + 1] - trace[k]) / (1 * interval) for k in range(len(trace) - 1)]
        self.slope.append(0.0)
        self.host = None
        self.in_migration = False
        self.pending = 0
        self.alive = True
        self.req = 0.0
        self.hist = []
        self.e_time = None
        self.e_alloc = 0.0
        self.e_req = 0.0
        self.e_mig = False
        self.moves = 0
        self.left = {}
        self.landed = None

    def utilization_at(self, t, interval):
        """trace(t), as UtilizationModelPlanetLabInMemory.getUtilization computes it."""
        if math.fmod(t, interval) == 0:
            return self.trace[min(int(t) // int(interval), len(self.trace) - 1)]
        k = min(int(math.floor(t / interval)), len(self.trace) - 1)
        return self.trace[k] + self.slope[k] * (t - k * interval)


class Every(object):
    """Run ``policy`` at the first tick, then every ``period`` seconds of simulated time."""

    def __init__(self, policy, period=0.0, name=None):
        self.policy = policy
        self.period = float(period)
        self.name = name or getattr(policy, "name", type(policy).__name__)
        self.next_at = None

    def due(self, replay, now):
        if self.next_at is None or now + 1e-6 >= self.next_at:
            self.next_at = now + self.period
            return True
        return False


class Below(Every):
    """Run ``policy`` when the mean CPU utilisation of the active hosts is below ``level``,
    at most every ``period`` seconds."""

    def __init__(self, policy, level, period=0.0, name=None):
        Every.__init__(self, policy, period, name)
        self.level = level

    def due(self, replay, now):
        active = [h for h in replay.hosts if h.vms]
        if not active:
            return False
        mean = sum(h.utilization() for h in active) / len(active)
        if mean >= self.level:
            return False
        return Every.due(self, replay, now)


class Hot(Every):
    """Run ``policy`` (a StrategyPolicy) at a tick where some host's demand as the policy's
    snapshot reports it is above ``level`` of the host's MIPS, at most every ``period`` seconds;
    checking costs no plan."""

    def __init__(self, policy, level, name=None, period=0.0):
        Every.__init__(self, policy, period, name)
        self.level = level

    def due(self, rp, now):  # pylint: disable=arguments-renamed
        demand = self.policy.demands(rp, now)
        for host in rp.hosts:
            if not host.vms:
                continue
            total = 0.0
            for vm in host.vms:
                if vm not in host.incoming:
                    total += demand[vm.index]
            if total > self.level * host.mips:
                return Every.due(self, rp, now)
        return False


class Replay(object):
    """One replay: hosts, VMs with their traces, a placement, a schedule, a rule set.

    hosts: list of Host; vms: list of Vm (index = position); placement: object with
    ``place(replay)`` -> host index per VM (or None: the VM is not created, as in CloudSim when
    no host fits); schedule: list of Every/Below entries; rules: CLOUDSIM or REAL.
    """

    def __init__(self, hosts, vms, placement, schedule, rules=CLOUDSIM, interval=300.0,
                 ping_pong_window=3600.0, keep_log=False):
        self.hosts = hosts
        self.vms = vms
        self.placement = placement
        self.schedule = list(schedule)
        self.rules = rules
        self.interval = float(interval)
        self.ping_pong_window = float(ping_pong_window)
        self.samples = min(len(vm.trace) for vm in vms) - 1 if vms else 0
        self.now = 0.0
        self.ticks = 0
        self.last_refresh = 0.0
        self.events = []
        self.seq = 0
        self.waves = []
        self.log = [] if keep_log else None
        # metrics
        self.energy_ws = 0.0
        self.migrations = 0
        self.mb_moved = 0.0
        self.ping_pong = 0
        self.refused = 0
        self.refused_reasons = {}
        self.deleted = 0
        self.active_time = 0.0
        self.violation_time = 0.0
        self.vm_requested = 0.0
        self.vm_allocated = 0.0
        self.vm_lost_migration = 0.0
        self.plan_seconds = 0.0
        self.plan_runs = {}
        self.ram_peak = 0.0
        self.clamped = 0
        # per tick: time, active hosts and overloaded hosts after the refresh, moves started
        self.timeline = {"t": [], "active": [], "overloaded": [], "migrations": [], "gib_moved": [],
                         "energy_kwh": [], "plan_seconds": []}
        self._energy_at_tick = 0.0

    # ------------------------------------------------------------------ records (metrics)

    def _host_record(self, host, t, alloc, req, active):
        if host.e_time is not None and t != host.e_time:
            if host.e_active:
                span = t - host.e_time
                self.active_time += span
                if host.e_alloc < host.e_req:
                    self.violation_time += span
        host.e_time = t
        host.e_alloc = alloc
        host.e_req = req
        host.e_active = active

    def _vm_record(self, vm, t, alloc, req, migrating):
        if vm.e_time is not None and t != vm.e_time:
            span = t - vm.e_time
            self.vm_requested += vm.e_req * span
            self.vm_allocated += vm.e_alloc * span
            if vm.e_mig and vm.e_alloc < vm.e_req:
                self.vm_lost_migration += (vm.e_req - vm.e_alloc) * span
        vm.e_time = t
        vm.e_alloc = alloc
        vm.e_req = req
        vm.e_mig = migrating

    # ------------------------------------------------------------------ refreshes

    def _demands(self, t):
        """Every live VM's demand at t (CloudSim: utilisation at t x MIPS)."""
        interval = self.interval
        if math.fmod(t, interval) == 0:
            k = int(t) // int(interval)
            for vm in self.vms:
                if vm.alive:
                    trace = vm.trace
                    vm.req = trace[min(k, len(trace) - 1)] * vm.mips
            return
        k = int(math.floor(t / interval))
        offset = t - k * interval
        for vm in self.vms:
            if vm.alive:
                kk = k if k < len(vm.trace) else len(vm.trace) - 1
                vm.req = (vm.trace[kk] + vm.slope[kk] * offset) * vm.mips

    def _refresh_host(self, host, t):
        """Allocate the host's CPU at t and record its state and its VMs' (rule 3)."""
        vms = host.vms
        if not vms:
            host.util_mips = 0.0
            host.req_mips = 0.0
            host.powered = False
            self._host_record(host, t, 0.0, 0.0, False)
            return
        incoming = host.incoming
        core = host.core_mips
        total = host.mips
        available = total
        over = False
        caps = []
        for vm in vms:
            demand = vm.req
            capped = core if demand > core else demand
            if incoming and vm in incoming:
                mode = 2
                need = capped * MIGRATION_DESTINATION_SHARE
            elif vm.in_migration:
                mode = 1
                need = capped
            else:
                mode = 0
                need = capped
            caps.append((vm, capped, need, mode))
            if not over:
                if available >= need:
                    available -= need
                else:
                    over = True
        factor = total / sum(c[2] for c in caps) if over else 1.0
        util = 0.0
        req = 0.0
        vm_record = self._vm_record
        for vm, capped, need, mode in caps:
            if mode == 0:
                alloc = math.floor(capped * factor) if over else capped
                vm_record(vm, t, alloc, vm.req, False)
            elif mode == 1:
                alloc = (math.floor(capped * factor * MIGRATION_SOURCE_SHARE) if over
                         else capped * MIGRATION_SOURCE_SHARE)
                vm_record(vm, t, alloc, vm.req, True)
                alloc /= MIGRATION_SOURCE_SHARE
            else:
                alloc = (math.floor(capped * MIGRATION_DESTINATION_SHARE * factor) if over
                         else capped * MIGRATION_DESTINATION_SHARE)
            util += alloc
            req += vm.req
        host.util_mips = util
        host.req_mips = req
        host.powered = True
        self._host_record(host, t, util, req, util > 0 if self.rules.off_when_idle else True)

    def _refresh_all(self, t, tick=False):
        """Rule 4: refresh every host at t, add the energy since the last refresh, delete."""
        span = t - self.last_refresh
        self._demands(t)
        if tick:
            for vm in self.vms:
                if vm.alive and vm.host is not None:
                    hist = vm.hist
                    hist.insert(0, vm.req / vm.mips)
                    if len(hist) > HISTORY_LENGTH:
                        hist.pop()
        off_when_idle = self.rules.off_when_idle
        for host in self.hosts:
            if not host.vms and host.util_mips == 0.0 and not host.e_active and not host.powered:
                continue
            before = host.util_mips / host.mips
            powered = host.powered
            self._refresh_host(host, t)
            if span > 0:
                after = host.util_mips / host.mips
                if before > 1.01 or after > 1.01:
                    self.clamped += 1
                self.energy_ws += energy_ws(host.model, before, after, span, off_when_idle, powered)
        if self.rules.delete_zero_mips:
            self._delete_zero(self.hosts)
        if span > 0:
            self.last_refresh = t

    def _delete_zero(self, hosts):
        """CloudSim deletes a VM that asks for exactly 0 MIPS and is not migrating."""
        for host in hosts:
            gone = [vm for vm in host.vms if not vm.in_migration and vm.req == 0]
            for vm in gone:
                host.vms.remove(vm)
                host.ram_used -= vm.ram_mb
                vm.alive = False
                vm.host = None
                self.deleted += 1
                if self.log is not None:
                    self.log.append(("delete", self.now, vm.index, host.index))

    # ------------------------------------------------------------------ migrations

    def _refuse(self, reason):
        self.refused += 1
        self.refused_reasons[reason] = self.refused_reasons.get(reason, 0) + 1

    def start_migration(self, vm, target, t):
        """Start moving vm to target at t (rule 4); False when the rules refuse the move."""
        if not vm.alive or vm.host is None:
            self._refuse("vm gone")
            return False
        if target is vm.host:
            self._refuse("already on the destination")
            return False
        if vm.in_migration and not self.rules.allow_double_moves:
            self._refuse("already migrating")
            return False
        if vm in target.vms:
            self._refuse("already on the destination")
            return False
        if self.rules.ram_every_move and target.ram_used + vm.ram_mb > target.ram_mb:
            self._refuse("RAM")
            return False
        source = vm.host
        left_at = vm.left.get(target.index)
        if left_at is not None and t - left_at <= self.ping_pong_window:
            self.ping_pong += 1
        vm.in_migration = True
        vm.pending += 1
        target.incoming.append(vm)
        target.vms.append(vm)
        target.ram_used += vm.ram_mb
        self._note_ram(target)
        self.migrations += 1
        self.mb_moved += vm.ram_mb
        vm.moves += 1
        self._refresh_host(target, t)
        self._refresh_host(source, t)
        done = t + migration_seconds(vm.ram_mb, target.bandwidth_mbit)
        self.seq += 1
        heapq.heappush(self.events, (done, self.seq, vm, target))
        if self.log is not None:
            self.log.append(("start", t, vm.index, source.index, target.index, done))
        return True

    def _note_ram(self, host):
        ratio = host.ram_used / float(host.ram_mb)
        if ratio > self.ram_peak:
            self.ram_peak = ratio

    def _land(self, vm, target, t):
        """A migration ends: the VM leaves whichever host holds it and joins target's list."""
        holder = vm.host
        if holder is not None and vm in holder.vms:
            holder.vms.remove(vm)
            holder.ram_used -= vm.ram_mb
            vm.left[holder.index] = t
        target.incoming.remove(vm)
        target.vms.remove(vm)
        target.vms.append(vm)
        vm.host = target
        vm.landed = t
        vm.pending -= 1
        # Under CloudSim rules a VM may have a second move of the same plan still in flight.
        vm.in_migration = vm.pending > 0
        if self.log is not None:
            self.log.append(("land", t, vm.index, holder.index if holder is not None else None,
                             target.index))
        return holder

    def _process_events(self, until, inclusive=False):
        """Land the migrations due before ``until``, one instant at a time (rule 4)."""
        events = self.events
        while events and (events[0][0] < until or (inclusive and events[0][0] <= until)):
            t = events[0][0]
            self.now = t
            if t > self.last_refresh:
                self._refresh_all(t)
            touched = []
            while events and events[0][0] == t:
                vm, target = heapq.heappop(events)[2:]
                holder = self._land(vm, target, t)
                for host in (holder, target):
                    if host is not None and host not in touched:
                        touched.append(host)
            touched.sort(key=lambda h: h.index)
            for host in touched:
                self._refresh_host(host, t)
            if self.rules.delete_zero_mips:
                self._delete_zero(touched)
            self._start_waves(t)

    def _start_waves(self, t):
        """Start the next wave of a plan once every move of the wave before has landed."""
        if not self.waves:
            return
        remaining = []
        for pending in self.waves:
            while not any(vm.pending for vm in pending["running"]) and pending["waves"]:
                wave = pending["waves"].pop(0)
                pending["running"] = [vm for vm, target in wave
                                      if self.start_migration(vm, target, t)]
            if pending["waves"]:
                remaining.append(pending)
        self.waves = remaining

    def apply(self, moves, t):
        """Start a plan's moves: wave 1 now (in plan order), later waves as earlier ones land."""
        by_wave = {}
        for move in moves:
            vm_index, host_index = move[0], move[1]
            wave = move[2] if len(move) > 2 else 1
            by_wave.setdefault(wave, []).append((self.vms[vm_index], self.hosts[host_index]))
        if not by_wave:
            return
        self.waves.append({"running": [], "waves": [by_wave[w] for w in sorted(by_wave)]})
        self._start_waves(t)

    # ------------------------------------------------------------------ the run

    def _place(self):
        hosts_of = self.placement.place(self)
        for vm, index in zip(self.vms, hosts_of):
            if index is None:
                vm.alive = False
                continue
            host = self.hosts[index]
            vm.host = host
            host.vms.append(vm)
            host.ram_used += vm.ram_mb
            self._note_ram(host)
            if self.log is not None:
                self.log.append(("place", 0.0, vm.index, index))

    def _ticks(self):
        """Tick times: CloudSim's accumulated 0.1 + 300 k, or 0, 300, ... (rule 6)."""
        ticks = []
        if self.rules.cloudsim_clock:
            t = 0.1
            for _sample in range(1, self.samples):
                t = t + self.interval
                ticks.append(t)
        else:
            for k in range(self.samples):
                ticks.append(k * self.interval)
        return ticks

    def _plan(self, now):
        for entry in self.schedule:
            if not entry.due(self, now):
                continue
            started = time.perf_counter()
            moves = entry.policy.plan(self, now)
            self.plan_seconds += time.perf_counter() - started
            self.plan_runs[entry.name] = self.plan_runs.get(entry.name, 0) + 1
            if moves:
                self.apply(moves, now)

    def run(self):
        """Replay the whole series; returns the metrics dict."""
        wall = time.perf_counter()
        cpu = time.process_time()
        self._place()
        end = self.samples * self.interval
        ticks = self._ticks()
        for t in ticks:
            self._process_events(t)
            self.now = t
            self._refresh_all(t, tick=True)
            self.ticks += 1
            started, moved, planned = self.migrations, self.mb_moved, self.plan_seconds
            line = self.timeline
            line["t"].append(t)
            line["active"].append(sum(1 for h in self.hosts if h.e_active))
            line["overloaded"].append(sum(1 for h in self.hosts if h.e_active and h.e_alloc < h.e_req))
            line["energy_kwh"].append((self.energy_ws - self._energy_at_tick) / 3.6e6)
            self._energy_at_tick = self.energy_ws
            self._plan(t)
            line["migrations"].append(self.migrations - started)
            line["gib_moved"].append((self.mb_moved - moved) / 1024.0)
            line["plan_seconds"].append(self.plan_seconds - planned)
        self._process_events(end)
        if not self.rules.cloudsim_clock:
            self.now = end
            self._refresh_all(end)
        return self.results(time.perf_counter() - wall, time.process_time() - cpu)

    def results(self, wall_seconds=None, cpu_seconds=None):
        # close the per-VM records still open is not done: CloudSim never closes them either
        slatah = self.violation_time / self.active_time if self.active_time else 0.0
        pdm = self.vm_lost_migration / self.vm_requested if self.vm_requested else 0.0
        per_vm = [vm.moves for vm in self.vms]
        measured = self._measured_seconds()
        energy_kwh = self.energy_ws / 3.6e6
        return {
            "rules": self.rules.name,
            "energy_kwh": energy_kwh,
            "migrations": self.migrations,
            "gib_moved": self.mb_moved / 1024.0,
            "slatah": slatah,
            "pdm": pdm,
            "slav": slatah * pdm,
            "esv": energy_kwh * slatah * pdm,
            "overloaded_host_hours": self.violation_time / 3600.0,
            "active_host_hours": self.active_time / 3600.0,
            "active_hosts_mean": self.active_time / measured if measured else 0.0,
            "mips_s_lost_to_migration": self.vm_lost_migration,
            "max_migrations_per_vm": max(per_vm) if per_vm else 0,
            "mean_migrations_per_vm": (sum(per_vm) / float(len(per_vm))) if per_vm else 0.0,
            "ping_pong": self.ping_pong,
            "ping_pong_window_s": self.ping_pong_window,
            "vms": len(self.vms),
            "vms_deleted": self.deleted,
            "hosts": len(self.hosts),
            "refused_moves": self.refused,
            "refused_reasons": dict(self.refused_reasons),
            "ram_peak_ratio": self.ram_peak,
            "utilization_clamped": self.clamped,
            "plan_seconds": self.plan_seconds,
            "plan_runs": dict(self.plan_runs),
            "ticks": self.ticks,
            "timeline": dict((k, list(v)) for k, v in self.timeline.items()),
            "wall_seconds": wall_seconds,
            "cpu_seconds": cpu_seconds,
        }

    def _measured_seconds(self):
        ticks = self._ticks()
        return self.last_refresh - ticks[0] if ticks else 0.0


# ---------------------------------------------------------------------- the collection's strategies

class StrategyPolicy(object):
    """A strategy of the collection (``make_plan``) run on a Snapshot of the simulated cloud.

    The snapshot says what a gatherer would: every host with its capacity and measured CPU
    load, every VM as an instance with its flavor, measured CPU load and ``last_moved_at`` (when
    it last landed). CPU is counted in MIPS ("vCPUs" of 1 MIPS, so hosts of different speeds
    compare), with ``cpu_ratio`` as the vCPU allocation ratio; a host's load is what its VMs ask
    for over its MIPS (at most 1), a VM's load is its demand over its MIPS. RAM: the flavor's
    RAM against the host's, allocation ratio ``memory_ratio`` -- by default 1.0 under rules that
    enforce RAM on every move, and the schema's largest (RAM never binds) under CloudSim rules.
    VMs migrating at the tick are listed with status MIGRATING, so the planner leaves them be.
    The plan's waves become the engine's waves.

    ``estimate`` (optional, ``(percentile, window_s)``): a VM's load in the snapshot is then the
    larger of its current demand and that percentile (nearest rank) of the trace samples of the
    last ``window_s`` seconds up to ``now`` -- what a gatherer keeping an hour of history would
    report, never the future -- and a host's load is the sum of its VMs' estimates (at most 1).
    Default None: the current demand, as before.
    """

    def __init__(self, strategy, params=None, name=None, cpu_ratio=16.0, memory_ratio=None,
                 epoch="2026-01-01T00:00:00+00:00", estimate=None):
        self.estimate = estimate
        self.strategy = strategy
        self.params = dict(params or {})
        self.name = name or strategy
        self.cpu_ratio = cpu_ratio
        self.memory_ratio = memory_ratio
        self.epoch = epoch
        self.last_plan = None

    def snapshot(self, rp, now):
        """The Snapshot of the simulated cloud at ``now``."""
        import datetime
        from ansible_collections.cloudops.leveller.plugins.module_utils import _snapshot as snap

        start = snap.parse_time(self.epoch)

        def stamp(seconds):
            return (start + datetime.timedelta(seconds=seconds)).isoformat()

        memory_ratio = self.memory_ratio
        if memory_ratio is None:
            memory_ratio = 1.0 if rp.rules.ram_every_move else 1000.0
        demand_of = self.demands(rp, now)
        hosts = []
        for host in rp.hosts:
            demand = 0.0
            for vm in host.vms:
                if vm not in host.incoming:
                    demand += demand_of[vm.index]
            hosts.append(snap.Host(
                name=host.name, hypervisor_hostname=host.name,
                capacity=snap.Resources(host.mips, host.ram_mb, 0),
                allocation_ratio=snap.Resources(self.cpu_ratio, memory_ratio, 1.0),
                load=snap.Load(min(1.0, demand / host.mips), None), load_source="libvirt"))
        instances = []
        used = [[0.0, 0.0, 0] for _host in rp.hosts]
        for vm in rp.vms:
            if not vm.alive or vm.host is None:
                continue
            instances.append(snap.Instance(
                id="vm-%05d" % vm.index, name=vm.name, host=vm.host.name,
                flavor=snap.Resources(vm.mips, vm.ram_mb, 0), flavor_name="type-%d" % vm.kind,
                status="MIGRATING" if vm.in_migration else "ACTIVE",
                load=snap.Load(min(1.0, max(0.0, demand_of[vm.index] / vm.mips)), None),
                last_moved_at=stamp(vm.landed) if vm.landed is not None else None))
            held = used[vm.host.index]
            held[0] += vm.mips
            held[1] += vm.ram_mb
            held[2] += 1
        for host in rp.hosts:
            for vm in host.incoming:  # a VM in flight holds its flavor on both hosts
                used[host.index][0] += vm.mips
                used[host.index][1] += vm.ram_mb
        for host, (cpu, ram, count) in zip(hosts, used):
            host.used = snap.Resources(cpu, ram, 0)
            host.instances = count
        return snap.Snapshot(taken_at=stamp(now), hosts=hosts, instances=instances,
                             sources={"weights": {"cpu": 1.0, "memory": 0.0}})

    def demands(self, rp, now):
        """Each VM's demand as the snapshot reports it (MIPS, by VM index): see ``estimate``."""
        if not self.estimate:
            return [vm.req for vm in rp.vms]
        cached = getattr(self, "_demands", None)
        if cached is not None and cached[0] is rp and cached[1] == now:
            return cached[2]
        percentile, window = self.estimate
        last = int(math.floor((now + 1e-6) / rp.interval))
        first = max(0, last - int(round(window / rp.interval)))
        result = []
        for vm in rp.vms:
            samples = sorted(vm.trace[first:last + 1])
            if not samples:
                result.append(vm.req)
                continue
            rank = max(1, int(math.ceil(percentile / 100.0 * len(samples))))
            result.append(max(vm.req, samples[rank - 1] * vm.mips))
        self._demands = (rp, now, result)
        return result

    def plan(self, rp, now):
        from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan

        snapshot = self.snapshot(rp, now)
        plan = make_plan(snapshot, self.strategy, self.params)
        self.last_plan = plan
        host_index = dict((host.name, host.index) for host in rp.hosts)
        moves = []
        for move in plan.moves:
            moves.append((int(move.instance[3:]), host_index[move.destination], move.wave))
        return moves
