# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One mover per cloud: an exclusive lock taken before any migration starts.

The lock is an ``fcntl.flock`` on a file on the machine that runs the module (the Ansible
controller when the modules run on ``localhost``, as they should). The file name is a
digest of the cloud's Keystone ``auth_url``, region and project, so two runs against the
same cloud from the same machine exclude each other, whatever playbooks, inventories or
``clouds.yaml`` entry names they use.

Why flock: the kernel drops the lock when the process that holds it ends, however it ends
(failure, ``kill -9``, a crashed controller). A lock can therefore never go stale: the file
stays, but a stale file is not a held lock. The file's content (pid, host, start time,
purpose) only serves to tell the waiting run who holds the lock.

Limit: runs from *different* machines against the same cloud are not excluded; use one
controller (or one AWX instance group) per cloud for moving runs.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import hashlib
import json
import os
import socket
import time

from ansible_collections.cloudops.leveller.plugins.module_utils._report import (
    UnsafePath, open_private, prepare_private_file, private_dir)

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not on POSIX
    HAS_FCNTL = False


class LockBusy(Exception):
    """The cloud is locked by another run; ``holder`` describes it (a dict, may be empty)."""

    def __init__(self, message, holder=None):
        super(LockBusy, self).__init__(message)
        self.holder = holder or {}


def default_lock_dir():
    """Where lock files live unless the module's ``lock_dir`` says otherwise."""
    base = os.environ.get('XDG_RUNTIME_DIR') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'cloudops-leveller', 'locks')


def run_paths_problem(params):
    """What is wrong with the files a moving run writes, checked before anything changes.

    Creates ``progress_log`` mode 0600 (its folder 0700 if missing); refuses a progress log or
    a lock folder that is a symlink. Returns a message naming the option, or None.
    """
    try:
        prepare_private_file(params.get('progress_log'))
    except (UnsafePath, OSError) as exc:
        return 'progress_log: %s' % exc
    lock_dir = params.get('lock_dir') or default_lock_dir()
    if params.get('lock', True) and os.path.lexists(lock_dir):
        try:
            private_dir(lock_dir, create=False)
        except UnsafePath as exc:
            return 'lock_dir: %s' % exc
    return None


def cloud_key(auth_url, region=None, project=None):
    """A stable key for a cloud: digest of auth_url (normalised), region and project."""
    url = (auth_url or '').strip().rstrip('/').lower()
    raw = '%s|%s|%s' % (url, region or '', project or '')
    return hashlib.sha256(raw.encode('utf-8')).hexdigest()[:24]


def cloud_key_for(conn):
    """The :func:`cloud_key` of an openstacksdk Connection."""
    auth = conn.config.get_auth_args() if hasattr(conn, 'config') else {}
    try:
        project = conn.current_project_id
    except Exception:  # not every auth plugin knows its project
        project = auth.get('project_id') or auth.get('project_name')
    region = getattr(conn.config, 'region_name', None) if hasattr(conn, 'config') else None
    return cloud_key(auth.get('auth_url'), region, project)


def lock_for_run(conn, params, check_mode, count, purpose):
    """The lock a moving run takes: a CloudLock, or a NoLock when the run changes nothing.

    ``conn`` is an openstacksdk Connection or the lock key itself (a string: plain libvirt hosts,
    ``_platform.Platform.lock_key``). ``params`` holds the module options ``lock``, ``lock_dir``
    and ``lock_timeout``; no lock is taken in check mode, with ``lock=false`` or when there are
    no moves (``count``).
    """
    if check_mode or not params['lock'] or not count:
        return NoLock()
    key = conn if isinstance(conn, str) else cloud_key_for(conn)
    return CloudLock(key, lock_dir=params['lock_dir'], timeout=params['lock_timeout'], purpose=purpose)


class CloudLock(object):
    """Context manager holding the lock for one cloud; ``timeout`` seconds to wait (0: don't)."""

    def __init__(self, key, lock_dir=None, timeout=0, purpose='', poll=0.5, clock=None, sleep=None):
        self.key = key
        self.lock_dir = lock_dir or default_lock_dir()
        self.path = os.path.join(self.lock_dir, 'cloud-%s.lock' % key)
        self.timeout = timeout
        self.purpose = purpose
        self.poll = poll
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self._fd = None
        self.waited = 0.0

    def holder(self):
        """What the lock file says about its last holder (may be a run that has ended)."""
        try:
            with open(self.path) as f:
                return json.loads(f.read() or '{}')
        except (IOError, OSError, ValueError):
            return {}

    def acquire(self):
        if not HAS_FCNTL:
            raise LockBusy('cannot lock: fcntl is not available on this platform (run the module on a '
                           'POSIX controller, or set lock=false at your own risk)')
        # 0600 in a 0700 folder, neither a symlink: the holder's purpose names the run.
        fd = open_private(self.path, os.O_RDWR)
        start = self.clock()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if self.clock() - start >= self.timeout:
                    os.close(fd)
                    holder = self.holder()
                    raise LockBusy(
                        'another run is moving instances on this cloud (lock %s held by pid %s on %s '
                        'since %s: %s); waited %ss (lock_timeout). Wait for it to finish, or raise '
                        'lock_timeout' % (self.path, holder.get('pid', '?'), holder.get('host', '?'),
                                          holder.get('since', '?'), holder.get('purpose', '?'),
                                          self.timeout), holder)
                self.sleep(self.poll)
        self.waited = self.clock() - start
        # Record who holds it; the lock itself is the flock, not this text.
        info = json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                           'since': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                           'purpose': self.purpose})
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, info.encode('utf-8'))
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


class NoLock(object):
    """Stands in for CloudLock when locking is off or nothing will change (check mode)."""

    path = None
    waited = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False
