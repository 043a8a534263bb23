# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""State machine of the executor: waves, limits, waits, aborts and result accounting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    Executor, Move, check_hosts_known, diff_of, moves_from_plan, summary_message)
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import (
    FakeClock, FakeNova)


def make(**kwargs):
    clock = FakeClock()
    nova = FakeNova(clock, **{k: kwargs.pop(k) for k in ('duration', 'free') if k in kwargs})
    kwargs.setdefault('poll_interval', 1.0)
    kwargs.setdefault('timeout', 30)
    kwargs.setdefault('abort_timeout', 10)
    ex = Executor(nova, clock=clock, sleep=clock.sleep, **kwargs)
    return clock, nova, ex


def test_single_move_succeeds_and_is_verified():
    clock, nova, ex = make()
    nova.add('a', 'c1')
    moves = ex.run([Move('a', 'c1', 'c2')])
    m = moves[0]
    assert m.result == 'moved'
    assert m.host_after == 'c2' and m.status_after == 'ACTIVE'
    assert 3.0 <= m.seconds <= 5.0
    assert nova.servers['a']['host'] == 'c2'
    assert ex.totals(moves)['moved'] == 1
    assert len(ex.progress) == 1 and 'moved' in ex.progress[0] and 'c1 -> c2' in ex.progress[0]


def test_a_move_that_lands_an_instance_on_its_home_removes_the_record():
    clock, nova, ex = make()
    nova.add('a', 'c2')
    nova.add('b', 'c3')
    nova.servers['a']['metadata'] = {'leveller:home': 'c1', 'keep': 'me'}
    nova.servers['b']['metadata'] = {'leveller:home': 'c1'}
    moves = ex.run([Move('a', 'c2', 'c1'), Move('b', 'c3', 'c4')])
    assert [m.result for m in moves] == ['moved', 'moved']
    assert nova.servers['a']['metadata'] == {'keep': 'me'}
    assert moves[0].note == 'back on its home host c1: leveller:home removed'
    # b moved elsewhere: still away, its record stays
    assert nova.servers['b']['metadata'] == {'leveller:home': 'c1'} and moves[1].note is None
    assert [c for c in nova.calls if c[0] == 'delete-metadata'] == [('delete-metadata', 'a', 'leveller:home')]


def test_a_home_record_that_cannot_be_removed_leaves_the_move_done_and_says_so():
    clock, nova, ex = make()
    nova.add('a', 'c2')
    nova.servers['a']['metadata'] = {'leveller:home': 'c1'}
    nova.metadata_refused.add('a')
    (m,) = ex.run([Move('a', 'c2', 'c1')])
    assert m.result == 'moved' and nova.servers['a']['host'] == 'c1'
    assert m.note.startswith('back on its home host c1, but leveller:home could not be removed: DELETE')


def test_scheduler_picks_destination_when_none_given():
    clock, nova, ex = make()
    nova.add('a', 'c1')
    m = ex.run([Move('a', 'c1', None)])[0]
    assert m.result == 'moved'
    assert m.host_after not in (None, 'c1')
    assert nova.calls[0] == ('live', 'a', None)


def test_failed_migration_is_reported_with_state_and_stops_later_waves():
    clock, nova, ex = make(on_failure='stop')
    nova.add('a', 'c1', behaviour='fail')
    nova.add('b', 'c3')
    moves = ex.run([Move('a', 'c1', 'c2', wave=1), Move('b', 'c3', 'c4', wave=2)])
    assert moves[0].result == 'failed'
    assert 'ended failed' in moves[0].error and 'ACTIVE on c1 (unchanged)' in moves[0].error
    assert moves[1].result == 'skipped' and 'on_failure=stop' in moves[1].error
    assert ('live', 'b', 'c4') not in nova.calls
    assert ex.stopped_by == 'vm-a'
    # never retried
    assert sum(1 for c in nova.calls if c[1] == 'a' and c[0] == 'live') == 1


def test_on_failure_continue_runs_the_rest():
    clock, nova, ex = make(on_failure='continue')
    nova.add('a', 'c1', behaviour='fail')
    nova.add('b', 'c3')
    moves = ex.run([Move('a', 'c1', 'c2', wave=1), Move('b', 'c3', 'c4', wave=2)])
    assert [m.result for m in moves] == ['failed', 'moved']
    assert ex.totals(moves) == dict(ex.totals(moves), failed=1, moved=1, total=2)


def test_stop_lets_in_flight_moves_finish_but_starts_no_new_one():
    clock, nova, ex = make(on_failure='stop', max_parallel=2, max_per_host=2)
    nova.add('a', 'c1', behaviour='fail')
    nova.add('b', 'c3')
    nova.add('c', 'c1')
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c3', 'c4'), Move('c', 'c1', 'c4')])
    assert moves[0].result == 'failed'
    assert moves[1].result == 'moved'  # was already in flight
    assert moves[2].result == 'skipped' and 'not started' in moves[2].error


def test_hanging_migration_is_aborted_at_timeout_and_confirmed_on_source():
    clock, nova, ex = make(timeout=10)
    nova.add('a', 'c1', behaviour='hang')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'aborted'
    assert 'timed out after 10s' in m.error and 'ACTIVE on its source c1' in m.error
    assert ('abort', 'a', m.migration_id) in nova.calls
    assert nova.servers['a']['host'] == 'c1'
    assert m.seconds < 10 + 10 + 3


def test_abort_refused_is_asked_again_then_left_unresolved_without_waiting_forever():
    clock, nova, ex = make(timeout=10)
    nova.add('a', 'c1', behaviour='abort-refused')
    # make it hang too: abort-refused instances never complete in the fake
    nova.duration = 10 ** 6
    start = clock.now
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    # The migration may still run: not "failed" (which would free its hosts) but unresolved.
    assert m.result == 'unresolved'
    assert 'Nova refused every abort' in m.error and 'Check it before any retry' in m.error
    assert len([c for c in nova.calls if c[0] == 'abort']) >= 3  # asked again, with backoff
    assert clock.now - start < 25
    assert ex.held == [m]


def test_an_abort_refused_once_is_asked_again_and_succeeds():
    clock, nova, ex = make(timeout=10)
    nova.add('a', 'c1', behaviour='abort-refused-once')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'aborted' and 'instance ACTIVE on its source c1' in m.error
    assert len([c for c in nova.calls if c[0] == 'abort']) == 2
    assert ex.held == []


def test_timeout_without_migration_record_while_busy_is_unresolved():
    clock, nova, ex = make(timeout=5)
    nova.add('a', 'c1', behaviour='no-record')
    nova.duration = 10 ** 6
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'unresolved' and 'no migration record' in m.error


def test_a_lost_answer_to_the_start_call_is_read_back_and_the_move_tracked():
    clock, nova, ex = make()
    nova.add('a', 'c1', behaviour='lost-reply')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'moved' and m.host_after == 'c2'
    assert "Nova's answer to the start call was lost (POST timed out" in m.note
    assert 'the live migration began' in m.note
    assert [c[0] for c in nova.calls].count('live') == 1  # never sent twice


def test_a_5xx_with_nothing_begun_counts_as_refused_only_after_reading_back():
    clock, nova, ex = make()
    nova.add('a', 'c1', behaviour='refuse-502')
    start = clock.now
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed'
    assert "answer to the start call was unclear (POST returned HTTP 502" in m.error
    assert 'no live migration began' in m.error and 'counts as refused' in m.error
    assert clock.now - start >= 20  # read back for the whole window, not judged at once
    assert [c[0] for c in nova.calls].count('live') == 1


def test_a_4xx_is_refused_at_once():
    clock, nova, ex = make()
    nova.add('a', 'c1', behaviour='refuse')
    start = clock.now
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed' and 'Nova refused the live migration' in m.error
    assert clock.now - start < 2


def test_an_unresolved_move_holds_its_hosts_until_the_run_ends():
    clock, nova, ex = make(timeout=5, abort_timeout=5, on_failure='continue', max_parallel=2)
    nova.add('a', 'c1', behaviour='stuck')
    nova.add('b', 'c2')
    nova.add('c', 'c3')
    nova.duration = 3.0
    moves = ex.run([Move('a', 'c1', 'c2', wave=1), Move('b', 'c2', 'c4', wave=2), Move('c', 'c3', 'c4', wave=2)])
    a, b, c = moves
    assert a.result == 'unresolved'
    assert b.result == 'skipped' and 'c2 is held by the unresolved move of vm-a' in b.error
    assert ('live', 'b', 'c4') not in nova.calls
    assert c.result == 'moved'  # hosts a does not touch carry on


def test_an_instance_that_turns_error_mid_migration_is_caught_at_the_next_poll():
    clock, nova, ex = make(timeout=100)
    nova.add('a', 'c1', behaviour='error-mid')
    nova.duration = 10.0
    start = clock.now
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed' and 'put the instance in ERROR' in m.error
    assert clock.now - start < 10  # not at the 100 s deadline


def test_post_check_refuses_a_guest_that_arrived_with_another_power_state():
    clock, nova, ex = make()
    nova.add('a', 'c1', behaviour='power-lost')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed' and 'power state is shutdown (was running)' in m.error


@pytest.mark.parametrize('on_drift, expected', [('skip', 'skipped'), ('fail', 'failed')])
def test_deleted_instance_is_drift(on_drift, expected):
    clock, nova, ex = make(on_drift=on_drift)
    m = ex.run([Move('gone', 'c1', 'c2')])[0]
    assert m.result == expected
    assert 'no longer exists' in m.error
    assert nova.calls == []


def test_instance_moved_since_planning_is_drift():
    clock, nova, ex = make()
    nova.add('a', 'c3')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'skipped' and 'is on c3, the move expects it on c1' in m.error


def test_instance_already_on_destination_is_skipped_not_drift():
    clock, nova, ex = make(on_drift='fail')
    nova.add('a', 'c2')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'skipped' and m.error == 'already on c2'
    assert ex.stopped_by is None


def test_destination_disabled_is_drift_with_reason():
    clock, nova, ex = make()
    nova.add('a', 'c1')
    nova.services['c2']['status'] = 'disabled'
    nova.services['c2']['disabled_reason'] = 'maintenance'
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'skipped' and 'destination c2 is disabled (maintenance)' in m.error
    assert nova.calls == []


def test_destination_down_and_source_down_are_drift():
    clock, nova, ex = make()
    nova.add('a', 'c1')
    nova.add('b', 'c3')
    nova.services['c2']['state'] = 'down'
    nova.services['c3']['forced_down'] = True
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c3', 'c4')])
    assert 'destination c2 is down' in moves[0].error
    assert 'source c3 is down' in moves[1].error and 'evacuate_host' in moves[1].error


def test_shutoff_or_busy_instance_is_not_live_migrated():
    clock, nova, ex = make()
    nova.add('a', 'c1', status='SHUTOFF')
    nova.add('b', 'c1')
    nova.servers['b']['task_state'] = 'rebooting'
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c1', 'c2')])
    assert 'instance is SHUTOFF' in moves[0].error
    assert 'busy (task_state rebooting)' in moves[1].error


def test_active_instance_without_a_running_power_state_is_not_live_migrated():
    # Nova answers 409 "in power_state pending" for these: the pre-check says why first.
    clock, nova, ex = make(on_drift='fail', on_failure='continue')
    nova.add('a', 'c1')
    nova.servers['a']['power_state'] = 0
    nova.add('b', 'c1')
    nova.servers['b']['power_state'] = 3
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c1', 'c3')])
    assert moves[0].result == 'failed' and 'power state is nostate' in moves[0].error
    assert nova.servers['a']['host'] == 'c1'
    assert moves[1].result == 'moved'


def test_no_room_on_destination_is_drift():
    clock, nova, ex = make(free={'c2': {'MEMORY_MB': 256}})
    nova.add('a', 'c1', ram=512)
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'skipped'
    assert 'no room' in m.error and 'MEMORY_MB needs 512, free 256' in m.error


def test_room_shared_by_moves_in_flight_defers_instead_of_overbooking():
    # Room for one instance; the second move to the same host waits for the first,
    # then the live check (Placement now shows the first) says no room.
    clock, nova, ex = make(free={'c2': {'MEMORY_MB': 600}}, max_parallel=2, max_per_host=2)
    nova.add('a', 'c1', ram=512)
    nova.add('b', 'c3', ram=512)
    orig_live = nova.live_migrate

    def live(uid, host=None):
        orig_live(uid, host)
        nova.free[host]['MEMORY_MB'] -= 512
    nova.live_migrate = live
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c3', 'c2')])
    assert moves[0].result == 'moved'
    assert moves[1].result == 'skipped' and 'no room' in moves[1].error
    assert nova.peak == 1


def test_max_parallel_is_respected():
    clock, nova, ex = make(max_parallel=2, max_per_host=4)
    for i, src in enumerate(['c1', 'c1', 'c2', 'c2', 'c3']):
        nova.add('i%d' % i, src)
    moves = ex.run([Move('i%d' % i, src, 'c4') for i, src in enumerate(['c1', 'c1', 'c2', 'c2', 'c3'])])
    assert all(m.result == 'moved' for m in moves)
    assert nova.peak == 2


def test_max_per_host_counts_incoming_and_outgoing():
    clock, nova, ex = make(max_parallel=4, max_per_host=1)
    nova.add('a', 'c1')
    nova.add('b', 'c2')
    nova.add('c', 'c3')
    # a: c1->c2 and b: c2->c3 share c2; c: c3->c4 shares c3 with b
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c2', 'c3'), Move('c', 'c3', 'c4')])
    assert all(m.result == 'moved' for m in moves)
    assert max(nova.peak_per_host.values()) == 1
    assert nova.peak == 2  # a and c together


def test_waves_run_in_order():
    clock, nova, ex = make(max_parallel=4, max_per_host=4)
    nova.add('a', 'c1')
    nova.add('b', 'c2')
    ex.run([Move('b', 'c2', 'c3', wave=2), Move('a', 'c1', 'c4', wave=1)])
    order = [c[1] for c in nova.calls if c[0] == 'live']
    assert order == ['a', 'b']
    assert nova.peak == 1


def test_check_mode_changes_nothing():
    clock, nova, ex = make(check_mode=True)
    nova.add('a', 'c1')
    nova.add('b', 'c1')
    nova.services['c3']['status'] = 'disabled'
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c1', 'c3')])
    assert [m.result for m in moves] == ['would move', 'skipped']
    assert nova.calls == []
    assert nova.servers['a']['host'] == 'c1'
    d = diff_of(moves)
    assert d['before']['hosts']['vm-a (a)'] == 'c1' and d['after']['hosts']['vm-a (a)'] == 'c2'
    assert d['after']['hosts']['vm-b (b)'] == 'c1'


def test_refused_call_is_failed_and_instance_state_reported():
    clock, nova, ex = make(on_failure='continue')
    nova.add('a', 'c1', behaviour='refuse')
    nova.add('b', 'c1', behaviour='refuse-error')
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c1', 'c3')])
    assert moves[0].result == 'failed' and 'No valid host' in moves[0].error
    assert 'instance now ACTIVE on c1' in moves[0].error
    # a 500 is read back first; nothing began, and the instance is in ERROR
    assert moves[1].result == 'failed' and 'in ERROR and needs an operator' in moves[1].error
    assert 'no live migration began' in moves[1].error


def test_post_check_catches_wrong_host():
    clock, nova, ex = make()
    nova.add('a', 'c1', behaviour='wrong-host')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed'
    assert 'reports completed but the instance is ACTIVE on c9' in m.error


def test_instance_vanishing_mid_move_is_failed():
    clock, nova, ex = make()
    nova.add('a', 'c1', behaviour='vanish')
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed' and 'disappeared' in m.error


def test_cold_migration_is_confirmed():
    clock, nova, ex = make()
    nova.add('s', 'c1', status='SHUTOFF')
    m = ex.run([Move('s', 'c1', None, kind='cold')])[0]
    assert m.result == 'moved' and m.status_after == 'SHUTOFF' and m.host_after != 'c1'
    assert ('confirm', 's', None) in nova.calls


def test_evacuation_restarts_instances_that_were_running():
    clock, nova, ex = make(max_parallel=2, max_per_host=2)
    nova.services['c1']['state'] = 'down'
    nova.services['c1']['forced_down'] = True
    nova.add('a', 'c1')
    nova.add('s', 'c1', status='SHUTOFF')
    moves = ex.run([Move('a', 'c1', None, kind='evacuate'), Move('s', 'c1', None, kind='evacuate')])
    assert [m.result for m in moves] == ['evacuated', 'evacuated']
    assert moves[0].status_after == 'ACTIVE' and 'started again' in moves[0].note
    assert moves[1].status_after == 'SHUTOFF'
    assert ('start', 'a', None) in nova.calls and ('start', 's', None) not in nova.calls


def test_evacuation_failure_is_reported():
    clock, nova, ex = make()
    nova.services['c1']['state'] = 'down'
    nova.add('a', 'c1', behaviour='fail')
    m = ex.run([Move('a', 'c1', None, kind='evacuate')])[0]
    assert m.result == 'failed' and 'evacuation' in m.error and 'ended error' in m.error


def test_progress_callback_errors_do_not_break_a_run():
    lines = []

    def cb(line):
        lines.append(line)
        raise IOError('disk full')
    clock, nova, ex = make(progress=cb)
    nova.add('a', 'c1')
    assert ex.run([Move('a', 'c1', 'c2')])[0].result == 'moved'
    assert lines == ['wave 1/1: 1 move(s)', '[1/1] wave 1 live vm-a (a) c1 -> c2: moved in 3.0 s']


def test_a_progress_line_as_each_wave_starts_none_for_a_wave_that_never_starts():
    """The progress log says when a wave starts; RV(progress) keeps one line per finished move."""
    lines = []
    clock, nova, ex = make(progress=lines.append, max_parallel=2, max_per_host=2)
    for name in 'abc':
        nova.add(name, 'c1')
    nova.add('d', 'c1', behaviour='fail')
    nova.add('e', 'c3')
    ex.run([Move('a', 'c1', 'c2', wave=1), Move('b', 'c1', 'c2', wave=1), Move('c', 'c1', 'c2', wave=2),
            Move('d', 'c1', 'c2', wave=2), Move('e', 'c3', 'c4', wave=3)])
    waves = [line for line in lines if line.startswith('wave ')]
    assert waves == ['wave 1/3: 2 move(s)', 'wave 2/3: 2 move(s)']  # wave 3 is skipped (on_failure=stop)
    assert lines.index('wave 2/3: 2 move(s)') == 3  # after both moves of wave 1
    assert all('wave 1 live' in line for line in lines[1:3])
    assert not [line for line in ex.progress if line.startswith('wave ')] and len(ex.progress) == 5


def test_summary_message():
    assert summary_message({'total': 3, 'moved': 2, 'failed': 1}, 'web-1') == \
        '3 move(s): 2 moved, 1 failed; no new move started after web-1 did not complete (on_failure=stop)'
    assert summary_message({'total': 0}) == '0 move(s): nothing to do'


def test_moves_from_plan_reads_the_plan_contract():
    plan = {'version': 1, 'strategy': 'balance', 'snapshot_digest': 'sha256:' + '0' * 64, 'moves': [
        {'instance': 'u1', 'name': 'web-1', 'source': 'c1', 'destination': 'c3', 'wave': 2},
        {'instance': 'u2', 'name': 'web-2', 'source': 'c2', 'destination': 'c4', 'wave': 1, 'kind': 'cold'}]}
    moves = moves_from_plan(plan)
    assert [(m.instance, m.source, m.destination, m.wave, m.name, m.kind) for m in moves] == [
        ('u1', 'c1', 'c3', 2, 'web-1', 'live'), ('u2', 'c2', 'c4', 1, 'web-2', 'cold')]


def _move(**fields):
    move = {'instance': 'u', 'source': 'c1', 'destination': 'c2'}
    move.update(fields)
    return move


@pytest.mark.parametrize('plan, words', [
    ([], 'plan: expected a mapping'),
    ({'version': 2, 'moves': []}, 'plan.version: expected 1, got 2'),
    ({'moves': []}, 'plan.version: required field is missing'),
    ({'version': 1}, 'plan.moves: required field is missing'),
    ({'version': 1, 'moves': {}}, 'plan.moves: expected a list'),
    ({'version': 1, 'moves': [{'source': 'c1', 'destination': 'c2'}]}, 'plan.moves[0].instance: required field'),
    ({'version': 1, 'moves': [{'instance': 'u', 'destination': 'c1'}]}, 'plan.moves[0].source: required field'),
    ({'version': 1, 'moves': [{'instance': 'u', 'source': 'c1'}]}, 'plan.moves[0].destination: required field'),
    ({'version': 1, 'moves': [_move(destination='')]}, "plan.moves[0].destination: expected a non-empty string, got ''"),
    ({'version': 1, 'moves': [_move(destination=None)]}, 'plan.moves[0].destination: expected a non-empty string'),
    ({'version': 1, 'moves': [_move(destination=7)]}, 'plan.moves[0].destination: expected a non-empty string, got 7'),
    ({'version': 1, 'moves': [{'instance': 'u', 'source': 'c1', 'dest': 'c2'}]},
     'plan.moves[0].destination: required field is missing'),
    ({'version': 1, 'moves': [_move(dest='c3')]},
     'plan.moves[0].dest: unknown key; known: instance, name, source, destination, wave, kind, reason,'),
    ({'version': 1, 'moves': [_move(dest='c3')]}, '(did you mean destination?)'),
    ({'version': 1, 'moves': [_move(wave=0)]}, 'plan.moves[0].wave: expected an integer >= 1, got 0'),
    ({'version': 1, 'moves': [_move(wave=True)]}, 'plan.moves[0].wave: expected an integer >= 1, got True'),
    ({'version': 1, 'moves': [_move(kind='evacuate')]}, 'plan.moves[0].kind: expected one of live, cold'),
    ({'version': 1, 'moves': [_move(destination='c1')]}, 'plan.moves[0] (u): source and destination are both c1'),
    ({'version': 1, 'moves': [_move(), _move(destination='c3')]},
     'plan.moves[1] (u): moves instance u a second time (plan.moves[0] moves it already)'),
    ({'version': 1, 'moves': [], 'extra': 1}, 'plan.extra: unknown key; known: version, strategy'),
    ({'version': 1, 'moves': [], 'snapshot_digest': 'abc'}, 'plan.snapshot_digest: expected sha256:<64 hex digits>'),
])
def test_malformed_plans_are_refused_with_the_reason(plan, words):
    with pytest.raises(ValueError) as err:
        moves_from_plan(plan)
    assert words in str(err.value)


def test_unknown_hosts_are_named():
    with pytest.raises(ValueError) as err:
        check_hosts_known([Move('u', 'c1', 'nowhere')], {'c1': {}, 'c2': {}})
    assert 'nowhere' in str(err.value) and 'known: c1, c2' in str(err.value)
    check_hosts_known([Move('u', 'c1', None)], {'c1': {}})


def test_drain_capacity_shortfall_counts_only_enabled_up_hosts():
    from ansible_collections.cloudops.leveller.plugins.module_utils._execute import drain_capacity_shortfall
    clock, nova, ex = make(free={'c2': {'MEMORY_MB': 300}, 'c3': {'MEMORY_MB': 300}, 'c4': {'MEMORY_MB': 5000}})
    nova.add('a', 'c1', ram=512)
    nova.add('b', 'c1', ram=512)
    servers = [nova.get_server('a'), nova.get_server('b')]
    assert drain_capacity_shortfall(nova, 'c1', nova.compute_services(), servers) is None
    nova.services['c4']['status'] = 'disabled'
    text = drain_capacity_shortfall(nova, 'c1', nova.compute_services(), servers)
    assert text == 'MEMORY_MB needs 1024, free 600'


def test_destination_disabled_half_way_through_a_wave_gets_no_more_moves():
    clock, nova, ex = make(on_failure='continue')
    nova.add('a', 'c1')
    nova.add('b', 'c3')
    orig = nova.live_migrate

    def live(uid, host=None):
        orig(uid, host)
        nova.services['c2']['status'] = 'disabled'  # an operator disables c2 meanwhile
    nova.live_migrate = live
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c3', 'c2')])
    assert moves[0].result == 'moved'
    assert moves[1].result == 'skipped' and 'destination c2 is disabled' in moves[1].error


def test_finished_migration_with_a_busy_instance_is_not_aborted():
    clock, nova, ex = make(timeout=5, abort_timeout=5)
    nova.add('a', 'c1', behaviour='fail')
    orig_advance = nova._advance

    def advance():
        orig_advance()
        srv = nova.servers['a']
        if nova.migs['a'][-1]['status'] == 'failed':
            srv['task_state'] = 'migrating'  # Nova still rolling back, for ever
    nova._advance = advance
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'failed'
    assert 'ended failed but after 10s the instance is still ACTIVE (task_state migrating)' in m.error
    assert not [c for c in nova.calls if c[0] == 'abort']


@pytest.mark.parametrize('change, reason', [
    (lambda srv: srv.update(locked=True), 'drift: instance is locked'),
    (lambda srv: srv.update(metadata={'leveller:pin': 'true'}), 'drift: instance is pinned by metadata leveller:pin'),
    (lambda srv: srv.update(tags=['leveller-pin']), 'drift: instance is pinned by tag leveller-pin'),
])
def test_a_lock_or_pin_added_after_planning_wins_at_execution(change, reason):
    clock, nova, ex = make()
    nova.add('a', 'c1')
    change(nova.servers['a'])
    m = ex.run([Move('a', 'c1', 'c2')])[0]
    assert m.result == 'skipped' and m.error == reason
    assert nova.calls == []


def test_a_pinned_instance_on_a_dead_host_is_still_evacuated():
    clock, nova, ex = make()
    nova.add('a', 'c1')
    nova.servers['a'].update(locked=True, tags=['leveller-pin'])
    nova.services['c1'].update(state='down', forced_down=True)
    m = ex.run([Move('a', 'c1', 'c2', kind='evacuate')])[0]
    assert m.result == 'evacuated'


def test_pre_check_reads_are_retried_with_backoff_but_not_on_4xx():
    from ansible_collections.cloudops.leveller.plugins.module_utils._nova import NovaError
    clock, nova, ex = make()
    nova.add('a', 'c1')
    nova.add('b', 'c1')
    real = nova.get_server
    errors = {'a': [NovaError('GET /servers/a returned HTTP 503', status=503), Exception('read timed out')],
              'b': [NovaError('GET /servers/b returned HTTP 403: policy', status=403)]}

    def get_server(uid):
        if errors.get(uid):
            raise errors[uid].pop(0)
        return real(uid)
    nova.get_server = get_server
    t0 = clock.now
    moves = ex.run([Move('a', 'c1', 'c2'), Move('b', 'c1', 'c3', wave=2)])
    assert moves[0].result == 'moved' and errors['a'] == []
    assert clock.now - t0 >= 1.0 + 2.0  # two waits, doubling
    assert moves[1].result == 'failed' and 'HTTP 403' in moves[1].error
    assert not [c for c in nova.calls if c[1] == 'b']


def test_the_fencing_recheck_stops_further_evacuations():
    clock, nova, ex = make(on_failure='continue')
    for uid in ('a', 'b', 'c'):
        nova.add(uid, 'c1')
    nova.services['c1'].update(state='down', forced_down=True)
    answers = [None, 'the BMC of c1 reads on: the host has power again']
    asked = []

    def recheck(host):
        asked.append(host)
        return answers.pop(0) if answers else 'never asked'
    ex.recheck = recheck
    moves = ex.run([Move(u, 'c1', None, kind='evacuate', wave=i + 1) for i, u in enumerate('abc')])
    assert [m.result for m in moves] == ['evacuated', 'skipped', 'skipped']
    assert moves[1].error == 'not started: the BMC of c1 reads on: the host has power again'
    assert asked == ['c1', 'c1'] and ex.recheck_refusal.startswith('the BMC of c1 reads on')
    assert [c[1] for c in nova.calls if c[0] == 'evacuate'] == ['a']
