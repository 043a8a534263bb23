# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An independent check of a replay's move log: no VM lost or doubled, RAM within capacity.

It reads only the log the engine keeps (``Replay(keep_log=True).log``): ``("place", t, vm,
host)``, ``("start", t, vm, source, destination, lands_at)``, ``("land", t, vm, left, host)``,
``("delete", t, vm, host)``, and rebuilds, from these facts alone, where each VM is and how much
RAM each host holds (a migrating VM holds its RAM on both hosts until it lands). It shares no code
with the engine.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def check(log, host_ram, vm_ram, ram_enforced=True):
    """A list of problems (empty when the log is consistent)."""
    problems = []
    where = {}        # vm -> host it runs on
    flying = {}       # vm -> list of destinations of moves in flight
    held = [0] * len(host_ram)
    landed_at = {}

    def hold(host, vm, t):
        held[host] += vm_ram[vm]
        if ram_enforced and held[host] > host_ram[host]:
            problems.append("t=%.1f: host %d holds %d MB of %d" % (t, host, held[host], host_ram[host]))

    for event in log:
        kind, t = event[0], event[1]
        if kind == "place":
            vm, host = event[2:]
            if vm in where:
                problems.append("t=%.1f: vm %d placed twice" % (t, vm))
            where[vm] = host
            hold(host, vm, t)
        elif kind == "start":
            vm, source, destination, lands = event[2:]
            if where.get(vm) != source:
                problems.append("t=%.1f: vm %d moves from host %s but runs on %s"
                                % (t, vm, source, where.get(vm)))
            if ram_enforced and flying.get(vm):
                problems.append("t=%.1f: vm %d starts a second move in flight" % (t, vm))
            if destination == source:
                problems.append("t=%.1f: vm %d moves onto its own host" % (t, vm))
            flying.setdefault(vm, []).append(destination)
            landed_at[(vm, destination)] = lands
            hold(destination, vm, t)
        elif kind == "land":
            vm, left, host = event[2:]
            if host not in flying.get(vm, []):
                problems.append("t=%.1f: vm %d lands on host %d with no move there" % (t, vm, host))
                continue
            flying[vm].remove(host)
            if left is not None:
                if where.get(vm) != left:
                    problems.append("t=%.1f: vm %d leaves host %s but ran on %s"
                                    % (t, vm, left, where.get(vm)))
                held[left] -= vm_ram[vm]
            where[vm] = host
        elif kind == "delete":
            vm, host = event[2:]
            if where.get(vm) != host or flying.get(vm):
                problems.append("t=%.1f: vm %d deleted from host %d but runs on %s"
                                % (t, vm, host, where.get(vm)))
            held[host] -= vm_ram[vm]
            where.pop(vm, None)
    for vm, hosts in sorted(flying.items()):
        if hosts:
            problems.append("vm %d still in flight to %s at the end" % (vm, hosts))
    counts = {}
    for vm, host in where.items():
        counts[vm] = counts.get(vm, 0) + 1
    if any(c != 1 for c in counts.values()):
        problems.append("a VM is on more than one host at the end")
    return problems
