# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugins of live_migrate and evacuate_host: the module's progress lines reach the
job output while it runs, on the controller only.

Ansible's real ``Display`` prints here (the test process is no forked worker, so it writes to
stdout, which ``capsys`` reads); only the task, the connection and the module run are stand-ins.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat
import time
from types import SimpleNamespace

import pytest

from ansible.playbook.play_context import PlayContext

from ansible_collections.cloudops.leveller.plugins.plugin_utils import _progress_stream
from ansible_collections.cloudops.leveller.plugins.action.evacuate_host import ActionModule as EvacuateAction
from ansible_collections.cloudops.leveller.plugins.action.live_migrate import ActionModule as LiveMigrateAction


def task(args, async_val=0, no_log=False, action='cloudops.leveller.live_migrate'):
    return SimpleNamespace(args=dict(args), async_val=async_val, no_log=no_log, check_mode=False,
                           action=action, environment=[])


def connection(transport='local'):
    return SimpleNamespace(transport=transport, has_native_async=False, _shell=SimpleNamespace(tmpdir=None))


class Recorder(object):
    """Stands in for the module run: appends lines to its progress log, waiting for each to be shown."""

    def __init__(self, capsys, lines, shown_within=5.0):
        self.capsys = capsys
        self.lines = lines
        self.shown_within = shown_within
        self.calls = []
        self.out = ''

    def read(self):
        self.out += self.capsys.readouterr().out
        return self.out

    def __call__(self, action, module_args=None, task_vars=None, wrap_async=False, **kwargs):
        args = action._task.args if module_args is None else module_args
        self.calls.append(dict(args=dict(args), wrap_async=wrap_async))
        path = args.get('progress_log')
        self.seen_while_running = []
        if path and self.shown_within:
            self.mode = stat.S_IMODE(os.stat(path).st_mode)
            self.folder_mode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
        for line in self.lines:
            if path:
                with open(path, 'a') as f:
                    f.write('2026-01-01T00:00:00Z %s\n' % line)
            if self.shown_within:
                deadline = time.monotonic() + self.shown_within
                while line not in self.read() and time.monotonic() < deadline:
                    time.sleep(0.02)
                self.seen_while_running.append(line in self.read())
        return {'changed': True, 'msg': 'done', 'invocation': {'module_args': dict(args)}}


def make(cls, recorder, args, transport='local', **task_kw):
    action = cls(task(args, **task_kw), connection(transport), PlayContext(), loader=None, templar=None)
    action._execute_module = lambda **kw: recorder(action, **kw)
    return action


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(_progress_stream, 'POLL_INTERVAL', 0.02)


LINES = ['start: evacuate_host of 2 move(s)', 'wave 1/1: 2 move(s)',
         '[1/2] wave 1 live web-1 (u1) cmp1 -> cmp2: moved in 3.0 s',
         '[2/2] wave 1 live web-2 (u2) cmp1 -> cmp3: moved in 4.0 s', 'end: 2 move(s): 2 moved']


@pytest.mark.parametrize('cls', [LiveMigrateAction, EvacuateAction])
def test_each_line_is_shown_while_the_module_runs_with_the_host_name(cls, capsys, tmp_path):
    log = tmp_path / 'progress.log'
    log.write_text('2025-12-31T00:00:00Z end: an earlier run\n')
    rec = Recorder(capsys, LINES)
    result = make(cls, rec, {'host': 'cmp1', 'progress_log': str(log)}).run(task_vars={'inventory_hostname': 'ctl1'})
    assert rec.seen_while_running == [True] * len(LINES)
    shown = [line for line in rec.read().splitlines() if line]
    assert shown == ['ctl1 | 2026-01-01T00:00:00Z %s' % line for line in LINES]
    assert result['progress_streamed'] is True and result['changed'] is True
    assert rec.calls[0]['args']['progress_log'] == str(log)  # the task's own file, kept
    assert 'earlier run' not in rec.out and log.exists()


def test_without_progress_log_a_private_file_is_used_then_removed(capsys):
    rec = Recorder(capsys, LINES[:3])
    result = make(LiveMigrateAction, rec, {'instance': 'web-1'}).run(task_vars={'inventory_hostname': 'localhost'})
    path = rec.calls[0]['args']['progress_log']
    assert rec.mode == 0o600 and rec.folder_mode == 0o700
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    assert rec.seen_while_running == [True] * 3 and result['progress_streamed'] is True
    assert result['invocation']['module_args']['progress_log'] is None
    assert 'localhost | 2026-01-01T00:00:00Z wave 1/1: 2 move(s)' in rec.out


def test_the_private_file_is_removed_when_the_module_run_raises(capsys):
    rec = Recorder(capsys, [])
    paths = []

    def boom(action, **kw):
        paths.append(kw['module_args']['progress_log'])
        raise KeyboardInterrupt  # a task timeout or a cancelled job
    action = make(LiveMigrateAction, rec, {'instance': 'web-1'})
    action._execute_module = lambda **kw: boom(action, **kw)
    with pytest.raises(KeyboardInterrupt):
        action.run(task_vars={})
    assert paths and not os.path.exists(os.path.dirname(paths[0]))


@pytest.mark.parametrize('transport, task_kw', [
    ('ssh', {}),
    ('local', {'async_val': 600}),
    ('local', {'no_log': True}),
])
def test_remote_async_and_no_log_are_a_plain_module_call(transport, task_kw, capsys, tmp_path):
    rec = Recorder(capsys, LINES, shown_within=0)
    args = {'instance': 'web-1'}
    result = make(LiveMigrateAction, rec, args, transport=transport, **task_kw).run(task_vars={})
    assert rec.calls[0]['args'] == args  # no progress_log added
    assert rec.calls[0]['wrap_async'] == bool(task_kw.get('async_val'))
    assert 'progress_streamed' not in result
    assert capsys.readouterr().out == ''


def test_nothing_written_means_nothing_streamed(capsys, tmp_path):
    rec = Recorder(capsys, [], shown_within=0)
    result = make(EvacuateAction, rec, {'host': 'cmp1', 'state': 'enabled'}).run(task_vars={})
    assert 'progress_streamed' not in result and capsys.readouterr().out == ''
