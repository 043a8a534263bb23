# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CloudSim 3.0.3's reference policies, for calibrating the replay. BENCHMARK ONLY.

These are not strategies of the collection: they exist so the replay can be checked against the
figures CloudSim prints for the same days. Written from a reading of CloudSim's source
(``PowerVmAllocationPolicyMigrationAbstract``, ``...StaticThreshold``, ``...LocalRegression``,
``PowerVmSelectionPolicyMinimumMigrationTime``, ``PowerVmAllocationPolicySimple``), keeping its
order of operations and its quirks, which move the figures:

- *DVFS only* (``PowerVmAllocationPolicySimple``): first fit at creation, never migrates.
- *First placement of THR/LR*: power-aware best fit with every VM asking for its full MIPS, RAM
  and 100 Mbit/s; the power "now" of every host is its power at 0 % (no host has been refreshed
  yet), so the cheapest host is always an empty one: the VMs start spread out.
- *optimizeAllocation*, once per tick:
  1. overloaded hosts, in index order (THR: requested MIPS / capacity > threshold; LR: the
     least-squares line through the host's last 10 utilisation samples -- the sum over its VMs
     of their own histories -- extended one interval, x 1.2, >= 1; with fewer than 10 samples,
     THR 0.7). ``MathUtil.getLoessParameterEstimates`` weighs nothing in the end (no weight is
     <= 0, so its weighted branch is never taken): it is ordinary least squares, which is linear
     in the samples, so each VM's share of the prediction is computed once per tick.
  2. from each, the VM with the least RAM (first in the host's list on a tie) until the host
     is no longer overloaded;
  3. those VMs by demand, highest first (stable), each to the host whose power rises least
     (``findHostForVm``): power after = P((allocated MIPS of the host's planned VMs + the VM's
     demand) / capacity), power now = P(utilisation at the last refresh) -- so a host that
     has received VMs in this round still reads its old power; a host is skipped when it is
     overloaded, cannot fit the VM's demand in its free MIPS, or its core is smaller than the
     demand; a used host is also skipped when it would be overloaded with the VM; ties go to the
     lowest index. Switched-off hosts are candidates here.
  4. underloaded hosts: repeatedly the host with the least utilisation at the last refresh
     (0 < u < 1), skipping overloaded, switched-off and already-chosen hosts, and the hosts that
     received VMs in step 4 -- but *not* those that received VMs in step 3 (CloudSim excludes
     the destinations of an empty list there); all its VMs, including any placed on it in step 3
     (which then move twice: CloudSim starts and counts both), go by demand to the cheapest
     host by the same rule among hosts that are not switched off, overloaded or ever chosen as
     underloaded; if one VM finds no host, none of them moves.
- RAM: under CloudSim rules a VM asks for 0 MB after its first placement, so RAM never binds a
  migration; under real rules the planner checks each VM's full RAM against what the host's
  planned VMs hold.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bisect
import math

from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay

# Ordinary least squares through x = 1..10 (oldest..newest), value at x = 11, as weights of the
# samples, most recent first: w_j = 1/10 + (11 - 5.5) * (x_j - 5.5) / 82.5 with x_j = 10 - j.
LR_LENGTH = 10
LR_WEIGHTS = tuple(0.1 + (4.5 - j) / 15.0 for j in range(LR_LENGTH))
INF = float("inf")


class StaticThreshold(object):
    """THR: overloaded when requested MIPS / capacity > threshold."""

    def __init__(self, threshold):
        self.threshold = threshold
        self.name = "THR-%s" % threshold

    def inline(self):
        """(use the prediction?, threshold, safety) for PlanState.find."""
        return False, self.threshold, None

    def prepare(self, state):
        pass

    def over(self, state, h):
        return state.reqsum[h] / state.total[h] > self.threshold

    def over_with(self, state, h, vm):
        return (state.reqsum[h] + state.req[vm.index]) / state.total[h] > self.threshold


class LocalRegression(object):
    """LR: 1.2 x (least-squares line of the last 10 samples, one interval ahead) >= 1."""

    def __init__(self, safety, fallback=0.7):
        self.safety = safety
        self.fallback = StaticThreshold(fallback)
        self.name = "LR-%s" % safety

    def prepare(self, state):
        """Each VM's share of the prediction (MIPS), when every VM has 10 samples."""
        self.ready = state.history_length >= LR_LENGTH
        if not self.ready:
            return
        w = LR_WEIGHTS
        pred = state.pred
        for vm in state.vms:
            if vm.alive:
                h = vm.hist
                pred[vm.index] = vm.mips * (w[0] * h[0] + w[1] * h[1] + w[2] * h[2] + w[3] * h[3]
                                            + w[4] * h[4] + w[5] * h[5] + w[6] * h[6] + w[7] * h[7]
                                            + w[8] * h[8] + w[9] * h[9])

    def inline(self):
        if not self.ready:
            return self.fallback.inline()
        return True, None, self.safety

    def over(self, state, h):
        if not self.ready or not state.hvms[h]:
            return self.fallback.over(state, h)
        return state.predsum[h] / state.total[h] * self.safety >= 1

    def over_with(self, state, h, vm):
        if not self.ready:
            return self.fallback.over_with(state, h, vm)
        return (state.predsum[h] + state.pred[vm.index]) / state.total[h] * self.safety >= 1


class PlanState(object):
    """The planner's copy of the cloud: planned VM lists and what CloudSim's scheduler holds."""

    def __init__(self, rp, test, instantiating=False):
        self.rp = rp
        self.test = test
        self.vms = rp.vms
        hosts = rp.hosts
        n = len(hosts)
        self.n = n
        self.total = [h.mips for h in hosts]
        self.core = [h.core_mips for h in hosts]
        self.kind = [h.kind for h in hosts]
        self.models = [h.model for h in hosts]
        self.points = [h.model.points for h in hosts]
        self.ram_check = instantiating or rp.rules.ram_every_move
        self.bw_check = instantiating
        self.instantiating = instantiating
        self.ramfree = [h.ram_mb - h.ram_used for h in hosts]
        self.bwfree = [h.bandwidth_mbit for h in hosts]
        self.req = [0.0] * len(rp.vms)
        self.pred = [0.0] * len(rp.vms)
        self.history_length = 0
        if instantiating:
            # creation: a VM being created asks for its full MIPS; once created, 0 (no work yet)
            self.util = [0.0] * n
            self.hvms = [[] for _host in range(n)]
            self.salloc = [0.0] * n
            self.avail = list(self.total)
            self.reqsum = [0.0] * n
            self.predsum = [0.0] * n
        else:
            for vm in rp.vms:
                if vm.alive:
                    self.req[vm.index] = vm.req
            lengths = [len(vm.hist) for vm in rp.vms if vm.alive and vm.host is not None]
            self.history_length = min(lengths) if lengths else 0
            self.util = [replay.clamp_utilization(h.util_mips / h.mips) for h in hosts]
            self.hvms = [list(h.vms) for h in hosts]
            self.salloc = [0.0] * n
            self.avail = [0.0] * n
            self.reqsum = [0.0] * n
            self.predsum = [0.0] * n
            test.prepare(self)
            for h in range(n):
                self.recompute(h)
        self.pnow = [self.models[h].power(self.util[h]) for h in range(n)]
        # empty hosts that read 0 % all look alike within a type: one stands for all of them
        self.busy = [h for h in range(n) if self.hvms[h] or self.util[h] != 0]
        self.is_busy = [False] * n
        for h in self.busy:
            self.is_busy[h] = True
        self.kinds = sorted(set(self.kind))
        # real rules: the used hosts with room for each RAM size, so find() visits only those
        self.fit = {}
        if self.ram_check:
            for size in sorted(set(vm.ram_mb for vm in rp.vms)):
                self.fit[size] = [h for h in self.busy if self.ramfree[h] >= size]
            self.fit_sets = dict((size, set(hs)) for size, hs in self.fit.items())
        self.blank_by_kind = dict((k, [h for h in range(n) if self.kind[h] == k]) for k in self.kinds)

    def modes(self, h):
        host = self.rp.hosts[h]
        return [2 if vm in host.incoming else (1 if vm.in_migration else 0) for vm in self.hvms[h]]

    def recompute(self, h):
        """What CloudSim's scheduler holds for host h's planned VMs (after a vmDestroy)."""
        vms = self.hvms[h]
        req = self.req
        if not vms:
            self.salloc[h] = 0.0
            self.avail[h] = self.total[h]
            self.reqsum[h] = 0.0
            self.predsum[h] = 0.0
            return
        modes = self.modes(h)
        allocs, avail = replay.allocation(self.total[h], self.core[h], [req[v.index] for v in vms],
                                          modes)
        used = 0.0
        for a, mode in zip(allocs, modes):
            # getUtilizationOfCpuMips counts a migrating-in VM at 10 x its 10 %
            used += a * 0.9 / 0.1 + a if mode == 2 else a
        self.salloc[h] = used
        self.avail[h] = avail
        total = 0.0
        pred = 0.0
        for v in vms:
            total += req[v.index]
            pred += self.pred[v.index]
        self.reqsum[h] = total
        self.predsum[h] = pred

    def create(self, h, vm, demand):
        """Plan vm onto h (CloudSim's vmCreate on a host where it fits)."""
        core = self.core[h]
        capped = core if demand > core else demand
        self.hvms[h].append(vm)
        self.salloc[h] += capped
        self.avail[h] -= capped
        self.reqsum[h] += 0.0 if self.instantiating else demand
        self.predsum[h] += self.pred[vm.index]
        self.ramfree[h] -= vm.ram_mb
        if self.bw_check:
            self.bwfree[h] -= BW_PER_VM
        if not self.is_busy[h]:
            self.is_busy[h] = True
            bisect.insort(self.busy, h)
        self._refit(h)

    def _refit(self, h):
        """Keep h in the fit lists of the RAM sizes it has room for (real rules)."""
        if not self.fit or not self.is_busy[h]:
            return
        room = self.ramfree[h]
        for size, hosts in self.fit.items():
            members = self.fit_sets[size]
            if room >= size:
                if h not in members:
                    members.add(h)
                    bisect.insort(hosts, h)
            elif h in members:
                members.discard(h)
                del hosts[bisect.bisect_left(hosts, h)]

    def destroy(self, h, vm):
        self.hvms[h].remove(vm)
        self.ramfree[h] += vm.ram_mb
        if self.bw_check:
            self.bwfree[h] += BW_PER_VM
        self.recompute(h)
        self._refit(h)

    def find(self, vm, demand, excluded, blanks=True):
        """CloudSim's findHostForVm: the host whose power rises least; None when none fits.

        blanks=False leaves out the empty hosts that read 0 % (the caller excludes them all).
        """
        best = None
        best_diff = INF
        core = self.core
        avail = self.avail
        salloc = self.salloc
        total = self.total
        models = self.models
        pnow = self.pnow
        ramfree = self.ramfree
        ram_check = self.ram_check
        ram = vm.ram_mb
        use_pred, threshold, safety = self.test.inline()
        extra = self.pred[vm.index] if use_pred else self.req[vm.index]
        bw_check = self.bw_check
        hvms = self.hvms
        util = self.util
        sums = self.predsum if use_pred else self.reqsum
        points_of = self.points
        fmod = math.fmod
        for h in (self.fit.get(ram, self.busy) if ram_check else self.busy):
            if h in excluded or core[h] < demand or avail[h] < demand:
                continue
            if ram_check and ramfree[h] < ram:
                continue
            if bw_check and self.bwfree[h] < BW_PER_VM:
                continue
            if salloc[h] != 0:
                # the policy's test with the VM added (isHostOverUtilizedAfterAllocation)
                if use_pred:
                    if (sums[h] + extra) / total[h] * safety >= 1:
                        continue
                elif (sums[h] + extra) / total[h] > threshold:
                    continue
            u = (salloc[h] + demand) / total[h]
            if u > 1:
                u = 1.0
            # PowerModelSpecPower.getPower inlined (the same arithmetic as PowerModel.power)
            points = points_of[h]
            if fmod(u, 0.1) == 0:
                power = points[int(u * 10)]
            else:
                scaled = u * 10
                low = int(scaled)
                high = low if scaled == low else low + 1
                power = points[low] + (points[high] - points[low]) / 10 * (u - low / 10.0) * 100
            diff = power - pnow[h]
            if diff < best_diff:
                best_diff = diff
                best = h
        for k in (self.kinds if blanks else ()):
            for h in self.blank_by_kind[k]:
                if h in excluded:
                    continue
                if hvms[h] or util[h] != 0:
                    continue  # not blank (it is in busy)
                # the lowest-index blank host of this type stands for all of them
                if core[h] < demand or avail[h] < demand:
                    break
                if ram_check and ramfree[h] < ram:
                    break
                u = demand / total[h]
                diff = models[h].power(u if u <= 1 else 1.0) - pnow[h]
                if diff < best_diff or (diff == best_diff and (best is None or h < best)):
                    best_diff = diff
                    best = h
                break
        return best


BW_PER_VM = 100  # Mbit/s a VM reserves at creation (CloudSim Constants.VM_BW)


class FirstFit(object):
    """DVFS-only's placement (PowerVmAllocationPolicySimple): the first host that fits."""

    name = "first-fit"

    def place(self, rp):
        hosts = rp.hosts
        avail = [h.mips for h in hosts]
        ram = [h.ram_mb for h in hosts]
        bw = [h.bandwidth_mbit for h in hosts]
        result = []
        for vm in rp.vms:
            chosen = None
            for h, host in enumerate(hosts):
                if (host.core_mips >= vm.mips and avail[h] >= vm.mips and ram[h] >= vm.ram_mb
                        and bw[h] >= BW_PER_VM):
                    chosen = h
                    break
            if chosen is not None:
                avail[chosen] -= min(vm.mips, hosts[chosen].core_mips)
                ram[chosen] -= vm.ram_mb
                bw[chosen] -= BW_PER_VM
            result.append(chosen)
        return result


class PowerAwarePlacement(object):
    """THR/LR's first placement: findHostForVm with every VM being created (see the docstring)."""

    name = "power-aware-best-fit"

    def __init__(self, test):
        self.test = test

    def place(self, rp):
        state = PlanState(rp, self.test, instantiating=True)
        self.test.prepare(state)
        result = []
        for vm in rp.vms:
            state.req[vm.index] = vm.mips  # being created: asks for its full MIPS
            h = state.find(vm, vm.mips, ())
            state.req[vm.index] = 0.0
            if h is not None:
                state.create(h, vm, vm.mips)
            result.append(h)
        return result


class MigrationPolicy(object):
    """optimizeAllocation of PowerVmAllocationPolicyMigrationAbstract with MMT selection."""

    def __init__(self, test, name):
        self.test = test
        self.name = name

    def plan(self, rp, now):
        state = PlanState(rp, self.test)
        test = self.test
        n = state.n
        hvms = state.hvms
        req = state.req
        # 1. overloaded hosts
        over_hosts = [h for h in range(n) if hvms[h] and test.over(state, h)]
        # 2. minimum migration time: least RAM first until the host is no longer overloaded
        to_move = []
        for h in over_hosts:
            while True:
                chosen = None
                least = INF
                for vm in hvms[h]:
                    if vm.in_migration:
                        continue
                    if vm.ram_mb < least:
                        least = vm.ram_mb
                        chosen = vm
                if chosen is None:
                    break
                to_move.append(chosen)
                state.destroy(h, chosen)
                if not test.over(state, h):
                    break
        # 3. power-aware best fit decreasing
        excluded = set(over_hosts)
        moves = []
        to_move.sort(key=lambda v: -req[v.index])
        for vm in to_move:
            h = state.find(vm, req[vm.index], excluded)
            if h is not None:
                state.create(h, vm, req[vm.index])
                moves.append((vm.index, h))
        # 4. underloaded hosts
        util = state.util
        switched_off = set(h for h in range(n) if util[h] == 0)
        excluded_under = set(over_hosts) | switched_off
        excluded_place = set(over_hosts) | switched_off
        order = sorted((h for h in range(n) if 0 < util[h] < 1 and h not in excluded_under),
                       key=lambda h: (util[h], h))
        for u in order:
            if u in excluded_under:
                continue
            vms = hvms[u]
            if not vms or all(vm.in_migration for vm in vms):
                # areAllVmsMigratingOutOrAnyVmMigratingIn: nothing to take from this host
                continue
            excluded_under.add(u)
            excluded_place.add(u)
            movable = [vm for vm in vms if not vm.in_migration]
            movable.sort(key=lambda v: -req[v.index])
            placed = []
            for vm in movable:
                # every switched-off host is excluded here, so no empty host can be chosen
                h = state.find(vm, req[vm.index], excluded_place, blanks=False)
                if h is None:
                    for vm2, h2 in placed:
                        state.destroy(h2, vm2)
                    placed = []
                    break
                state.create(h, vm, req[vm.index])
                placed.append((vm, h))
            for vm, h in placed:
                excluded_under.add(h)
                moves.append((vm.index, h))
        return moves


class NoMigration(object):
    name = "dvfs"

    def plan(self, rp, now):
        return []


def policy(name):
    """(placement, schedule) of a reference policy: dvfs, thr-mmt-0.8, lr-mmt-1.2 (or other
    parameters: thr-mmt-<threshold>, lr-mmt-<safety>)."""
    key = name.lower()
    if key == "dvfs":
        return FirstFit(), []
    if key.startswith("thr-mmt-"):
        test = StaticThreshold(float(key[len("thr-mmt-"):]))
    elif key.startswith("lr-mmt-"):
        test = LocalRegression(float(key[len("lr-mmt-"):]))
    else:
        raise ValueError("unknown CloudSim policy %r (dvfs, thr-mmt-0.8, lr-mmt-1.2)" % name)
    return PowerAwarePlacement(test), [replay.Every(MigrationPolicy(test, key), 0.0, key)]


NAMES = ("dvfs", "thr-mmt-0.8", "lr-mmt-1.2")
