# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Following the progress log: real files written while the follower reads them."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat
import threading
import time

from ansible_collections.cloudops.leveller.plugins.plugin_utils._progress_stream import (
    LogTail, PrivateLog, ProgressStream, log_path, private_log_usable, why_not_stream)


def append(path, text):
    with open(path, 'ab') as f:
        f.write(text.encode('utf-8') if not isinstance(text, bytes) else text)


def wait_for(cond, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_a_line_is_emitted_only_once_its_newline_is_written(tmp_path):
    path = str(tmp_path / 'p.log')
    got = []
    tail = LogTail(path, got.append)
    append(path, '2026-01-01T00:00:00Z [1/2] wave 1 live web-1 (u1) c1 -> c2: mo')
    assert tail.poll() == 0 and got == []
    append(path, 'ved in 3.0 s\n2026-01-01T00:00:01Z [2/2')
    assert tail.poll() == 1
    assert got == ['2026-01-01T00:00:00Z [1/2] wave 1 live web-1 (u1) c1 -> c2: moved in 3.0 s']
    append(path, '] wave 1 live web-2 (u2) c1 -> c3: moved in 2.0 s\n')
    assert tail.poll() == 1 and got[1].endswith('[2/2] wave 1 live web-2 (u2) c1 -> c3: moved in 2.0 s')
    assert tail.poll() == 0 and tail.lines == 2
    tail.finish()


def test_a_growing_file_gives_each_line_once_in_order(tmp_path):
    path = str(tmp_path / 'p.log')
    got = []
    tail = LogTail(path, got.append)
    for n in range(1, 6):
        for k in range(n):
            append(path, 'line %d.%d\n' % (n, k))
        tail.poll()
    tail.finish()
    assert got == ['line %d.%d' % (n, k) for n in range(1, 6) for k in range(n)]


def test_a_big_burst_is_read_in_pieces(tmp_path):
    path = str(tmp_path / 'p.log')
    lines = ['%05d %s' % (i, 'x' * 150) for i in range(2000)]  # ~300 KB, several reads
    append(path, ''.join(line + '\n' for line in lines))
    got = []
    tail = LogTail(path, got.append)
    assert tail.poll() == 2000 and got == lines


def test_from_end_skips_what_earlier_runs_wrote(tmp_path):
    path = str(tmp_path / 'p.log')
    append(path, 'start: an earlier run\nend: an earlier run\n')
    got = []
    tail = LogTail.from_end(path, got.append)
    append(path, 'start: this run\n')
    tail.poll()
    assert got == ['start: this run']


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path):
    path = str(tmp_path / 'later.log')
    got = []
    tail = LogTail.from_end(path, got.append)
    assert tail.poll() == 0
    append(path, 'start: live_migrate of 1 move(s)\n')
    assert tail.poll() == 1 and got == ['start: live_migrate of 1 move(s)']


def test_finish_emits_a_last_line_without_newline_and_closes(tmp_path):
    path = str(tmp_path / 'p.log')
    got = []
    tail = LogTail(path, got.append)
    append(path, 'one\r\ntwo')
    assert tail.poll() == 1
    assert tail.finish() == 1
    assert got == ['one', 'two'] and tail._fd is None
    assert tail.finish() == 0 and got == ['one', 'two']  # nothing is shown twice


def test_blank_lines_are_not_shown_and_bad_bytes_do_not_stop_the_stream(tmp_path):
    path = str(tmp_path / 'p.log')
    got = []
    tail = LogTail(path, got.append)
    append(path, b'\n  \nweb-\xff moved\n')
    assert tail.poll() == 1 and got == [u'web-\ufffd moved']


def test_an_emit_that_fails_does_not_stop_the_following(tmp_path):
    path = str(tmp_path / 'p.log')
    seen = []

    def emit(line):
        seen.append(line)
        raise IOError('display gone')
    tail = LogTail(path, emit)
    append(path, 'a\nb\n')
    assert tail.poll() == 2 and seen == ['a', 'b']


def test_a_symlink_or_a_folder_is_never_read(tmp_path):
    secret = tmp_path / 'secret'
    secret.write_text('not a progress line\n')
    link = tmp_path / 'link.log'
    os.symlink(str(secret), str(link))
    got = []
    assert LogTail(str(link), got.append).finish() == 0
    assert LogTail(str(tmp_path), got.append).finish() == 0
    assert got == []


def test_a_truncated_file_is_read_again_from_its_start(tmp_path):
    path = str(tmp_path / 'p.log')
    got = []
    tail = LogTail(path, got.append)
    append(path, 'first line of a long file\n')
    tail.poll()
    with open(path, 'w') as f:
        f.write('new\n')
    tail.poll()
    assert got == ['first line of a long file', 'new']


def test_the_stream_shows_lines_while_the_writer_is_still_writing(tmp_path):
    """A writer appends lines over time: each shows up while the writer is still busy."""
    path = str(tmp_path / 'p.log')
    got = []
    shown_while_writing = []
    done = threading.Event()

    def emit(line):
        got.append(line)
        if not done.is_set():
            shown_while_writing.append(line)
    stream = ProgressStream(LogTail.from_end(path, emit), interval=0.02).start()
    for i in range(5):
        append(path, 'move %d\n' % i)
        assert wait_for(lambda: len(got) == i + 1), 'line %d was not shown within 5 s' % i
    done.set()
    assert stream.stop() == 5
    assert got == ['move %d' % i for i in range(5)] and shown_while_writing == got
    assert not stream._thread.is_alive()


def test_stop_flushes_what_the_thread_has_not_read_yet(tmp_path):
    """Lines written just before the module returns (the end line) are shown by stop()."""
    path = str(tmp_path / 'p.log')
    got = []
    stream = ProgressStream(LogTail.from_end(path, got.append), interval=60).start()
    append(path, 'wave 1/1: 2 move(s)\n[1/2] moved\n[2/2] moved\nend: 2 move(s): 2 moved')
    assert got == []  # the thread sleeps for a minute
    t0 = time.monotonic()
    assert stream.stop() == 4
    assert time.monotonic() - t0 < 5
    assert got == ['wave 1/1: 2 move(s)', '[1/2] moved', '[2/2] moved', 'end: 2 move(s): 2 moved']


def test_the_stream_is_a_context_manager_and_stops_on_an_exception(tmp_path):
    path = str(tmp_path / 'p.log')
    got = []
    try:
        with ProgressStream(LogTail.from_end(path, got.append), interval=60) as stream:
            append(path, 'start: x\n')
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert got == ['start: x'] and not stream._thread.is_alive()


def test_when_the_lines_can_be_shown_live():
    assert why_not_stream('local', 0, False) is None
    assert why_not_stream('local', None, None) is None
    assert 'ssh' in why_not_stream('ssh', 0, False)
    assert 'async' in why_not_stream('local', 3600, False)
    assert 'no_log' in why_not_stream('local', 0, True)
    assert private_log_usable(False, 'nobody', 'awx')
    assert private_log_usable(True, None, 'awx') and private_log_usable(True, 'root', 'awx')
    assert private_log_usable(True, 'awx', 'awx')
    assert not private_log_usable(True, 'postgres', 'awx')
    assert not private_log_usable(True, 'postgres', None)


def test_a_private_log_is_owner_only_and_removed_afterwards():
    with PrivateLog() as private:
        folder = private.folder
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(private.path).st_mode) == 0o600
        assert os.path.dirname(private.path) == folder
    assert not os.path.exists(folder)


def test_log_path_is_the_path_the_module_writes(monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('LEVELLER_LOGS', '/var/log/leveller')
    monkeypatch.chdir(str(tmp_path))
    assert log_path('~/p.log') == str(tmp_path / 'p.log')
    assert log_path('$LEVELLER_LOGS/p.log') == '/var/log/leveller/p.log'
    assert log_path('reports/p.log') == str(tmp_path / 'reports' / 'p.log')
