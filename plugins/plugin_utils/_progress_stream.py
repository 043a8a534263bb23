# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress in the job output: the action side of ``live_migrate`` and ``evacuate_host``.

Ansible shows a module's result only when the module returns, and a drain of 40 instances
can take an hour. The modules already append one line per finished move (and a line as each
wave starts) to their progress log (``progress_log``). When the module runs on the controller,
the action plugin of the same name follows that file while the module runs and hands each
new complete line to ``Display().display()``. In a forked worker, ``Display`` sends the line
over the worker's queue to the main process (``Display._final_q``), which prints it at once;
under AWX that print becomes a ``verbose`` job event. So each move shows up as it finishes,
in ``ansible-playbook`` and in AWX alike.

The module itself runs in the worker's main thread (``ActionBase._execute_module``), so the
task's ``timeout`` and the signals of a cancelled job reach it as usual; only the follower is a
(daemon) thread, stopped and drained when the module returns, however it returns.

Only lines the module wrote to the progress log are printed, and only new ones (from the
file's size at the start). On a remote host, with ``async``, or with ``no_log`` the action is a
plain module call. This file lives in ``plugin_utils`` (controller-side code shared by the
two action plugins; ``module_utils`` would be shipped to the target with every module).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import getpass
import os
import shutil
import stat
import tempfile
import threading

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

# Seconds between two reads of the progress log: a finished move is printed within this time.
POLL_INTERVAL = 0.5
# At most this much of the file is read at once (a line is ~200 bytes).
READ_SIZE = 65536


def _text(raw):
    return raw.decode('utf-8', 'replace').rstrip('\r')


class LogTail(object):
    """Follows a file that another process appends to, from ``offset`` on.

    ``poll()`` hands every new complete line (without its newline) to ``emit``; a line still
    being written waits for its newline, or for ``finish()``. The file may appear later than
    the follower starts. A symlink or anything that is not a regular file is never read.
    """

    def __init__(self, path, emit, offset=0):
        self.path = path
        self.emit = emit
        self.offset = offset
        self.lines = 0
        self._partial = b''
        self._fd = None
        self._lock = threading.Lock()

    @classmethod
    def from_end(cls, path, emit):
        """A follower that skips what the file holds now (earlier runs' lines)."""
        try:
            st = os.lstat(path)
            offset = st.st_size if stat.S_ISREG(st.st_mode) else 0
        except OSError:
            offset = 0
        return cls(path, emit, offset)

    def _open(self):
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0))
            except OSError:  # not there yet, a symlink, or not ours to read: nothing to show
                return None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return None
            self._fd = fd
        return self._fd

    def poll(self):
        """Read what was appended since the last call; returns the number of lines emitted."""
        with self._lock:
            fd = self._open()
            if fd is None:
                return 0
            if os.fstat(fd).st_size < self.offset:  # truncated under us: start over
                self.offset, self._partial = 0, b''
            count = 0
            while True:
                chunk = os.pread(fd, READ_SIZE, self.offset)
                if not chunk:
                    break
                self.offset += len(chunk)
                data = self._partial + chunk
                lines = data.split(b'\n')
                self._partial = lines.pop()
                for raw in lines:
                    count += self._emit(raw)
            return count

    def finish(self):
        """A last read; a trailing line without its newline is emitted too. Closes the file."""
        count = self.poll()
        with self._lock:
            if self._partial:
                count += self._emit(self._partial)
                self._partial = b''
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        return count

    def _emit(self, raw):
        line = _text(raw)
        if not line.strip():
            return 0
        self.lines += 1
        try:
            self.emit(line)
        except Exception:  # showing progress must never break the run
            pass
        return 1


class ProgressStream(object):
    """A daemon thread that polls a ``LogTail`` every ``interval`` seconds until ``stop()``."""

    def __init__(self, tail, interval=None):
        self.tail = tail
        self.interval = POLL_INTERVAL if interval is None else interval
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, name='leveller-progress')
        self._thread.daemon = True
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            try:
                self.tail.poll()
            except Exception:  # an unreadable file stops the stream, never the run
                return

    def stop(self):
        """Stop the thread and flush the lines it had not read yet; returns the lines shown in all."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(5.0, 4 * self.interval))
        try:
            self.tail.finish()
        except Exception:  # the module's result matters more than its last progress line
            pass
        return self.tail.lines

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def why_not_stream(transport, async_val, no_log):
    """Why the lines cannot be shown live (text), or None when they can.

    Only a module that runs on the controller writes its progress log where the action can
    read it. ``async`` runs the module in the background, so the task returns before the moves
    are done. ``no_log`` asks for nothing of the task to be shown.
    """
    if transport != 'local':
        return 'the module runs on %s, not on the controller' % (transport or 'another connection')
    if async_val:
        return 'async: the task returns before the moves are done'
    if no_log:
        return 'no_log: nothing of the task is shown'
    return None


def log_path(path):
    """``progress_log`` as the module sees it (type path: ~ and $VARS expanded, relative to the cwd)."""
    return os.path.abspath(os.path.expandvars(os.path.expanduser(path)))


def private_log_usable(become, become_user, user):
    """Whether the module can write a progress log the controller made for it (0600, ours).

    With ``become`` to another user than root or ourselves, it could not: then the task runs as
    a plain module call, unless it names its own ``progress_log``.
    """
    return not become or (become_user or 'root') in ('root', user)


def _current_user():
    try:
        return getpass.getuser()
    except Exception:  # a uid without a passwd entry (some containers)
        return None


class PrivateLog(object):
    """A progress log for a task that sets none: a 0600 file in a fresh 0700 folder, removed on exit."""

    def __init__(self):
        self.folder = None
        self.path = None

    def __enter__(self):
        self.folder = tempfile.mkdtemp(prefix='leveller-progress-')  # mode 0700
        self.path = os.path.join(self.folder, 'progress.log')
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o600))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.folder, ignore_errors=True)
        return False


def display_line(host):
    """An ``emit`` for ``LogTail``: one job-output line, ``<host> | <progress line>``."""
    shown = Display()

    def emit(line):
        shown.display(u'%s | %s' % (host, line))
    return emit


class ProgressAction(ActionBase):
    """The action of a module that writes a progress log: runs it, showing each new line live."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ProgressAction, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        wrap_async = self._task.async_val and not self._connection.has_native_async
        given = self._task.args.get('progress_log')
        why_not = why_not_stream(getattr(self._connection, 'transport', None), self._task.async_val,
                                 self._task.no_log)
        if why_not is None and not given and not private_log_usable(
                self._play_context.become, self._play_context.become_user, _current_user()):
            why_not = 'become_user %s could not write a progress log of ours; set progress_log' % (
                self._play_context.become_user)
        if why_not is None:
            result = merge_hash(result, self._run_streaming(task_vars, given))
        else:
            Display().vvv('progress is not shown live: %s' % why_not)
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _run_streaming(self, task_vars, given):
        host = task_vars.get('inventory_hostname') or 'localhost'
        emit = display_line(host)
        if given:
            with ProgressStream(LogTail.from_end(log_path(str(given)), emit)) as stream:
                out = self._execute_module(task_vars=task_vars)
        else:
            with PrivateLog() as private:
                args = dict(self._task.args)
                args['progress_log'] = private.path
                with ProgressStream(LogTail.from_end(private.path, emit)) as stream:
                    out = self._execute_module(module_args=args, task_vars=task_vars)
            # the module's view of its options (shown with -v): the file is gone with this task
            invocation = (out.get('invocation') or {}).get('module_args')
            if isinstance(invocation, dict) and invocation.get('progress_log') == private.path:
                invocation['progress_log'] = None
        if stream.tail.lines:
            out['progress_streamed'] = True
        return out
