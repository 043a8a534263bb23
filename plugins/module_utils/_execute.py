# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carry out moves on a live cloud, one checked step at a time.

The executor never decides where an instance goes; it takes moves (from a plan, or one
move built by a module) and for each one:

1. re-checks the live state (pre-check): the instance exists, is on the move's source, is
   in the right state and idle; the destination's compute service is enabled and up and
   has room in Placement. A difference from what the move expects is *drift*; with
   ``on_drift=skip`` the move is skipped, with ``on_drift=fail`` it is failed;
2. starts it (live migration, cold migration or evacuation) with one API call, never
   forced and never retried;
3. waits for it with a deadline per move; a live migration that passes its deadline is
   aborted through the API and the instance is confirmed ACTIVE on its source;
4. checks the result (post-check): ACTIVE (or the power state it had) on the expected
   service host, idle. Anything else is a failed move, whatever Nova's migration record says.

The executor talks to the platform only through a backend (``_backend.Backend``: read, hosts,
start, migrations to poll, abort, confirm, power_on); Nova is the first backend. Every start is
written to the run journal (``_journal``) before and after its call, every end after its
post-check, so a killed run can be resumed without starting anything twice.

Moves run in waves; within a wave at most ``max_parallel`` are in flight, and at most
``max_per_host`` touch any one host (incoming plus outgoing). Everything runs in one
thread: migrations are asynchronous in Nova, so the executor starts them and then polls
them all in one loop. The clock and sleep are injectable so the state machine is tested
without a cloud.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.cloudops.leveller.plugins.module_utils._nova import (
    SUCCESS_MIGRATION, TERMINAL_MIGRATION)
from ansible_collections.cloudops.leveller.plugins.module_utils._backend import backend_for
from ansible_collections.cloudops.leveller.plugins.module_utils import _journal as journal_mod
from ansible_collections.cloudops.leveller.plugins.module_utils import _schema as schema
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import HOME_METADATA_KEY, pinned_by
from ansible_collections.cloudops.leveller.plugins.module_utils._sources.nova import (
    LIVE_MIGRATABLE_POWER_STATES, POWER_STATES)

RESULTS = ('moved', 'evacuated', 'failed', 'unresolved', 'skipped', 'aborted', 'would move', 'would evacuate')
# After a start call whose answer is unclear (a timeout, a reset connection, a 5xx), how long the
# executor reads the instance back before it concludes that no migration began. Nova sets the
# instance's task_state in the API call itself, before it answers, so a migration that began
# shows at once; the window covers a slow database and the conductor creating the record.
RECONCILE_SECONDS = 20
# A pre-check read (the instance, the services, the migrations before a start) that fails on
# a timeout, a reset or a 5xx is tried this many times, with backoff, before the move is failed
# unstarted. Reads while moves are in flight are not retried in place: the poll loop reads
# again on its next round, so no single call holds up the deadlines of the others.
READ_TRIES = 4
# Seconds between two progress-log lines of a migration that reports how much it has copied.
PROGRESS_EVERY = 10
KINDS = ('live', 'cold', 'evacuate')
_RESOURCE_KEYS = (('VCPU', 'vcpus'), ('MEMORY_MB', 'memory_mb'), ('DISK_GB', 'disk_gb'))


class Move(object):
    """One instance to move from ``source`` to ``destination`` (None: the scheduler picks)."""

    def __init__(self, instance, source, destination=None, name=None, wave=1, kind='live'):
        if kind not in KINDS:
            raise ValueError('unknown move kind %r' % kind)
        self.instance = instance
        self.source = source
        self.destination = destination
        self.name = name
        self.wave = wave
        self.kind = kind
        # filled in while running
        self.index = 0
        self.result = None
        self.error = None
        self.note = None
        self.seconds = None
        self.host_after = None
        self.status_before = None
        self.status_after = None
        self.migration_id = None
        self._state = 'pending'
        self._started = None
        self._deadline = None
        self._abort_deadline = None
        self._known_migrations = ()
        self._migration = None
        self._progress_at = None  # when the last in-flight progress line was written
        self._reserved = None
        self._confirmed = False
        self._start_sent = False
        self._last_poll_error = None
        self.power_before = None
        self._unclear = None
        self._reconcile_until = None
        self._abort_error = None
        self._abort_backoff = None
        self._next_abort = None
        # resume: what the journal says an interrupted run recorded before its start call
        self._adopt = None
        self.begun_before = False   # the interrupted run may have sent its start call
        self.adopted = False        # ...and the read-back found that it began: tracked, not started

    def touches(self):
        hosts = [self.source]
        dest = self.destination or (self._migration or {}).get('destination')
        if dest:
            hosts.append(dest)
        return hosts

    def as_dict(self):
        return {
            'instance': self.instance,
            'name': self.name,
            'kind': self.kind,
            'wave': self.wave,
            'source': self.source,
            'destination': self.destination,
            'host_after': self.host_after,
            'status_before': self.status_before,
            'status_after': self.status_after,
            'result': self.result,
            'seconds': None if self.seconds is None else round(self.seconds, 1),
            'error': self.error,
            'note': self.note,
            'migration_id': self.migration_id,
        }


def describe(server):
    """'ACTIVE on compute1' / 'ACTIVE (task_state migrating) on compute1' / 'gone'."""
    if server is None:
        return 'gone (the instance no longer exists)'
    text = server.get('status') or 'UNKNOWN'
    if server.get('task_state'):
        text += ' (task_state %s)' % server['task_state']
    return '%s on %s' % (text, server.get('host'))


class Executor(object):
    """Runs moves through a backend (``_backend.Backend``; a ``_nova.Nova`` is wrapped in the Nova
    backend); see the module docstring."""

    def __init__(self, nova, timeout=600, abort_timeout=120, poll_interval=2.0, max_parallel=1,
                 max_per_host=1, on_failure='stop', on_drift='skip', check_mode=False,
                 check_room=True, start_evacuated=True, progress=None, clock=None, sleep=None,
                 journal=None, recheck=None):
        if on_failure not in ('stop', 'continue'):
            raise ValueError('on_failure must be stop or continue')
        if on_drift not in ('skip', 'fail'):
            raise ValueError('on_drift must be skip or fail')
        if max_parallel < 1 or max_per_host < 1:
            raise ValueError('max_parallel and max_per_host must be at least 1')
        self.nova = nova
        # The state machine talks to the platform only through the backend interface.
        self.backend = backend_for(nova)
        self.timeout = timeout
        self.abort_timeout = abort_timeout
        self.poll_interval = poll_interval
        self.max_parallel = max_parallel
        self.max_per_host = max_per_host
        self.on_failure = on_failure
        self.on_drift = on_drift
        self.check_mode = check_mode
        self.check_room = check_room
        self.start_evacuated = start_evacuated
        self._progress_cb = progress
        self.journal = journal if journal is not None and not check_mode else None
        # Evacuations: called with the source host just before each start; a reason (text) means
        # the host may be back, and no further evacuation starts.
        self.recheck = recheck
        self.recheck_refusal = None
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.progress = []
        self.stopped_by = None
        # Moves whose end the executor cannot establish (Nova may still be migrating them):
        # their hosts stay busy until the run ends.
        self.held = []
        self.journal_error = None
        self._services = None
        self._finished = 0
        self._total = 0

    # -- public -------------------------------------------------------------
    def run(self, moves):
        """Carry out ``moves`` wave by wave; returns them with results filled in."""
        self._total = len(moves)
        for i, move in enumerate(moves):
            move.index = i + 1
        waves = sorted(set(m.wave for m in moves))
        for wave in waves:
            batch = [m for m in moves if m.wave == wave]
            if self.stopped_by is not None:
                for move in batch:
                    self._not_started(move)
                continue
            self._wave_line(wave, waves[-1], len(batch))
            self._run_wave(batch)
        return moves

    def _wave_line(self, wave, last, count):
        """A progress-log line as a wave starts (not a line of RV(progress), which has one per move)."""
        if self._progress_cb is None:
            return
        try:
            self._progress_cb('wave %s/%s: %d move(s)' % (wave, last, count))
        except Exception:  # progress output must never break a run
            pass

    def totals(self, moves):
        totals = dict((r.replace(' ', '_'), 0) for r in RESULTS)
        for move in moves:
            totals[(move.result or 'skipped').replace(' ', '_')] += 1
        totals['total'] = len(moves)
        return totals

    # -- scheduling -----------------------------------------------------------
    def _run_wave(self, batch):
        pending = list(batch)
        inflight = []
        while pending or inflight:
            if self.stopped_by is not None:
                for move in pending:
                    self._not_started(move)
                pending = []
            started_any = False
            for move in list(pending):
                if len(inflight) >= self.max_parallel:
                    break
                if not self._host_slots_free(move, inflight):
                    continue
                outcome = self._begin(move, inflight)
                if outcome == 'defer':
                    continue
                pending.remove(move)
                started_any = True
                if outcome == 'inflight':
                    inflight.append(move)
                if self.stopped_by is not None:
                    break
            if not inflight:
                if pending and not started_any:
                    # Nothing in flight and nothing can start: only possible when every
                    # pending move was deferred, which needs a move in flight. Be safe.
                    for move in pending:
                        self._finish(move, 'skipped', self._held_reason(move))
                    pending = []
                continue
            self.sleep(self.poll_interval)
            for move in list(inflight):
                self._poll(move)
                if move.result is not None:
                    inflight.remove(move)

    def _host_slots_free(self, move, inflight):
        for host in move.touches():
            if any(host in m.touches() for m in self.held):
                return False
            busy = sum(1 for m in inflight if host in m.touches())
            if busy >= self.max_per_host:
                return False
        return True

    def _held_reason(self, move):
        for held in self.held:
            common = sorted(set(move.touches()) & set(held.touches()))
            if common:
                return ('not started: %s is held by the unresolved move of %s (%s may still be '
                        'migrating it)' % (common[0], held.name or held.instance, self.backend.label))
        return 'could not be scheduled (no free slot)'

    def _not_started(self, move):
        self._finish(move, 'skipped', 'not started: on_failure=stop after %s did not complete' % self.stopped_by)

    # -- results --------------------------------------------------------------
    def _finish(self, move, result, error=None, server=None):
        move.result = result
        move.error = error
        if move._started is not None:
            move.seconds = self.clock() - move._started
        if server is not None:
            move.host_after = server.get('host')
            move.status_after = server.get('status')
        self._finished += 1
        if result == 'unresolved':
            self.held.append(move)
        if result in ('failed', 'unresolved') and self.on_failure == 'stop' and self.stopped_by is None:
            self.stopped_by = move.name or move.instance
        if result == 'aborted' and self.on_failure == 'stop' and self.stopped_by is None:
            self.stopped_by = move.name or move.instance
        self._record('end', move, result=result, error=error, host_after=move.host_after,
                     status_after=move.status_after, migration_id=move.migration_id, note=move.note)
        self._emit(move)

    def _record(self, event, move, **fields):
        """Write a journal record; a journal that cannot be written stops new moves."""
        if self.journal is None:
            return
        try:
            self.journal.write(event, instance=move.instance, **fields)
        except (IOError, OSError) as exc:
            # Without a record, a kill would leave migrations nobody can find again: start no more.
            self.journal = None
            self.journal_error = 'the run journal could not be written (%s); no new move was started' % exc
            if self.stopped_by is None:
                self.stopped_by = 'the run journal'

    def _in_flight(self, move, now):
        """A progress-log line every PROGRESS_EVERY seconds for a migration that reports how much it
        has copied (the libvirt backend's job statistics); not a line of RV(progress)."""
        done = _copied(move._migration)
        if done is None or self._progress_cb is None:
            return
        last = move._progress_at
        if last is None:
            move._progress_at = now
            return
        if now - last < PROGRESS_EVERY:
            return
        move._progress_at = now
        processed, total, remaining = done
        line = '  ... %s (%s) %s -> %s: copying, %d%% of %.0f MiB in %.0f s%s' % (
            move.name or '?', move.instance, move.source, move.destination or '(scheduler)',
            min(100, int(100.0 * processed / total)), total / 1048576.0, now - move._started,
            '' if remaining is None else ', %.0f MiB left' % (remaining / 1048576.0))
        try:
            self._progress_cb(line)
        except Exception:  # progress output must never break a run
            pass

    def _emit(self, move):
        dest = move.destination or move.host_after or '(scheduler)'
        line = '[%d/%d] wave %s %s %s (%s) %s -> %s: %s' % (
            self._finished, self._total, move.wave, move.kind, move.name or '?', move.instance,
            move.source, dest, move.result)
        if move.seconds is not None:
            line += ' in %.1f s' % move.seconds
        if move.error:
            line += ': %s' % move.error
        if move.note:
            line += ' (%s)' % move.note
        self.progress.append(line)
        if self._progress_cb is not None:
            try:
                self._progress_cb(line)
            except Exception:  # progress output must never break a run
                pass

    # -- pre-checks -------------------------------------------------------------
    def _services_now(self):
        # Read afresh before every move: a host disabled half-way through a wave must not
        # receive the wave's later moves.
        self._services = self._read_again(self.backend.hosts)
        return self._services

    def _read_again(self, read, *args):
        """An idempotent pre-check read, tried READ_TRIES times with backoff unless Nova answers 4xx."""
        delay = max(self.poll_interval, 1.0)
        for attempt in range(READ_TRIES):
            try:
                return read(*args)
            except Exception as exc:
                status = getattr(exc, 'status', None)
                if (status is not None and status < 500) or attempt == READ_TRIES - 1:
                    raise
                self.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _drift(self, move, reason, server=None):
        result = 'skipped' if self.on_drift == 'skip' else 'failed'
        self._finish(move, result, 'drift: %s' % reason, server=server)
        return 'done'

    def _begin(self, move, inflight):
        """Pre-check and start one move: 'done', 'inflight' or 'defer'."""
        try:
            server = self._read_again(self.backend.read, move.instance)
        except Exception as exc:  # cannot read the instance: do not touch it
            self._finish(move, 'failed', 'pre-check could not read the instance: %s' % exc)
            return 'done'
        if server is None:
            return self._drift(move, 'instance %s no longer exists' % move.instance)
        move.name = move.name or server.get('name')
        if move._adopt is not None and self._adopted(move, server):
            return 'inflight'
        move.status_before = server.get('status')
        move.power_before = server.get('power_state')
        if move.destination and server.get('host') == move.destination:
            self._finish(move, 'skipped', 'already on %s' % move.destination, server=server)
            return 'done'
        if server.get('host') != move.source:
            return self._drift(move, 'instance is on %s, the move expects it on %s'
                               % (server.get('host'), move.source), server=server)
        if server.get('task_state'):
            return self._drift(move, 'instance is busy (task_state %s)' % server['task_state'],
                               server=server)
        wanted = {'live': ('ACTIVE',), 'cold': ('SHUTOFF',), 'evacuate': ('ACTIVE', 'SHUTOFF', 'ERROR')}
        if server.get('status') not in wanted[move.kind]:
            return self._drift(move, 'instance is %s; a %s move needs %s' % (
                server.get('status'), move.kind, ' or '.join(wanted[move.kind])), server=server)
        if move.kind in ('live', 'cold'):
            # What the planner checked may have changed since: a lock or a pin added after the
            # plan wins. (An evacuation rescues an instance from a dead host whatever its pin.)
            if server.get('locked'):
                return self._drift(move, 'instance is locked', server=server)
            pinned = pinned_by(server.get('metadata') or {}, server.get('tags') or [])
            if pinned:
                return self._drift(move, 'instance is %s' % pinned, server=server)
        if move.kind == 'live' and server.get('power_state') not in (None,) + LIVE_MIGRATABLE_POWER_STATES:
            return self._drift(move, 'instance is ACTIVE but its power state is %s; %s live-migrates only '
                               'running or paused instances' % (POWER_STATES.get(server['power_state'], server['power_state']),
                                                                self.backend.label),
                               server=server)
        try:
            services = self._services_now()
        except Exception as exc:
            self._finish(move, 'failed', 'pre-check could not read compute services: %s' % exc)
            return 'done'
        source_svc = services.get(move.source)
        if move.kind in ('live', 'cold'):
            if source_svc is None or source_svc['state'] != 'up' or source_svc['forced_down']:
                return self._drift(move, self.backend.host_down('source', move.source, source_svc), server=server)
        if move.destination:
            if move.destination == move.source:
                return self._drift(move, 'destination is the source host %s' % move.source)
            svc = services.get(move.destination)
            if svc is None:
                return self._drift(move, 'destination %s is not a %s' % (move.destination, self.backend.host_word))
            if svc['status'] != 'enabled':
                return self._drift(move, 'destination %s is %s (%s)' % (
                    move.destination, self.backend.disabled_word, svc.get('disabled_reason') or 'no reason given'))
            if svc['state'] != 'up' or svc['forced_down']:
                return self._drift(move, self.backend.host_down('destination', move.destination, svc))
            if self.check_room:
                verdict = self._room(move, server, inflight)
                if verdict == 'defer':
                    return 'defer'
                if verdict:
                    return self._drift(move, verdict)
        if move.kind == 'evacuate' and self.recheck is not None:
            why = self.recheck(move.source)
            if why:
                self.recheck_refusal = why
                if self.stopped_by is None:
                    self.stopped_by = 'the fencing re-check of %s' % move.source
                self._finish(move, 'skipped', 'not started: %s' % why, server=server)
                return 'done'
        if self.check_mode:
            self._finish(move, 'would evacuate' if move.kind == 'evacuate' else 'would move', server=server)
            move.host_after = move.destination
            return 'done'
        return self._start(move, server)

    def _adopted(self, move, server):
        """Resume: True when the interrupted run's start call began this move (it is tracked to its
        end, never started again); False when nothing began (it is re-checked and carried out)."""
        info = move._adopt
        move._adopt = None
        known = set(info.get('known_migrations') or ())
        unknown = False
        try:
            new = [m for m in self.backend.migrations(move.instance, move.kind)
                   if m['id'] not in known]
        except Exception as exc:  # cannot tell: treat it as begun (tracked, never started twice)
            new = []
            unknown = True
            move._last_poll_error = str(exc)
        began = unknown or bool(new) or bool(server.get('task_state')) or server.get('host') != move.source
        if not began:
            move.note = 'resumed: the interrupted run had not begun it'
            return False
        move.status_before = info.get('status_before')
        move.power_before = info.get('power_before')
        move._known_migrations = known
        if new:
            move._migration = sorted(new, key=lambda m: m['id'])[-1]
            move.migration_id = move._migration['id']
        move._started = self.clock()
        move._deadline = move._started + self.timeout
        move._start_sent = True
        move._state = 'running'
        move.adopted = True
        move.note = 'resumed: the interrupted run had begun it; tracked to its end'
        self._record('adopt', move, migration_id=move.migration_id)
        return True

    def _room(self, move, server, inflight):
        """None if the destination has room, 'defer' or a reason otherwise."""
        try:
            need = self.backend.needs(move.instance)
        except Exception:  # fall back to the flavor below
            need = {}
        if not need:
            flavor = server.get('flavor') or {}
            need = dict((rc, flavor.get(key) or 0) for rc, key in _RESOURCE_KEYS)
        try:
            room = self.backend.room(move.destination)
        except Exception as exc:
            return 'could not read Placement for %s: %s' % (move.destination, exc)
        incoming = [m for m in inflight if m.destination == move.destination and m._reserved]
        short = []
        for rc, amount in sorted(need.items()):
            if not amount:
                continue
            if rc not in room:
                short.append('%s (no inventory)' % rc)
                continue
            max_unit = room[rc].get('max_unit')
            if max_unit is not None and amount > max_unit:
                short.append('%s %s > max_unit %s' % (rc, amount, max_unit))
                continue
            # Moves in flight to the same host may not have their allocation in Placement
            # yet: count them too, and wait for them rather than skip on their account.
            pending = sum(m._reserved.get(rc, 0) for m in incoming)
            if amount > room[rc]['free'] - pending:
                short.append('%s needs %s, free %s' % (rc, amount, room[rc]['free'] - pending))
        if short and incoming:
            return 'defer'
        move._reserved = need
        if short:
            return 'destination %s has no room: %s' % (move.destination, ', '.join(short))
        return None

    # -- start ------------------------------------------------------------------
    def _start(self, move, server):
        try:
            move._known_migrations = set(
                m['id'] for m in self._read_again(self.backend.migrations, move.instance, move.kind))
        except Exception as exc:
            self._finish(move, 'failed', 'pre-check could not list migrations: %s' % exc, server=server)
            return 'done'
        move._started = self.clock()
        move._deadline = move._started + self.timeout
        self._record('intent', move, kind=move.kind, source=move.source, destination=move.destination,
                     status_before=move.status_before, power_before=move.power_before,
                     known_migrations=sorted(move._known_migrations))
        if self.journal is None and self.journal_error:
            self._finish(move, 'skipped', self.journal_error, server=server)
            return 'done'
        move._start_sent = True
        try:
            self.backend.start(move.kind, move.instance, move.destination)
        except Exception as exc:
            status = getattr(exc, 'status', None)
            if status is None or status >= 500:
                # A timeout, a reset connection or a 5xx: Nova may have begun all the same
                # (a 202 is a promise, and a lost answer says nothing). Read back before judging.
                self._record('answer', move, answer='unclear', error=str(exc))
                move._state = 'unclear'
                move._unclear = str(exc)
                move._reconcile_until = self.clock() + max(RECONCILE_SECONDS, 3 * self.poll_interval)
                return 'inflight'
            self._record('answer', move, answer='refused', error=str(exc))
            after = self._read(move)
            text = '%s refused the %s: %s; instance now %s' % (
                self.backend.label, 'live migration' if move.kind == 'live' else
                'cold migration' if move.kind == 'cold' else 'evacuation', exc, describe(after))
            if after is not None and after.get('status') == 'ERROR':
                text += ('; it is in ERROR and needs an operator (check its migration record, '
                         'then `openstack server set --state active` if it runs on %s)' % after.get('host'))
            self._finish(move, 'failed', text, server=after)
            return 'done'
        self._record('answer', move, answer='accepted')
        move._state = 'running'
        return 'inflight'

    def _read(self, move):
        try:
            return self.backend.read(move.instance)
        except Exception:  # reported as unknown state
            return {'status': 'UNKNOWN (could not read)', 'host': '?', 'task_state': None}

    # -- polling ---------------------------------------------------------------
    def _poll(self, move):
        try:
            server = self.backend.read(move.instance)
            if move._migration is None or move._migration.get('status') not in TERMINAL_MIGRATION:
                for mig in self.backend.migrations(move.instance, move.kind):
                    if mig['id'] not in move._known_migrations:
                        move._migration = mig
                        move.migration_id = mig['id']
                        break
        except Exception as exc:  # a transient API error: try again on the next poll
            move._last_poll_error = str(exc)
            server = None
            if move._state == 'unclear':
                # The read-back window counts answered reads only: while Nova does not answer, a
                # start call queued in it may still be carried out when it comes back.
                move._reconcile_until = self.clock() + max(RECONCILE_SECONDS, 3 * self.poll_interval)
            if self.clock() > move._deadline + self.abort_timeout:
                self._finish(move, 'unresolved', 'lost track of the move: %s did not answer for %ss past '
                             'its deadline (%s); it may still be migrating: check the instance and its '
                             'migrations (%s) before any retry'
                             % (self.backend.label, self.abort_timeout, exc, self.backend.how_to_check(move.instance)))
            return
        if server is None:
            self._finish(move, 'failed', 'instance %s disappeared while it was being moved' % move.instance)
            return
        if move._state == 'unclear' and self._reconcile(move, server):
            return
        if move.kind == 'live':
            self._poll_live(move, server)
        elif move.kind == 'cold':
            self._poll_cold(move, server)
        else:
            self._poll_evacuate(move, server)

    def _mig_status(self, move):
        return (move._migration or {}).get('status')

    def _reconcile(self, move, server):
        """After an unclear answer to the start call: True while it is not known whether Nova began."""
        kind = {'live': 'live migration', 'cold': 'cold migration', 'evacuate': 'evacuation'}[move.kind]
        if move._migration is not None or server.get('task_state') or server.get('host') != move.source:
            move._state = 'running'
            move.note = ("%s's answer to the start call was lost (%s); read back: the %s began"
                         % (self.backend.label, move._unclear, kind))
            return False
        if self.clock() < move._reconcile_until:
            return True
        text = ("%s's answer to the start call was unclear (%s); read back for %ds: no %s began "
                "(no migration record, no task state, still on %s), so it counts as refused; instance %s"
                % (self.backend.label, move._unclear, max(RECONCILE_SECONDS, 3 * self.poll_interval), kind, move.source,
                   describe(server)))
        if server.get('status') == 'ERROR':
            text += ('; it is in ERROR and needs an operator (check its migration record, then '
                     '`openstack server set --state active` if it runs on %s)' % server.get('host'))
        self._finish(move, 'failed', text, server=server)
        return True

    def _verify_arrived(self, move, server, wanted_status='ACTIVE', label='moved', note=None):
        expected = move.destination
        on_target = (server.get('host') == expected) if expected else (server.get('host') != move.source)
        if (move.kind == 'live' and server.get('status') == wanted_status and on_target
                and not server.get('task_state') and server.get('power_state') != move.power_before):
            self._finish(move, 'failed', 'migration %s reports %s and the instance is on %s, but its power '
                         'state is %s (was %s): check the guest' % (
                             move.migration_id, self._mig_status(move), server.get('host'),
                             POWER_STATES.get(server.get('power_state'), server.get('power_state')),
                             POWER_STATES.get(move.power_before, move.power_before)), server=server)
            return
        if server.get('status') == wanted_status and not server.get('task_state') and on_target:
            move.note = note or move.note
            if label == 'moved':
                home = self._home_reached(move, server)
                if home:
                    move.note = '%s; %s' % (move.note, home) if move.note else home
            self._finish(move, label, None, server=server)
        else:
            self._finish(move, 'failed', 'migration %s reports %s but the instance is %s (expected %s on %s)' % (
                move.migration_id, self._mig_status(move), describe(server), wanted_status,
                expected or 'a host other than %s' % move.source), server=server)

    def _home_reached(self, move, server):
        """A move that lands an instance on the host its ``leveller:home`` names ends its time away:
        the record is removed (best effort: the move itself has succeeded either way)."""
        home = (server.get('metadata') or {}).get(HOME_METADATA_KEY)
        if not home or home != server.get('host'):
            return None
        try:
            self.backend.clear_home(move.instance)
        except Exception as exc:  # the move is done; say what is left to tidy
            return 'back on its home host %s, but %s could not be removed: %s' % (home, HOME_METADATA_KEY, exc)
        return 'back on its home host %s: %s removed' % (home, HOME_METADATA_KEY)

    def _settled_failure(self, move, server, prefix):
        unchanged = (server.get('host') == move.source and server.get('status') == move.status_before)
        self._finish(move, 'failed', '%s; instance %s%s' % (
            prefix, describe(server), ' (unchanged)' if unchanged else ''), server=server)

    def _poll_live(self, move, server):
        status = self._mig_status(move)
        now = self.clock()
        if move._state == 'running' and status not in TERMINAL_MIGRATION:
            self._in_flight(move, now)
        if server.get('status') == 'ERROR' and move._state in ('running', 'aborting'):
            # Caught at the first poll that sees it, not at the deadline.
            if status in TERMINAL_MIGRATION or (move._migration is None and not server.get('task_state')):
                self._settled_failure(move, server, 'live migration %s put the instance in ERROR (%s)'
                                      % (move.migration_id, status))
            else:
                self._finish(move, 'unresolved', 'the instance went to ERROR while live migration %s is '
                             'still %s: %s may still be copying it; check the instance and the migration '
                             'before any retry; instance %s'
                             % (move.migration_id, status, self.backend.label, describe(server)),
                             server=server)
            return
        if move._state == 'running':
            if status in SUCCESS_MIGRATION and not server.get('task_state'):
                self._verify_arrived(move, server)
            elif status in TERMINAL_MIGRATION and status not in SUCCESS_MIGRATION and not server.get('task_state'):
                self._settled_failure(move, server, 'live migration %s ended %s' % (move.migration_id, status))
            elif move._migration is None and not server.get('task_state') and now - move._started > 3 * max(self.poll_interval, 1):
                # Idle with no migration record: nothing is running any more.
                if server.get('host') != move.source:
                    self._verify_arrived(move, server, note='no migration record seen')
                else:
                    self._settled_failure(move, server, 'no live migration record appeared')
            elif now > move._deadline and status in TERMINAL_MIGRATION:
                # The migration has ended but Nova is still tidying up the instance: nothing
                # to abort; give it abort_timeout more, then report what is there.
                if now > move._deadline + self.abort_timeout:
                    text = 'live migration %s ended %s but after %ss the instance is still %s' % (
                        move.migration_id, status, self.timeout + self.abort_timeout, describe(server))
                    self._finish(move, 'failed', text, server=server)
            elif now > move._deadline:
                self._abort(move, server)
        elif move._state == 'aborting':
            if move._abort_error is not None and status not in TERMINAL_MIGRATION and now >= move._next_abort:
                self._send_abort(move, server)
            if status in SUCCESS_MIGRATION and not server.get('task_state'):
                self._verify_arrived(move, server, note='completed while being aborted')
            elif status in TERMINAL_MIGRATION and not server.get('task_state'):
                if server.get('host') == move.source and server.get('status') == 'ACTIVE':
                    self._finish(move, 'aborted', 'timed out after %ss; migration %s aborted (%s); '
                                 'instance ACTIVE on its source %s' % (
                                     self.timeout, move.migration_id, status, move.source), server=server)
                else:
                    self._finish(move, 'failed', 'timed out after %ss; migration %s aborted (%s) but the '
                                 'instance is %s' % (self.timeout, move.migration_id, status,
                                                     describe(server)), server=server)
            elif now > move._abort_deadline:
                asked = ('%s refused every abort (last: %s)' % (self.backend.label, move._abort_error) if move._abort_error
                         else 'abort requested')
                self._finish(move, 'unresolved', 'timed out after %ss; %s, and migration %s is still %s after '
                             '%ss more: %s may still be migrating it; instance %s. Check it before any retry'
                             % (self.timeout, asked, move.migration_id, status, self.abort_timeout,
                                self.backend.label, describe(server)), server=server)

    def _abort(self, move, server):
        if move._migration is None:
            # Nothing to abort; with a task state Nova may still be migrating it.
            result = 'unresolved' if server.get('task_state') else 'failed'
            self._finish(move, result, 'timed out after %ss and %s shows no migration record to '
                         'abort; instance %s' % (self.timeout, self.backend.label, describe(server)), server=server)
            return
        move._state = 'aborting'
        move._abort_deadline = self.clock() + self.abort_timeout
        move._abort_backoff = max(self.poll_interval, 1.0)
        self._send_abort(move, server)

    def _send_abort(self, move, server):
        """Ask Nova to abort; a refusal (a migration still preparing, a lost answer) is asked again
        with backoff until abort_timeout, while the polls watch the migration end on its own."""
        try:
            self.backend.abort(move.instance, move.migration_id)
            move._abort_error = None
        except Exception as exc:
            move._abort_error = '%s (migration %s)' % (exc, self._mig_status(move))
            move._next_abort = self.clock() + move._abort_backoff
            move._abort_backoff = min(move._abort_backoff * 2, 30.0)

    def _poll_cold(self, move, server):
        status = self._mig_status(move)
        if server.get('status') == 'VERIFY_RESIZE' and not move._confirmed:
            try:
                self.backend.confirm(move.instance)
            except Exception as exc:
                self._finish(move, 'failed', 'cold migration %s reached VERIFY_RESIZE but confirm failed: '
                             '%s; instance %s' % (move.migration_id, exc, describe(server)), server=server)
                return
            move._confirmed = True
            return
        if move._confirmed and not server.get('task_state') and server.get('status') != 'VERIFY_RESIZE':
            self._verify_arrived(move, server, wanted_status='SHUTOFF')
        elif status in ('failed', 'error') and not server.get('task_state'):
            self._settled_failure(move, server, 'cold migration %s ended %s' % (move.migration_id, status))
        elif server.get('status') == 'ERROR':
            self._settled_failure(move, server, 'cold migration %s put the instance in ERROR' % move.migration_id)
        elif self.clock() > move._deadline:
            text = ('timed out after %ss; a cold migration cannot be aborted; migration %s is %s; '
                    'instance %s' % (self.timeout, move.migration_id, status, describe(server)))
            self._finish(move, self._ended_or_unresolved(move, server), text, server=server)

    def _poll_evacuate(self, move, server):
        status = self._mig_status(move)
        before = move.status_before
        if server.get('host') != move.source and not server.get('task_state'):
            now_status = server.get('status')
            if now_status == 'ERROR':
                self._settled_failure(move, server, 'evacuation %s left the instance in ERROR' % move.migration_id)
                return
            if before == 'ACTIVE' and now_status == 'SHUTOFF' and self.start_evacuated:
                if move._state != 'starting':
                    try:
                        self.backend.power_on(move.instance)
                    except Exception as exc:
                        self._finish(move, 'failed', 'evacuated to %s but could not start it again: %s' % (
                            server.get('host'), exc), server=server)
                        return
                    move._state = 'starting'
                    move.note = 'started again after evacuation (Nova >= 2.95 leaves it stopped)'
                elif self.clock() > move._deadline:
                    self._finish(move, 'failed', 'evacuated to %s but still SHUTOFF %ss after the start call'
                                 % (server.get('host'), self.timeout), server=server)
                return
            wanted = {'ACTIVE': ('ACTIVE',), 'SHUTOFF': ('SHUTOFF',)}.get(before, ('ACTIVE', 'SHUTOFF'))
            if not self.start_evacuated and before == 'ACTIVE':
                wanted = ('ACTIVE', 'SHUTOFF')
            if now_status in wanted:
                self._verify_arrived(move, server, wanted_status=now_status, label='evacuated', note=move.note)
            elif self.clock() > move._deadline:
                self._finish(move, 'failed', 'evacuated but the instance is %s, expected %s' % (
                    describe(server), ' or '.join(wanted)), server=server)
            return
        if status in ('failed', 'error') and not server.get('task_state'):
            self._settled_failure(move, server, 'evacuation %s ended %s' % (move.migration_id, status))
        elif server.get('status') == 'ERROR' and not server.get('task_state'):
            self._settled_failure(move, server, 'evacuation %s put the instance in ERROR' % move.migration_id)
        elif self.clock() > move._deadline:
            text = ('timed out after %ss; an evacuation cannot be aborted; migration %s is %s; '
                    'instance %s' % (self.timeout, move.migration_id, status, describe(server)))
            self._finish(move, self._ended_or_unresolved(move, server), text, server=server)

    def _ended_or_unresolved(self, move, server):
        """'failed' when Nova has visibly stopped working on the move, else 'unresolved'."""
        if self._mig_status(move) in TERMINAL_MIGRATION and not server.get('task_state'):
            return 'failed'
        return 'unresolved'


def moves_from_plan(plan):
    """Check a whole plan against the plan contract and return its moves; ValueError names the field.

    The contract is ``_schema.PLAN`` (every key known, every move with an instance, a source and
    a destination); on top of it each instance moves at most once and never onto its own host.
    """
    if not isinstance(plan, dict):
        raise ValueError('plan: expected a mapping (the "plan" returned by cloudops.leveller.level_plan), got %s'
                         % type(plan).__name__)
    try:
        schema.check(plan, schema.PLAN, 'plan')
    except schema.SchemaError as exc:
        raise ValueError('%s. Pass the "plan" that cloudops.leveller.level_plan returns, or a plan of '
                         'the same form (docs/schema/plan-v1.schema.json)' % exc)
    moves = []
    seen = {}
    for index, raw in enumerate(plan['moves']):
        where = 'plan.moves[%d] (%s)' % (index, raw.get('name') or raw['instance'])
        instance = raw['instance']
        if instance in seen:
            raise ValueError('%s: moves instance %s a second time (plan.moves[%d] moves it already); a plan '
                             'moves each instance once' % (where, instance, seen[instance]))
        seen[instance] = index
        if raw['source'] == raw['destination']:
            raise ValueError('%s: source and destination are both %s; a move goes to another host'
                             % (where, raw['source']))
        moves.append(Move(instance, raw['source'], raw['destination'], name=raw.get('name'),
                          wave=int(raw.get('wave', 1)), kind=raw.get('kind', 'live')))
    return moves


def moves_from_journal(recorded):
    """The moves an interrupted run left unfinished (a ``_journal.Recorded``), in plan order.

    A move whose start call may have been sent is marked for adoption: the executor reads it
    back and tracks it to its end instead of starting it again.
    """
    moves = []
    for raw in recorded.pending():
        move = Move(raw['instance'], raw['source'], raw.get('destination'), name=raw.get('name'),
                    wave=int(raw.get('wave') or 1), kind=raw['kind'])
        if recorded.started(raw['instance']):
            move._adopt = recorded.intents[raw['instance']]
            move.begun_before = True
        moves.append(move)
    return moves


def resume_view(recorded, moves):
    """The ``resumed`` return value: which journal, and what was left to do in it."""
    return {'journal': recorded.path, 'run': recorded.run_id, 'purpose': recorded.purpose,
            'ended_before': len(recorded.ends), 'pending': len(moves),
            'begun_before': sum(1 for m in moves if m.begun_before),
            'adopted': sum(1 for m in moves if m.adopted),
            'torn_line': recorded.torn_line, 'closed': recorded.closed}


def open_journal(params, check_mode, moves, purpose, recorded=None):
    """The journal a run writes: a new file, the resumed run's file, or NoJournal (check mode, no moves).

    Raises ``_report.UnsafePath`` or OSError before anything has changed.
    """
    if check_mode or not moves:
        return journal_mod.NoJournal()
    if recorded is not None:
        return journal_mod.Journal(recorded.path, recorded.run_id, resumed=True)
    return journal_mod.Journal.create(params.get('journal_dir') or journal_mod.default_journal_dir(), purpose)


def plan_freshness(plan, max_age, now=None, current_digest=None):
    """Check a plan's age and digest before it is carried out; returns (view, problem or None).

    ``max_age`` seconds (0: any age) is compared with the plan's ``snapshot_taken_at``;
    ``current_digest`` is a callable returning the digest of the live cloud over the plan's
    ``snapshot_hosts`` (or raising). A plan without a date or hosts cannot be aged or compared:
    the view says so.
    """
    from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import parse_time
    view = {'snapshot_taken_at': plan.get('snapshot_taken_at'), 'age_seconds': None, 'max_plan_age': max_age,
            'digest_in_plan': plan.get('snapshot_digest'), 'digest_now': None, 'digest_match': None,
            'digest_note': None}
    now = time.time() if now is None else now
    if plan.get('snapshot_taken_at'):
        age = now - parse_time(plan["snapshot_taken_at"], "plan.snapshot_taken_at").timestamp()
        view['age_seconds'] = round(age, 1)
        if max_age and age > max_age:
            return view, ('the plan was made from a snapshot taken %s, %d s ago, older than max_plan_age (%d s): '
                          'take a fresh snapshot and plan again, or raise max_plan_age'
                          % (plan['snapshot_taken_at'], age, max_age))
    if plan.get('snapshot_digest') and plan.get('snapshot_hosts') and current_digest is not None:
        try:
            view['digest_now'] = current_digest(plan['snapshot_hosts'])
            view['digest_match'] = view['digest_now'] == plan['snapshot_digest']
        except Exception as exc:  # reported; require_digest turns it into a refusal
            view['digest_note'] = 'the live cloud could not be digested: %s' % exc
    elif plan.get('snapshot_digest'):
        view['digest_note'] = 'the plan names no snapshot_hosts, so its digest cannot be compared'
    else:
        view['digest_note'] = 'the plan carries no snapshot_digest'
    return view, None


def live_digest(conn):
    """A callable: hosts -> the digest of the live cloud over those hosts, as level_plan computes it."""
    def compute(hosts):
        from ansible_collections.cloudops.leveller.plugins.module_utils._sources import nova as nova_source
        from ansible_collections.cloudops.leveller.plugins.module_utils import _snapshot
        found, instances, _info, _counter = nova_source.collect(conn, scope={'hosts': list(hosts)}, history_hours=0)
        snapshot = _snapshot.from_dict({'version': 1, 'taken_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                                        'hosts': found, 'instances': instances})
        return _snapshot.digest(snapshot)
    return compute


def _copied(migration):
    """(bytes processed, total, remaining or None) of a migration record that says, else None."""
    progress = (migration or {}).get('progress')
    if not isinstance(progress, dict) or not progress.get('data_total'):
        return None
    return (progress.get('data_processed') or 0, progress['data_total'], progress.get('data_remaining'))


def check_hosts_known(moves, services, word='nova-compute service host'):
    """Raise ValueError naming hosts of ``moves`` that are not hosts of ``services`` (``word``: what they are)."""
    unknown = sorted(set(h for m in moves for h in (m.source, m.destination) if h and h not in services))
    if unknown:
        raise ValueError('unknown host(s) %s: not %ss of this cloud (known: %s)'
                         % (', '.join(unknown), word, ', '.join(sorted(services)) or 'none'))


def execution_argument_spec():
    """Options shared by the modules that carry out moves (doc fragment ``cloudops.leveller.execution``)."""
    return dict(
        on_drift=dict(type='str', default='skip', choices=['skip', 'fail']),
        abort_timeout=dict(type='int', default=120),
        poll_interval=dict(type='float', default=2.0),
        max_parallel=dict(type='int', default=1),
        progress_log=dict(type='path'),
        lock=dict(type='bool', default=True),
        lock_timeout=dict(type='int', default=0),
        lock_dir=dict(type='path'),
        journal_dir=dict(type='path'),
        resume=dict(type='path'),
    )


def execution_params_problem(params, at_least_one=('timeout', 'max_parallel', 'max_per_host')):
    """The first bad value among the execution options, as a message, or None."""
    for opt in at_least_one:
        if params[opt] < 1:
            return '%s must be at least 1 (got %s)' % (opt, params[opt])
    if params['poll_interval'] <= 0:
        return 'poll_interval must be positive (got %s)' % params['poll_interval']
    for opt in ('abort_timeout', 'lock_timeout'):
        if params[opt] < 0:
            return '%s must not be negative (got %s)' % (opt, params[opt])
    return None


def run_locked(executor, moves, lock, log, purpose, check_mode=False, fencing=None):
    """Run ``moves`` holding ``lock``, with start and end lines in the progress log.

    Returns the totals. ``LockBusy`` from taking the lock propagates (nothing has moved
    then); the progress log and the journal (``executor.journal``) are closed however this ends.
    The journal's first record is written under the lock, before any move starts.
    """
    journal = getattr(executor, "journal", None)
    try:
        with lock:
            log.write('start: %s, %d move(s)%s' % (purpose, len(moves), ' (check mode)' if check_mode else ''))
            if journal is not None:
                journal.begin(purpose, moves, fencing=fencing)
                log.write('journal: %s (resume a killed run with resume=%s)' % (journal.path, journal.path))
            executor.run(moves)
            totals = executor.totals(moves)
            log.write('end: %s' % summary_message(totals, executor.stopped_by))
            if journal is not None:
                journal.close(totals)
    finally:
        log.close()
        if journal is not None:
            journal.close()
    return executor.totals(moves)


def lock_view(lock):
    """The ``lock`` return value: the lock file and the seconds spent waiting, or None."""
    return None if lock.path is None else {'path': lock.path, 'waited': round(lock.waited, 1)}


class ProgressLog(object):
    """Appends progress lines to a file as they happen (``tail -f`` shows a run live)."""

    def __init__(self, path):
        self.path = path
        self._f = None
        if path:
            self._f = open(path, 'a')

    def write(self, line):
        if self._f is not None:
            self._f.write('%s %s\n' % (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), line))
            self._f.flush()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def diff_of(moves):
    """Diff mode: the host of each instance before and after (as predicted in check mode)."""
    before, after = {}, {}
    for move in moves:
        key = '%s (%s)' % (move.name, move.instance) if move.name else move.instance
        before[key] = move.source
        if move.result in ('moved', 'evacuated', 'would move', 'would evacuate'):
            after[key] = move.host_after or move.destination or '(scheduler)'
        else:
            after[key] = move.host_after or move.source
    return {'before': {'hosts': before}, 'after': {'hosts': after}}


def unresolved_message(moves, backend=None):
    """What an operator must check by hand: each move whose end is unknown, or ''."""
    held = [m for m in moves if m.result == 'unresolved']
    if not held:
        return ''
    backend = backend_for(backend) if backend is not None else None
    label = backend.label if backend is not None else 'Nova'
    lines = ['%s (%s) %s -> %s: %s; check %s' % (
        m.name or '?', m.instance, m.source, m.destination or '(scheduler)', m.error,
        backend.how_to_check(m.instance) if backend is not None else
        '`openstack server show %s` and `openstack server migration list --server %s`' % (m.instance, m.instance))
        for m in held]
    return '; UNRESOLVED (%s may still be migrating; their hosts got no other move in this run): %s' % (
        label, '; '.join(lines))


def summary_message(totals, stopped_by=None):
    parts = ['%d %s' % (totals[k], k.replace('_', ' ')) for k in
             ('moved', 'evacuated', 'would_move', 'would_evacuate', 'aborted', 'failed', 'unresolved', 'skipped')
             if totals.get(k)]
    text = '%d move(s): %s' % (totals['total'], ', '.join(parts) or 'nothing to do')
    if stopped_by:
        text += '; no new move started after %s did not complete (on_failure=stop)' % stopped_by
    return text


def drain_capacity_shortfall(nova, host, services, servers):
    """Coarse all-or-nothing check for a drain without a plan.

    Compares what the instances of ``host`` hold with the total free room of the other
    enabled, up hosts, per resource class. Returns a text naming the shortfall, or None.
    It cannot see fragmentation (room split over hosts) or server-group rules; the Nova
    scheduler checks those at each move, and a move it refuses is reported as failed.
    """
    need = {}
    for server in servers:
        try:
            held = nova.instance_resources(server['id'])
        except Exception:  # fall back to the flavor
            held = {}
        if not held:
            flavor = server.get('flavor') or {}
            held = dict((rc, flavor.get(key) or 0) for rc, key in _RESOURCE_KEYS)
        for rc, amount in held.items():
            need[rc] = need.get(rc, 0) + (amount or 0)
    free = {}
    for name, svc in services.items():
        if name == host or svc.get('status') != 'enabled' or svc.get('state') != 'up' or svc.get('forced_down'):
            continue
        try:
            room = nova.host_room(name)
        except Exception:  # a host we cannot read gives no room
            continue
        for rc, item in room.items():
            free[rc] = free.get(rc, 0) + max(item['free'], 0)
    short = ['%s needs %s, free %s' % (rc, amount, free.get(rc, 0))
             for rc, amount in sorted(need.items()) if amount and amount > free.get(rc, 0)]
    return '; '.join(short) or None
