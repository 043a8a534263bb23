# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the executor under random sequences of Nova's answers (hypothesis).

Every instance's Nova behaves as drawn: accepts, refuses (4xx), answers 5xx, loses the answer to
a call it accepted, fails, hangs, refuses or delays aborts, turns ERROR half way, loses the
guest's power, vanishes. Whatever the mix, the waves and the limits:

- every move ends with one of the executor's results;
- a move whose migration Nova may still be running is never reported as ended: it is
  ``unresolved``, never ``failed``, ``aborted`` or ``moved``;
- no start call touches a host of an unresolved move after it was declared unresolved (its
  slots are never freed during the run);
- no start call is ever sent twice for one instance (an unclear answer is read back, never retried);
- a ``moved`` instance is on its destination, and a host never carries more migrations at once
  than ``max_per_host`` allows.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils._execute import RESULTS, Executor, Move
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import (
    FakeClock, FakeNova)

HOSTS = ["c1", "c2", "c3", "c4"]
BEHAVIOURS = ["ok", "ok", "fail", "hang", "refuse", "refuse-error", "abort-refused", "wrong-host", "vanish",
              "no-record", "lost-reply", "refuse-502", "error-mid", "abort-refused-once", "power-lost", "stuck",
              "stuck"]


@st.composite
def runs(draw):
    count = draw(st.integers(1, 8))
    moves = []
    for index in range(count):
        source = draw(st.sampled_from(HOSTS))
        destination = draw(st.sampled_from([h for h in HOSTS if h != source]))
        moves.append(("u%d" % index, source, destination, draw(st.integers(1, 3)),
                      draw(st.sampled_from(BEHAVIOURS))))
    options = dict(
        max_parallel=draw(st.integers(1, 3)), max_per_host=draw(st.integers(1, 2)),
        on_failure=draw(st.sampled_from(["stop", "continue", "continue"])), timeout=draw(st.integers(3, 30)),
        abort_timeout=draw(st.integers(2, 10)), poll_interval=draw(st.sampled_from([0.5, 1.0, 2.0])))
    return moves, options, draw(st.sampled_from([1.0, 3.0, 8.0]))


@settings(max_examples=300, deadline=None)
@given(run=runs())
def test_no_move_is_ever_unaccounted_for_and_no_slot_freed_while_nova_may_still_migrate(run):
    moves, options, duration = run
    clock = FakeClock()
    nova = FakeNova(clock, hosts=HOSTS, duration=duration)
    for uid, source, _dest, _wave, behaviour in moves:
        nova.add(uid, source, behaviour=behaviour)
    starts = []
    begin = nova._begin

    def recorded(uid, dest, kind, mig_type):
        starts.append((clock(), uid, nova.servers[uid]["host"], dest))
        return begin(uid, dest, kind, mig_type)
    nova._begin = recorded
    executor = Executor(nova, clock=clock, sleep=clock.sleep, **options)
    done = executor.run([Move(uid, source, dest, wave=wave) for uid, source, dest, wave, _b in moves])

    behaviour = dict((uid, b) for uid, _s, _d, _w, b in moves)
    for move in done:
        assert move.result in RESULTS, (move.instance, move.result)
        still_running = move.instance in nova.active and behaviour[move.instance] != "vanish"
        if still_running:
            assert move.result == "unresolved", (behaviour[move.instance], move.result, move.error)
        if move.result == "moved":
            assert nova.servers[move.instance]["host"] == move.destination
    # never sent twice
    started = [uid for _t, uid, _h, _d in starts]
    assert len(started) == len(set(started)), started
    # the slots of an unresolved move stay taken
    for move in done:
        if move.result != "unresolved":
            continue
        declared = move._started + move.seconds
        for when, uid, source, dest in starts:
            if uid != move.instance and when > declared:
                assert not set([source, dest]) & set(move.touches()), (
                    "%s started on %s -> %s after %s (on %s) was unresolved" % (
                        uid, source, dest, move.instance, move.touches()))
    assert max(nova.peak_per_host.values() or [0]) <= options["max_per_host"] or any(
        m.result == "unresolved" for m in done)
