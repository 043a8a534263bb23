# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports, progress logs and locks name a cloud's instances: 0600 in 0700, never through a symlink."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._lock import CloudLock
from ansible_collections.cloudops.leveller.plugins.module_utils._report import (
    UnsafePath, open_private, prepare_private_file, private_dir)
from ansible_collections.cloudops.leveller.plugins.modules import evacuate_host as evacuate_mod
from ansible_collections.cloudops.leveller.plugins.modules import live_migrate as live_mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import moving_module_runner


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


@pytest.fixture(autouse=True)
def loose_umask():
    old = os.umask(0o022)  # what most operators have: new files 0644 unless asked otherwise
    yield
    os.umask(old)


def test_private_dir_is_created_owner_only(tmp_path):
    path = tmp_path / 'reports' / 'run'
    assert private_dir(str(path)) == str(path)
    assert mode(path) == 0o700
    private_dir(str(path))  # an existing folder is fine


def test_private_dir_refuses_a_symlink_and_names_path_and_fix(tmp_path):
    (tmp_path / 'real').mkdir()
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'link'))
    with pytest.raises(UnsafePath) as err:
        private_dir(str(tmp_path / 'link'))
    assert str(tmp_path / 'link') in str(err.value) and 'is a symlink' in str(err.value)
    assert 'point the option at the real folder' in str(err.value)


def test_open_private_creates_0600_and_narrows_an_existing_file(tmp_path):
    new = tmp_path / 'logs' / 'progress.log'
    os.close(open_private(str(new)))
    assert mode(new) == 0o600 and mode(tmp_path / 'logs') == 0o700
    old = tmp_path / 'old.log'
    old.write_text(u'line\n')
    os.chmod(str(old), 0o644)
    fd = open_private(str(old))
    os.write(fd, b'more\n')
    os.close(fd)
    assert mode(old) == 0o600 and old.read_text() == u'line\nmore\n'


def test_open_private_refuses_a_symlinked_file_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / 'elsewhere'
    target.write_text(u'keep')
    os.chmod(str(target), 0o644)
    os.symlink(str(target), str(tmp_path / 'progress.log'))
    with pytest.raises(UnsafePath) as err:
        open_private(str(tmp_path / 'progress.log'))
    assert str(tmp_path / 'progress.log') in str(err.value) and 'remove the link' in str(err.value)
    assert target.read_text() == u'keep' and mode(target) == 0o644


def test_open_private_refuses_a_file_in_a_symlinked_folder(tmp_path):
    (tmp_path / 'real').mkdir()
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'link'))
    with pytest.raises(UnsafePath):
        open_private(str(tmp_path / 'link' / 'progress.log'))
    assert os.listdir(str(tmp_path / 'real')) == []


def test_prepare_private_file_without_a_path_does_nothing():
    prepare_private_file(None)
    prepare_private_file('')


def test_lock_file_is_0600_in_a_0700_folder(tmp_path):
    lock = CloudLock('k', lock_dir=str(tmp_path / 'locks')).acquire()
    try:
        assert mode(lock.path) == 0o600 and mode(tmp_path / 'locks') == 0o700
    finally:
        lock.release()


def test_lock_refuses_a_symlinked_folder_or_file(tmp_path):
    (tmp_path / 'real').mkdir()
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'locks'))
    with pytest.raises(UnsafePath):
        CloudLock('k', lock_dir=str(tmp_path / 'locks')).acquire()
    (tmp_path / 'own').mkdir()
    os.symlink(str(tmp_path / 'elsewhere'), str(tmp_path / 'own' / 'cloud-k.lock'))
    with pytest.raises(UnsafePath):
        CloudLock('k', lock_dir=str(tmp_path / 'own')).acquire()
    assert not (tmp_path / 'elsewhere').exists()


def test_live_migrate_writes_its_progress_log_0600(monkeypatch, tmp_path):
    env = moving_module_runner(monkeypatch, tmp_path, live_mod)
    env.nova.add('u1', 'c1', name='web-1')
    log = tmp_path / 'reports' / 'progress.log'
    out = env({'instance': 'web-1', 'destination': 'c2', 'progress_log': str(log)})
    assert not out.failed, out.result['msg']
    assert mode(log) == 0o600 and mode(tmp_path / 'reports') == 0o700 and 'web-1' in log.read_text()


@pytest.mark.parametrize('mod, args', [
    (live_mod, {'instance': 'web-1', 'destination': 'c2'}),
    (evacuate_mod, {'host': 'c1', 'wait_sleep': 1}),
])
def test_moving_modules_refuse_a_symlinked_progress_log_folder_before_any_move(monkeypatch, tmp_path, mod, args):
    env = moving_module_runner(monkeypatch, tmp_path, mod)
    env.nova.add('u1', 'c1', name='web-1')
    (tmp_path / 'real').mkdir()
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'reports'))
    out = env(dict(args, progress_log=str(tmp_path / 'reports' / 'progress.log')))
    assert out.failed and out.result['failure'] == 'configuration'
    assert 'progress_log' in out.result['msg'] and str(tmp_path / 'reports') in out.result['msg']
    assert env.nova.servers['u1']['host'] == 'c1'
    assert os.listdir(str(tmp_path / 'real')) == []


@pytest.mark.parametrize('mod, args', [
    (live_mod, {'instance': 'web-1', 'destination': 'c2'}),
    (evacuate_mod, {'host': 'c1', 'wait_sleep': 1}),
])
def test_moving_modules_refuse_a_symlinked_lock_dir_before_any_move(monkeypatch, tmp_path, mod, args):
    env = moving_module_runner(monkeypatch, tmp_path, mod)
    env.nova.add('u1', 'c1', name='web-1')
    (tmp_path / 'real').mkdir()
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'locks'))
    out = env(dict(args, lock_dir=str(tmp_path / 'locks')))
    assert out.failed and out.result['failure'] == 'configuration'
    assert 'lock_dir' in out.result['msg'] and 'is a symlink' in out.result['msg']
    assert env.nova.servers['u1']['host'] == 'c1'
