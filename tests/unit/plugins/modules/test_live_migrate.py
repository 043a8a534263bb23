# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module's contract: bad input fails before any move, result accounting, check mode, lock."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cloudops.leveller.plugins.module_utils import _lock as lock_mod
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import CloudLock
from ansible_collections.cloudops.leveller.plugins.modules import live_migrate as mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import FakeNova


class Exit(SystemExit):  # exit_json/fail_json end the module with SystemExit
    def __init__(self, result, failed):
        super(Exit, self).__init__(result)
        self.result, self.failed = result, failed


@pytest.fixture
def env(monkeypatch, tmp_path):
    nova = FakeNova(time.monotonic, duration=0.05)

    def exit_json(self, **kw):
        raise Exit(kw, False)

    def fail_json(self, **kw):
        raise Exit(kw, True)

    monkeypatch.setattr(mod, 'connect', lambda module: object())
    monkeypatch.setattr(mod, 'Nova', lambda conn: nova)
    monkeypatch.setattr(lock_mod, 'cloud_key_for', lambda conn: 'unit')
    monkeypatch.setattr(mod.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(mod.AnsibleModule, 'fail_json', fail_json)

    def run(args):
        args = dict(args, poll_interval=0.01, lock_dir=str(tmp_path))
        with patch_module_args(args):
            with pytest.raises(Exit) as exc:
                mod.main()
        return exc.value
    run.nova = nova
    run.lock_dir = str(tmp_path)
    return run


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
    ({'plan': {'moves': [{'instance': 'u1'}]}}, 'no "source"'),
    ({'plan': {'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'cX'}]}}, 'unknown host(s) cX'),
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
