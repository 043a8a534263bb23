# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-cloud lock: exclusion, release on failure, holder reporting, no stale locks."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._lock import (
    CloudLock, LockBusy, cloud_key)
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import FakeClock


def test_cloud_key_ignores_trailing_slash_and_case_but_not_project():
    a = cloud_key('https://Keystone.example:5000/v3/', 'RegionOne', 'p1')
    assert a == cloud_key('https://keystone.example:5000/v3', 'RegionOne', 'p1')
    assert a != cloud_key('https://keystone.example:5000/v3', 'RegionOne', 'p2')
    assert a != cloud_key('https://keystone.example:5000/v3', 'RegionTwo', 'p1')


def test_second_holder_is_refused_and_told_who_holds_it(tmp_path):
    first = CloudLock('k', lock_dir=str(tmp_path), purpose='plan of 3 moves').acquire()
    try:
        with pytest.raises(LockBusy) as err:
            CloudLock('k', lock_dir=str(tmp_path)).acquire()
        assert 'pid %d' % os.getpid() in str(err.value)
        assert 'plan of 3 moves' in str(err.value)
        assert err.value.holder['pid'] == os.getpid()
        # another cloud is independent
        CloudLock('other', lock_dir=str(tmp_path)).acquire().release()
    finally:
        first.release()
    CloudLock('k', lock_dir=str(tmp_path)).acquire().release()


def test_lock_is_released_when_the_body_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with CloudLock('k', lock_dir=str(tmp_path)):
            raise RuntimeError('a move failed')
    with CloudLock('k', lock_dir=str(tmp_path)) as lock:
        assert lock.holder()['pid'] == os.getpid()


def test_waiting_gives_up_after_lock_timeout(tmp_path):
    clock = FakeClock()
    holder = CloudLock('k', lock_dir=str(tmp_path)).acquire()
    try:
        waiter = CloudLock('k', lock_dir=str(tmp_path), timeout=5, poll=1, clock=clock, sleep=clock.sleep)
        with pytest.raises(LockBusy) as err:
            waiter.acquire()
        assert clock.now - 1000.0 == 5
        assert 'waited 5s' in str(err.value)
    finally:
        holder.release()


def test_lock_of_a_killed_process_is_not_stale(tmp_path):
    """A holder that dies without releasing leaves a file, not a lock."""
    code = ('import sys, os; sys.path[:0] = %r; '
            'from ansible_collections.cloudops.leveller.plugins.module_utils._lock import CloudLock; '
            'CloudLock("k", lock_dir=%r, purpose="dies").acquire(); os._exit(9)') % (sys.path, str(tmp_path))
    assert subprocess.call([sys.executable, '-c', code]) == 9
    path = os.path.join(str(tmp_path), 'cloud-k.lock')
    assert json.load(open(path))['purpose'] == 'dies'
    with CloudLock('k', lock_dir=str(tmp_path)) as lock:
        assert lock.holder()['pid'] == os.getpid()
