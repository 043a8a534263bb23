# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wave ordering: limits per wave and per host, and moves that need room freed earlier."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._plan import assign_waves, rnd, spread


class FakeMove(object):
    def __init__(self, source, destination):
        self.source, self.destination, self.wave = source, destination, 0


def waves(pairs, max_parallel=4, max_per_host=1):
    moves = [FakeMove(s, d) for s, d in pairs]
    count = assign_waves(moves, max_parallel, max_per_host)
    return count, [m.wave for m in moves]


def test_independent_moves_share_a_wave_up_to_max_parallel():
    assert waves([("a", "b"), ("c", "d"), ("e", "f")], max_parallel=2) == (2, [1, 1, 2])


def test_max_per_host_counts_both_directions():
    assert waves([("a", "b"), ("a", "c")]) == (2, [1, 2])
    assert waves([("b", "a"), ("c", "a")]) == (2, [1, 2])
    assert waves([("a", "b"), ("a", "c")], max_per_host=2) == (1, [1, 1])
    assert waves([("b", "a"), ("c", "a")], max_per_host=2) == (1, [1, 1])
    assert waves([("a", "b"), ("a", "c"), ("a", "d")], max_per_host=2) == (2, [1, 1, 2])


def test_move_into_a_host_waits_for_earlier_moves_out_of_it():
    # b -> c frees room on b that a -> b may need: a -> b goes after it, even with room to spare.
    assert waves([("b", "c"), ("a", "b")], max_per_host=4) == (2, [1, 2])
    # A later independent move still fills the earliest wave.
    assert waves([("b", "c"), ("a", "b"), ("d", "e")], max_per_host=4) == (2, [1, 2, 1])


def test_no_moves_no_waves():
    assert waves([]) == (0, [])


def test_spread_figures():
    figures = spread([1.2, 0.3, 0.6], [0.6, 0.1, 0.3], [0.6, 0.2, 0.3])
    assert figures["max"] == 1.2 and figures["min"] == 0.3 and figures["ratio"] == 3.0
    assert figures["mean"] == 0.7 and figures["active_hosts"] == 3
    assert figures["stddev"] == rnd((((1.2 - .7) ** 2 + (.3 - .7) ** 2 + (.6 - .7) ** 2) / 3) ** 0.5)
    assert spread([0.5, 0.0])["ratio"] is None
    assert spread([0.0, 0.0])["ratio"] == 0.0
    assert spread([])["max"] is None
    assert rnd(-0.0000001) == 0.0 and str(rnd(-0.0000001)) == "0.0"
