# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run journal: what a moving run started, written down before and after each API call.

One JSON-lines file per run, mode 0600 in a 0700 folder, each line flushed and fsync'd before
the executor goes on, so a run killed at any instant (``kill -9``, an AWX job cancelled, a
controller that loses power) leaves a record of every migration it may have started:

``run``      the run's id, purpose and every move it means to make (first line);
``intent``   written *before* the start call: the instance's status and power state, and the
             ids of the migrations it already had (so a later reader can tell which one is new);
``answer``   written after the start call: ``accepted``, ``refused`` or ``unclear``;
``adopt``    a resumed run found that the start call had begun the move and tracks it;
``end``      written after the move's post-check: its result, host and status;
``resume``   a later run that took this journal over (it appends to the same file);
``closed``   the run ended normally, with its totals.

:func:`read` turns a journal back into moves for ``resume``: a move with an ``end`` is done;
a move with an ``intent`` but no ``end`` may have begun and is *adopted* (read back and
tracked to its end, never started twice); a move with neither is re-checked and carried out.
A line cut short by a kill (the last one) is ignored and reported.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import time

from ansible_collections.cloudops.leveller.plugins.module_utils._report import open_private, private_dir

VERSION = 1
EVENTS = ('run', 'resume', 'intent', 'answer', 'adopt', 'end', 'closed')
MAX_BYTES = 64 * 2 ** 20
_MOVE_KEYS = ('instance', 'name', 'kind', 'wave', 'source', 'destination')
_ID_RE = re.compile(r'^[A-Za-z0-9_.-]+$')


class JournalError(ValueError):
    """A journal that cannot be read back; the message names the file, the line and the fix."""


def default_journal_dir():
    """Where journals live unless ``journal_dir`` says otherwise: kept across reboots."""
    base = os.environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.join(base, 'cloudops-leveller', 'journal')


def new_run_id(purpose, clock=None):
    """``20261206T231500Z-drain-compute4-12345``: sortable, unique per controller, safe in file names."""
    now = time.gmtime(clock() if clock else time.time())
    slug = re.sub(r'[^A-Za-z0-9]+', '-', purpose).strip('-').lower()[:40] or 'run'
    return '%s-%s-%d' % (time.strftime('%Y%m%dT%H%M%SZ', now), slug, os.getpid())


class Journal(object):
    """Appends events to one journal file; every line reaches the disk before ``write`` returns."""

    def __init__(self, path, run_id, resumed=False):
        self.path = path
        self.run_id = run_id
        self.resumed = resumed
        self.written = 0
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND)

    @classmethod
    def create(cls, directory, purpose):
        """A new journal for a new run in ``directory`` (created 0700 if missing)."""
        private_dir(directory)
        run_id = new_run_id(purpose)
        path = os.path.join(directory, '%s.jsonl' % run_id)
        n = 1
        while os.path.lexists(path):
            n += 1
            path = os.path.join(directory, '%s-%d.jsonl' % (run_id, n))
        return cls(path, os.path.basename(path)[:-len('.jsonl')])

    def write(self, event, **fields):
        if self._fd is None:
            return
        record = {'v': VERSION, 'event': event, 'at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
        record.update(fields)
        line = json.dumps(record, sort_keys=True, separators=(',', ':')) + '\n'
        data = line.encode('utf-8')
        while data:
            done = os.write(self._fd, data)
            data = data[done:]
        os.fsync(self._fd)
        self.written += 1

    def begin(self, purpose, moves, fencing=None):
        """The first record: the run and every move it means to make (or, on resume, who took over).

        ``fencing`` (evacuations) is what the fencing established before the first move (the
        host, how it was fenced, the service's ``updated_at`` after our own changes), so a
        resumed run can re-check the host against it instead of fencing again.
        """
        extra = {} if fencing is None else {'fencing': fencing}
        if self.resumed:
            self.write('resume', run=self.run_id, pid=os.getpid(), purpose=purpose,
                       moves=[m.instance for m in moves], **extra)
        else:
            self.write('run', run=self.run_id, pid=os.getpid(), purpose=purpose,
                       moves=[dict((k, getattr(m, k)) for k in _MOVE_KEYS) for m in moves], **extra)

    def close(self, totals=None):
        if self._fd is None:
            return
        try:
            if totals is not None:
                self.write('closed', run=self.run_id, totals=totals)
        except (IOError, OSError):  # the end records are already on disk or reported
            pass
        os.close(self._fd)
        self._fd = None
        if not self.written and not self.resumed:
            # Nothing was recorded (the lock was busy, the run stopped before its first record):
            # no journal is left to be mistaken for a run.
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None


class NoJournal(object):
    """Check mode and runs with nothing to move write no journal."""

    path = None
    run_id = None
    resumed = False

    def write(self, event, **fields):
        pass

    def begin(self, purpose, moves, fencing=None):
        pass

    def close(self, totals=None):
        pass


class Recorded(object):
    """A journal read back: its run, its moves and what is known of each."""

    def __init__(self, path):
        self.path = path
        self.run_id = None
        self.purpose = None
        self.moves = []          # the run's moves, plan order (dicts with _MOVE_KEYS)
        self.intents = {}        # instance -> the last intent record
        self.answers = {}        # instance -> the last answer record
        self.ends = {}           # instance -> the last end record
        self.resumes = []        # run ids of earlier resumes
        self.closed = False
        self.torn_line = None    # the number of a last line cut short by a kill
        self.fencing = None      # evacuations: what the fencing established (the last run/resume record)

    def pending(self):
        """The moves that have no end record, in plan order."""
        return [m for m in self.moves if m['instance'] not in self.ends]

    def started(self, instance):
        """True when a start call may have been sent for ``instance`` and no end was recorded."""
        return instance in self.intents and instance not in self.ends


def read(path):
    """Read a journal back; raises JournalError naming the file, the line and the fix."""
    where = 'resume: %s' % path
    if not isinstance(path, str) or not path:
        raise JournalError('resume: expected the path of a run journal (the "journal" a moving run returned)')
    if os.path.isdir(path):
        raise JournalError('%s is a folder: pass the journal file itself (*.jsonl)' % where)
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise JournalError('%s is larger than %d MiB: is it a run journal?' % (where, MAX_BYTES // 2 ** 20))
        with open(path, 'rb') as f:
            raw = f.read()
    except (IOError, OSError) as exc:
        raise JournalError('%s cannot be read: %s' % (where, exc))
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise JournalError('%s is not UTF-8 text (byte %d): is it a run journal?' % (where, exc.start))
    rec = Recorded(path)
    lines = text.split('\n')
    # A run killed while writing leaves at most its last line unfinished.
    last = len(lines)
    while last > 0 and lines[last - 1] == '':
        last -= 1
    for number, line in enumerate(lines[:last], 1):
        try:
            item = json.loads(line)
        except ValueError:
            if number == last and not text.endswith('\n'):
                rec.torn_line = number
                break
            raise JournalError('%s line %d is not JSON: the file is not a run journal, or was edited' % (where, number))
        if not isinstance(item, dict) or item.get('v') != VERSION or item.get('event') not in EVENTS:
            raise JournalError('%s line %d is not a version %d journal record (event one of %s)'
                               % (where, number, VERSION, ', '.join(EVENTS)))
        _apply(rec, item, '%s line %d' % (where, number))
    if rec.run_id is None:
        raise JournalError('%s has no run record: the run ended before it started any move, so there is '
                           'nothing to resume' % where)
    return rec


def _apply(rec, item, where):
    event = item['event']
    if event == 'run':
        if rec.run_id is not None:
            raise JournalError('%s: a second run record; one journal holds one run' % where)
        moves = item.get('moves')
        run = item.get('run')
        if not isinstance(run, str) or not _ID_RE.match(run) or not isinstance(moves, list):
            raise JournalError('%s: a run record needs run (an id) and moves (a list)' % where)
        for m in moves:
            if not isinstance(m, dict) or not isinstance(m.get('instance'), str) or not isinstance(m.get('source'), str) \
                    or m.get('kind') not in ('live', 'cold', 'evacuate'):
                raise JournalError('%s: a move needs instance, source and kind (live, cold or evacuate)' % where)
        rec.run_id = run
        rec.purpose = item.get('purpose')
        rec.fencing = item.get('fencing') if isinstance(item.get('fencing'), dict) else None
        rec.moves = [dict((k, m.get(k)) for k in _MOVE_KEYS) for m in moves]
        return
    if rec.run_id is None:
        raise JournalError('%s: a %s record before the run record' % (where, event))
    if event == 'resume':
        rec.resumes.append(item.get('run'))
        rec.closed = False
        if isinstance(item.get('fencing'), dict):
            rec.fencing = item['fencing']
        return
    if event == 'closed':
        rec.closed = True
        return
    instance = item.get('instance')
    if instance not in set(m['instance'] for m in rec.moves):
        raise JournalError('%s: %s record for instance %r, which is not one of the run\'s moves' % (where, event, instance))
    if event == 'intent':
        rec.intents[instance] = item
        rec.ends.pop(instance, None)
    elif event in ('answer', 'adopt'):
        rec.answers[instance] = item
    else:
        rec.ends[instance] = item
