# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers the strategies share: lazy heaps keyed by a per-host value, pool labels."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import heapq


class HostHeap(object):
    """A heap of hosts ordered by a value that changes as moves are applied.

    Entries are never updated in place: a host gets a new entry when its value changes, and
    stale entries (value no longer current) are dropped when they surface. Ties break by name.
    """

    __slots__ = ("heap", "values", "sign")

    def __init__(self, values, hosts, largest_first=False):
        self.values = values
        self.sign = -1.0 if largest_first else 1.0
        self.heap = [(self.sign * values[h.name], h.name, h) for h in hosts]
        heapq.heapify(self.heap)

    def push(self, host):
        heapq.heappush(self.heap, (self.sign * self.values[host.name], host.name, host))

    def _valid(self, entry):
        return entry[0] == self.sign * self.values[entry[1]]

    def peek(self):
        heap = self.heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop(self):
        host = self.peek()
        if host is not None:
            heapq.heappop(self.heap)
        return host

    def first(self, count, drop=None):
        """Up to count distinct hosts in heap order, leaving them in the heap.

        Hosts for which ``drop(host)`` is true are removed from the heap for good (until
        pushed again) and not returned.
        """
        heap = self.heap
        values = self.values
        sign = self.sign
        taken = []
        seen = set()
        while heap and len(taken) < count:
            entry = heapq.heappop(heap)
            name = entry[1]
            if entry[0] != sign * values[name] or name in seen:
                continue
            seen.add(name)
            if drop is not None and drop(entry[2]):
                continue
            taken.append(entry)
        for entry in taken:
            heapq.heappush(heap, entry)
        return [entry[2] for entry in taken]


def pool_label(key):
    """A pool key (az, aggregates) as people read it; None stands for "not scoped by it"."""
    az, aggregates = key
    label = "az %s" % (az or "(none)") if az is not None else "all azs"
    if aggregates is not None:
        label += ", aggregates %s" % (",".join(aggregates) or "(none)")
    return label
