# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What live_migrate and evacuate_host share: options, their checks, the lock and the locked run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils import _lock as lock_mod
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    execution_argument_spec, execution_params_problem, lock_view, run_locked)
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import CloudLock, LockBusy, NoLock, lock_for_run


def _params(**kw):
    params = dict((name, spec.get('default')) for name, spec in execution_argument_spec().items())
    params.update(timeout=600, max_per_host=1)
    params.update(kw)
    return params


def test_defaults_pass_and_each_bad_value_is_named():
    assert execution_params_problem(_params()) is None
    assert 'max_parallel must be at least 1 (got 0)' == execution_params_problem(_params(max_parallel=0))
    assert 'timeout' in execution_params_problem(_params(timeout=0))
    assert 'poll_interval' in execution_params_problem(_params(poll_interval=0.0))
    assert 'lock_timeout must not be negative' in execution_params_problem(_params(lock_timeout=-1))
    assert 'abort_timeout' in execution_params_problem(_params(abort_timeout=-5))
    # a module may name more options that must be at least 1
    assert 'wait_sleep' in execution_params_problem(_params(wait_sleep=0), ('timeout', 'wait_sleep'))


def test_no_lock_in_check_mode_without_moves_or_when_off(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_mod, 'cloud_key_for', lambda conn: 'unit')
    params = _params(lock_dir=str(tmp_path))
    assert isinstance(lock_for_run(None, params, True, 3, 'x'), NoLock)
    assert isinstance(lock_for_run(None, params, False, 0, 'x'), NoLock)
    assert isinstance(lock_for_run(None, dict(params, lock=False), False, 3, 'x'), NoLock)
    lock = lock_for_run(None, params, False, 3, 'balance')
    assert isinstance(lock, CloudLock)
    assert lock_view(NoLock()) is None


class _Log(object):
    def __init__(self):
        self.lines, self.closed = [], False

    def write(self, line):
        self.lines.append(line)

    def close(self):
        self.closed = True


class _Executor(object):
    stopped_by = None

    def __init__(self):
        self.ran = None

    def run(self, moves):
        self.ran = list(moves)

    def totals(self, moves):
        return {'total': len(moves), 'moved': len(moves) if self.ran is not None else 0}


def test_locked_run_logs_start_and_end_and_holds_the_lock(tmp_path):
    log, executor = _Log(), _Executor()
    lock = CloudLock('k', lock_dir=str(tmp_path), purpose='unit')
    totals = run_locked(executor, ['a', 'b'], lock, log, 'unit run')
    assert totals == {'total': 2, 'moved': 2}
    assert log.lines[0] == 'start: unit run, 2 move(s)'
    assert log.lines[-1].startswith('end: 2 move(s): 2 moved')
    assert log.closed
    view = lock_view(lock)
    assert view['path'] == lock.path and view['waited'] >= 0
    # released: it can be taken again at once
    CloudLock('k', lock_dir=str(tmp_path)).acquire().release()


def test_busy_lock_moves_nothing_and_still_closes_the_log(tmp_path):
    holder = CloudLock('k', lock_dir=str(tmp_path), purpose='other run').acquire()
    try:
        log, executor = _Log(), _Executor()
        with pytest.raises(LockBusy):
            run_locked(executor, ['a'], CloudLock('k', lock_dir=str(tmp_path)), log, 'second run')
        assert executor.ran is None
        assert log.lines == [] and log.closed
    finally:
        holder.release()
