# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run journal and resume: a run killed at any point is finished by a later run, no move twice."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils import _journal as journal_mod
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    Executor, Move, moves_from_journal, open_journal, plan_freshness, resume_view, run_locked)
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import NoLock
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import (
    FakeClock, FakeNova)


class Killed(BaseException):
    """Stands for SIGKILL: the run stops at once, nothing after it runs."""


class _Log(object):
    def write(self, line):
        pass

    def close(self):
        pass


def _records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _executor(nova, clock, journal, kill_after_sleeps=None, **kw):
    sleeps = [0]

    def sleep(seconds):
        sleeps[0] += 1
        if kill_after_sleeps is not None and sleeps[0] > kill_after_sleeps:
            raise Killed()
        clock.sleep(seconds)
    kw.setdefault('poll_interval', 1.0)
    kw.setdefault('timeout', 60)
    return Executor(nova, clock=clock, sleep=sleep, journal=journal, **kw)


def _run(ex, moves):
    return run_locked(ex, moves, NoLock(), _Log(), 'unit')


def test_journal_records_every_step_in_order_and_is_private(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.add('a', 'c1')
    nova.add('b', 'c2')
    journal = open_journal({'journal_dir': str(tmp_path / 'j')}, False, [1], 'live_migrate')
    ex = _executor(nova, clock, journal)
    totals = _run(ex, [Move('a', 'c1', 'c3'), Move('b', 'c2', 'c4')])
    assert totals['moved'] == 2
    recs = _records(journal.path)
    assert [r['event'] for r in recs] == ['run', 'intent', 'answer', 'end', 'intent', 'answer', 'end', 'closed']
    assert recs[0]['moves'][0] == {'instance': 'a', 'name': None, 'kind': 'live', 'wave': 1, 'source': 'c1',
                                   'destination': 'c3'}
    assert recs[1]['instance'] == 'a' and recs[1]['status_before'] == 'ACTIVE' and recs[1]['power_before'] == 1
    assert recs[1]['known_migrations'] == [m['id'] for m in nova.migs['a'][:1]]
    assert recs[2]['answer'] == 'accepted'
    assert recs[3]['result'] == 'moved' and recs[3]['host_after'] == 'c3'
    assert recs[-1]['totals']['moved'] == 2
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / 'j')).st_mode) == 0o700
    rec = journal_mod.read(journal.path)
    assert rec.closed and rec.pending() == [] and not rec.started('a')


def test_the_intent_is_on_disk_before_the_start_call(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.add('a', 'c1')
    journal = open_journal({'journal_dir': str(tmp_path)}, False, [1], 'unit')
    seen = []
    original = nova.live_migrate

    def live_migrate(uid, host=None):
        seen.append([r['event'] for r in _records(journal.path)])
        return original(uid, host)
    nova.live_migrate = live_migrate
    _run(_executor(nova, clock, journal), [Move('a', 'c1', 'c2')])
    assert seen == [['run', 'intent']]


def test_killed_mid_migration_then_resume_tracks_it_without_a_second_start(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock, duration=5.0)
    for uid, host in (('a', 'c1'), ('b', 'c2'), ('c', 'c1')):
        nova.add(uid, host)
    moves = [Move('a', 'c1', 'c3'), Move('b', 'c2', 'c4'), Move('c', 'c1', 'c4', wave=2)]
    journal = open_journal({'journal_dir': str(tmp_path)}, False, moves, 'unit')
    ex = _executor(nova, clock, journal, kill_after_sleeps=2, max_parallel=2)
    with pytest.raises(Killed):
        _run(ex, moves)
    starts = [c for c in nova.calls if c[0] == 'live']
    assert [c[1] for c in starts] == ['a', 'b']  # both in flight when the run was killed
    rec = journal_mod.read(journal.path)
    assert not rec.closed and rec.started('a') and rec.started('b') and not rec.started('c')
    resumed = moves_from_journal(rec)
    assert [(m.instance, m._adopt is not None) for m in resumed] == [('a', True), ('b', True), ('c', False)]
    journal2 = open_journal({}, False, resumed, 'unit', recorded=rec)
    assert journal2.path == journal.path
    ex2 = _executor(nova, clock, journal2, max_parallel=2)
    totals = _run(ex2, resumed)
    assert totals['moved'] == 3, [m.as_dict() for m in resumed]
    # a and b were started once, by the killed run; c once, by the resume
    assert sorted(c[1] for c in nova.calls if c[0] == 'live') == ['a', 'b', 'c']
    assert 'tracked to its end' in resumed[0].note and resumed[0].migration_id is not None
    view = resume_view(rec, resumed)
    assert view['begun_before'] == 2 and view['adopted'] == 2 and view['pending'] == 3 and view['ended_before'] == 0
    assert resumed[2]._adopt is None and resumed[2].note is None  # never begun: an ordinary move
    assert dict((u, nova.servers[u]['host']) for u in 'abc') == {'a': 'c3', 'b': 'c4', 'c': 'c4'}
    events = [r['event'] for r in _records(journal.path)]
    assert events.count('resume') == 1 and events.count('adopt') == 2 and events[-1] == 'closed'
    again = journal_mod.read(journal.path)
    assert again.closed and again.pending() == []


def _killed_before_the_call(tmp_path):
    """A run of one live move a -> c2, killed after its intent is on disk, before the start call."""
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.add('a', 'c1')
    moves = [Move('a', 'c1', 'c2')]
    journal = open_journal({'journal_dir': str(tmp_path)}, False, moves, 'unit')

    def killed(uid, host=None):
        raise Killed()
    original, nova.live_migrate = nova.live_migrate, killed
    with pytest.raises(Killed):
        _run(_executor(nova, clock, journal), moves)
    nova.live_migrate = original
    return clock, nova, journal_mod.read(journal.path)


def test_killed_after_the_intent_before_the_call_starts_it_once_on_resume(tmp_path):
    clock, nova, rec = _killed_before_the_call(tmp_path)
    assert rec.started('a')  # the intent is there: the call may have been sent
    resumed = moves_from_journal(rec)
    _run(_executor(nova, clock, open_journal({}, False, resumed, 'unit', recorded=rec)), resumed)
    # Read back: no migration, no task state, still on c1: nothing began, so it is carried out now.
    assert resumed[0].result == 'moved' and [c[1] for c in nova.calls if c[0] == 'live'] == ['a']
    assert resumed[0].begun_before and not resumed[0].adopted


def test_evacuation_killed_before_the_start_is_started_by_resume(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.mv95 = True
    nova.add('a', 'c1')
    nova.services['c1'].update(state='down', forced_down=True)
    moves = [Move('a', 'c1', None, kind='evacuate')]
    journal = open_journal({'journal_dir': str(tmp_path)}, False, moves, 'unit')

    def killed(uid):
        raise Killed()
    original, nova.start = nova.start, killed
    with pytest.raises(Killed):
        _run(_executor(nova, clock, journal), moves)
    nova.start = original
    assert nova.servers['a']['status'] == 'SHUTOFF' and nova.servers['a']['host'] != 'c1'
    rec = journal_mod.read(journal.path)
    resumed = moves_from_journal(rec)
    assert resumed[0]._adopt['status_before'] == 'ACTIVE'
    _run(_executor(nova, clock, open_journal({}, False, resumed, 'unit', recorded=rec)), resumed)
    assert resumed[0].result == 'evacuated', resumed[0].as_dict()
    assert nova.servers['a']['status'] == 'ACTIVE'
    assert [c[0] for c in nova.calls].count('evacuate') == 1 and [c[0] for c in nova.calls].count('start') == 1


def test_a_move_that_ended_is_not_touched_by_resume(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.add('a', 'c1')
    nova.add('b', 'c2', behaviour='refuse')
    moves = [Move('a', 'c1', 'c3'), Move('b', 'c2', 'c3')]
    journal = open_journal({'journal_dir': str(tmp_path)}, False, moves, 'unit')
    _run(_executor(nova, clock, journal, on_failure='continue'), moves)
    rec = journal_mod.read(journal.path)
    assert moves_from_journal(rec) == [] and rec.ends['b']['result'] == 'failed'


def test_a_torn_last_line_is_ignored_and_reported(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.add('a', 'c1')
    moves = [Move('a', 'c1', 'c2')]
    journal = open_journal({'journal_dir': str(tmp_path)}, False, moves, 'unit')
    _run(_executor(nova, clock, journal), moves)
    with open(journal.path, 'a') as f:
        f.write('{"v": 1, "event": "int')
    rec = journal_mod.read(journal.path)
    assert rec.torn_line == 6 and rec.closed


@pytest.mark.parametrize('content, words', [
    ('not json\n', 'line 1 is not JSON'),
    ('{"v": 2, "event": "run"}\n', 'not a version 1 journal record'),
    ('{"v": 1, "event": "intent", "instance": "a"}\n', 'before the run record'),
    ('', 'has no run record'),
    ('{"v": 1, "event": "run", "run": "r1", "moves": [{"instance": "a", "source": "c1", "kind": "teleport"}]}\n',
     'kind (live, cold or evacuate)'),
    ('{"v": 1, "event": "run", "run": "r1", "moves": []}\n{"v": 1, "event": "end", "instance": "zz"}\n',
     "not one of the run's moves"),
])
def test_bad_journals_are_refused_naming_the_line(tmp_path, content, words):
    path = tmp_path / 'j.jsonl'
    path.write_text(content)
    with pytest.raises(journal_mod.JournalError) as exc:
        journal_mod.read(str(path))
    assert words in str(exc.value) and str(path) in str(exc.value)


def test_a_folder_or_missing_file_is_refused(tmp_path):
    with pytest.raises(journal_mod.JournalError, match='is a folder'):
        journal_mod.read(str(tmp_path))
    with pytest.raises(journal_mod.JournalError, match='cannot be read'):
        journal_mod.read(str(tmp_path / 'missing.jsonl'))


def test_a_journal_that_cannot_be_written_stops_new_moves(tmp_path):
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.add('a', 'c1')
    nova.add('b', 'c2')
    moves = [Move('a', 'c1', 'c3'), Move('b', 'c2', 'c4', wave=2)]
    journal = open_journal({'journal_dir': str(tmp_path)}, False, moves, 'unit')
    real_write = journal.write

    def write(event, **fields):
        if event == 'intent' and fields['instance'] == 'b':
            raise OSError(28, 'No space left on device')
        real_write(event, **fields)
    journal.write = write
    ex = _executor(nova, clock, journal)
    _run(ex, moves)
    assert moves[0].result == 'moved'
    assert moves[1].result == 'skipped' and 'journal could not be written' in moves[1].error
    assert ('live', 'b', 'c4') not in nova.calls and ex.journal_error


def test_check_mode_and_empty_runs_write_no_journal(tmp_path):
    assert open_journal({'journal_dir': str(tmp_path)}, True, [1], 'unit').path is None
    assert open_journal({'journal_dir': str(tmp_path)}, False, [], 'unit').path is None
    assert os.listdir(str(tmp_path)) == []


def test_a_journal_with_no_record_is_removed(tmp_path):
    journal = open_journal({'journal_dir': str(tmp_path)}, False, [1], 'unit')
    path = journal.path
    journal.close()
    assert not os.path.exists(path) and journal.path is None


def test_plan_freshness_age_and_digest():
    plan = {'snapshot_taken_at': '2026-12-06T10:00:00Z', 'snapshot_digest': 'sha256:' + 'a' * 64,
            'snapshot_hosts': ['c1', 'c2']}
    now = 1796551200.0 + 30  # 2026-12-06T10:00:30Z
    view, problem = plan_freshness(plan, 3600, now=now, current_digest=lambda hosts: 'sha256:' + 'a' * 64)
    assert problem is None and view['age_seconds'] == 30.0 and view['digest_match'] is True
    view, problem = plan_freshness(plan, 10, now=now, current_digest=lambda hosts: 'x')
    assert 'older than max_plan_age (10 s)' in problem
    view, problem = plan_freshness(plan, 0, now=now + 10 ** 6, current_digest=lambda hosts: 'sha256:' + 'b' * 64)
    assert problem is None and view['digest_match'] is False

    def broken(hosts):
        raise RuntimeError('nova down')
    view, problem = plan_freshness(plan, 0, now=now, current_digest=broken)
    assert view['digest_match'] is None and 'nova down' in view['digest_note']
    view, problem = plan_freshness({'moves': []}, 3600, now=now, current_digest=broken)
    assert problem is None and view['age_seconds'] is None and 'no snapshot_digest' in view['digest_note']


def test_resume_that_cannot_read_the_migrations_never_starts_the_move_again(tmp_path):
    clock, nova, rec = _killed_before_the_call(tmp_path)
    resumed = moves_from_journal(rec)
    real = nova.migrations
    calls = []

    def migrations(uid, migration_type=None):
        calls.append(uid)
        if len(calls) == 1:
            raise RuntimeError('GET /os-migrations timed out')
        return real(uid, migration_type)
    nova.migrations = migrations
    _run(_executor(nova, clock, open_journal({}, False, resumed, 'unit', recorded=rec)), resumed)
    # Whether it began is unknown: it is tracked (and found never to have begun), not started again.
    assert [c for c in nova.calls if c[0] == 'live'] == []
    assert resumed[0].adopted and resumed[0].result == 'failed'
    assert 'no live migration record appeared' in resumed[0].error
