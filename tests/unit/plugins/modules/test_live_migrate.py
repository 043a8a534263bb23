# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module's contract: bad input fails before any move, result accounting, check mode, lock."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._lock import CloudLock
from ansible_collections.cloudops.leveller.plugins.modules import live_migrate as mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import moving_module_runner


@pytest.fixture
def env(monkeypatch, tmp_path):
    return moving_module_runner(monkeypatch, tmp_path, mod)


def test_moves_one_instance_by_name(env):
    env.nova.add('u1', 'c1', name='web-1')
    out = env({'instance': 'web-1', 'destination': 'c2'})
    assert not out.failed and out.result['changed']
    assert out.result['moves'][0]['result'] == 'moved'
    assert out.result['totals']['moved'] == 1
    assert out.result['lock']['path'].startswith(env.lock_dir)
    assert env.nova.servers['u1']['host'] == 'c2'


@pytest.mark.parametrize('args, words', [
    ({'instance': 'nope', 'destination': 'c2'}, "unknown instance 'nope'"),
    ({'instance': 'web-1', 'destination': 'c99'}, 'unknown host(s) c99'),
    ({'plan': {'version': 1, 'moves': [{'instance': 'u1'}]}}, 'plan.moves[0].source: required field is missing'),
    ({'plan': {'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2'}]}},
     'plan.version: required field is missing'),
    ({'plan': {'version': 1, 'moves': [{'instance': 'u1', 'source': 'c1', 'dest': 'c2'}]}},
     'plan.moves[0].destination: required field is missing'),
    ({'plan': {'version': 1, 'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2', 'dest': 'c2'}]}},
     'plan.moves[0].dest: unknown key; known: instance, name, source, destination'),
    ({'plan': {'version': 1, 'moves': [{'instance': 'u1', 'source': 'c1', 'destination': ''}]}},
     "plan.moves[0].destination: expected a non-empty string, got ''"),
    ({'plan': {'version': 1, 'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'cX'}]}},
     'unknown host(s) cX'),
])
def test_bad_input_fails_before_any_move(env, args, words):
    env.nova.add('u1', 'c1', name='web-1')
    out = env(args)
    assert out.failed and words in out.result['msg']
    assert env.nova.calls == []


def test_ambiguous_name_is_refused(env):
    env.nova.add('u1', 'c1', name='web')
    env.nova.add('u2', 'c2', name='web')
    out = env({'instance': 'web'})
    assert out.failed and 'ambiguous' in out.result['msg'] and 'u1' in out.result['msg']


def test_a_failed_move_fails_the_task_with_the_whole_result(env):
    env.nova.add('u1', 'c1', behaviour='fail')
    out = env({'instance': 'u1', 'destination': 'c2'})
    assert out.failed
    assert out.result['moves'][0]['result'] == 'failed'
    assert out.result['changed'] is False
    assert out.result['failure'] == 'inconsistent'


def test_check_mode_reports_changed_without_calls(env):
    env.nova.add('u1', 'c1')
    out = env({'instance': 'u1', 'destination': 'c2', '_ansible_check_mode': True, '_ansible_diff': True})
    assert not out.failed and out.result['changed']
    assert out.result['moves'][0]['result'] == 'would move'
    assert out.result['lock'] is None
    assert out.result['diff']['after']['hosts']['vm-u1 (u1)'] == 'c2'
    assert env.nova.calls == []


def test_busy_lock_fails_before_any_move(env):
    env.nova.add('u1', 'c1')
    holder = CloudLock('unit', lock_dir=env.lock_dir, purpose='another run').acquire()
    try:
        out = env({'instance': 'u1', 'destination': 'c2'})
    finally:
        holder.release()
    assert out.failed and 'another run is moving instances' in out.result['msg']
    assert env.nova.calls == []


def test_empty_plan_changes_nothing_and_takes_no_lock(env):
    out = env({'plan': {'version': 1, 'moves': []}})
    assert not out.failed and not out.result['changed']
    assert out.result['totals']['total'] == 0 and out.result['lock'] is None


def test_a_run_journals_its_moves_and_resume_of_a_finished_run_moves_nothing(env):
    import json
    env.nova.add('u1', 'c1', name='web-1')
    out = env({'instance': 'web-1', 'destination': 'c2'})
    assert not out.failed and out.result['journal'].startswith(env.journal_dir)
    with open(out.result['journal']) as f:
        events = [json.loads(line)['event'] for line in f]
    assert events == ['run', 'intent', 'answer', 'end', 'closed']
    again = env({'resume': out.result['journal']})
    assert not again.failed and again.result['totals']['total'] == 0
    assert again.result['resumed']['ended_before'] == 1 and again.result['resumed']['pending'] == 0
    assert [c for c in env.nova.calls if c[0] == 'live'] == [('live', 'u1', 'c2')]


@pytest.mark.parametrize('args, words', [
    ({'resume': '/nonexistent/run.jsonl'}, 'cannot be read'),
    ({'resume': '/tmp'}, 'is a folder'),
    ({'resume': '/x.jsonl', 'instance': 'web-1'}, 'mutually exclusive'),
    ({'instance': 'web-1', 'max_plan_age': -1}, 'max_plan_age must not be negative'),
    ({'plan': {'version': 1, 'snapshot_taken_at': '2020-01-01T00:00:00Z',
               'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2'}]}},
     'older than max_plan_age (3600 s)'),
    ({'plan': {'version': 1, 'snapshot_taken_at': 'yesterday',
               'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2'}]}},
     'plan.snapshot_taken_at'),
    ({'require_digest': True, 'plan': {'version': 1, 'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2'}]}},
     'require_digest: the live cloud no longer matches the plan'),
])
def test_bad_resume_and_stale_plans_fail_before_any_move(env, args, words):
    env.nova.add('u1', 'c1', name='web-1')
    out = env(args)
    assert out.failed and words in out.result['msg'], out.result['msg']
    assert env.nova.calls == []


def test_an_old_plan_runs_with_max_plan_age_0(env):
    env.nova.add('u1', 'c1', name='web-1')
    out = env({'max_plan_age': 0, 'plan': {'version': 1, 'snapshot_taken_at': '2020-01-01T00:00:00Z',
                                           'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2'}]}})
    assert not out.failed and out.result['totals']['moved'] == 1
    assert out.result['plan_check']['age_seconds'] > 10 ** 7 and out.result['plan_check']['digest_match'] is None
