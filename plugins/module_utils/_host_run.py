# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``evacuate_host`` does with a host: drain it, enable it again, or recover a failed one.

The module (``plugins/modules/evacuate_host.py``) is its argument spec and documentation; this
is the work. ``HostRun`` reads the host, builds the moves (a drain plan, the scheduler, or the
journal of an interrupted run), takes the cloud lock, fences a failed host through
``_recovery`` and ``_fence``, and runs the moves through ``_execute``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import time

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import FailureClass, LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import NovaError
from ansible_collections.cloudops.leveller.plugins.module_utils._libvirt_backend import LibvirtBackendError
from ansible_collections.cloudops.leveller.plugins.module_utils._platform import open_platform
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    Executor, Move, ProgressLog, diff_of, drain_capacity_shortfall, lock_view, moves_from_journal,
    moves_from_plan, open_journal, plan_freshness, resume_view, run_locked, summary_message, unresolved_message)
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import LockBusy, NoLock, lock_for_run
from ansible_collections.cloudops.leveller.plugins.module_utils import _fence, _recovery
from ansible_collections.cloudops.leveller.plugins.module_utils._report import UnsafePath

EVACUABLE = ('ACTIVE', 'SHUTOFF', 'ERROR')
_RUN_IN_REASON = re.compile(r'\(run ([A-Za-z0-9_.-]+)\)')


def _svc_view(svc):
    return dict((k, svc.get(k)) for k in ('status', 'state', 'forced_down', 'disabled_reason'))


class HostRun(object):

    def __init__(self, module, recorded=None, connect_to=None, nova_factory=None):
        self.module = module
        self.p = module.params
        self.recorded = recorded
        self.journal = None
        self.platform = open_platform(module, connect_to=connect_to, nova_factory=nova_factory)
        self.conn = self.platform.conn
        self.nova = self.platform.nova  # _nova.Nova, or the libvirt backend (libvirt_uris)
        self.result = dict(changed=False, host=self.p['host'], state=self.p['state'], moves=[], totals={},
                           progress=[], remaining=[], left_alone=[], instances_before=0, instances_after=0,
                           planner=None, lock=None, journal=None, run_id=None, resumed=None, plan_check=None)

    def open_journal(self, moves, purpose):
        """The run's journal, opened before the host is disabled (its reason names the run)."""
        try:
            self.journal = open_journal(self.p, self.module.check_mode, moves, purpose, self.recorded)
        except (UnsafePath, OSError) as exc:
            self.fail('journal_dir: %s; nothing was changed' % exc)
        self.result.update(journal=self.journal.path, run_id=self.journal.run_id)
        if self.recorded is not None:
            self.result['resumed'] = resume_view(self.recorded, moves)

    def resumed_moves(self, kinds):
        """With O(resume): what the interrupted run left on this host; None without resume."""
        if self.recorded is None:
            return None
        moves = moves_from_journal(self.recorded)
        alien = sorted(set(m['source'] for m in self.recorded.moves) - set([self.p['host']]))
        if alien:
            self.fail('resume: the journal %s moves instances off %s, not %s: resume it with the host of that run'
                      % (self.recorded.path, ', '.join(alien), self.p['host']))
        wrong = sorted(set(m.kind for m in moves) - set(kinds))
        if wrong:
            self.fail('resume: the journal %s holds %s moves; resume it with state=%s' % (
                self.recorded.path, ', '.join(wrong), 'evacuated' if 'evacuate' in wrong else 'drained'))
        return moves

    def _diff_moves(self, moves, svc, after_svc):
        """With --diff: the moves and the compute service before and after, in the result."""
        if self.module._diff:
            diff = diff_of(moves)
            diff['before']['service'] = _svc_view(svc)
            diff['after']['service'] = after_svc
            self.result['diff'] = diff

    def fail(self, msg, failure=FailureClass.CONFIGURATION, **extra):
        if self.journal is not None:
            self.journal.close()  # a journal with no record is removed
            self.result['journal'] = self.journal.path
        out = dict(self.result)
        out.update(extra)
        self.module.fail_json(msg=msg, failure=failure, **out)

    def service(self):
        word = self.platform.host_word()
        try:
            services = self.nova.compute_services()
        except (NovaError, LibvirtBackendError) as exc:
            self.fail('Cannot list the %ss: %s' % (word, exc), FailureClass.UNREACHABLE)
        svc = services.get(self.p['host'])
        if svc is None:
            self.fail('unknown host %r: not a %s of this cloud (known: %s)'
                      % (self.p['host'], word, ', '.join(sorted(services)) or 'none'))
        return services, svc

    # -- state: enabled ----------------------------------------------------------------
    def enabled(self):
        """Re-enable the host (``_recovery.reenable``): after an evacuation only once its nova-compute
        has started again and cleaned up; a host disabled by someone else only with force_enable."""
        services, svc = self.service()
        if self.platform.libvirt:
            return self.enabled_libvirt(svc)
        reason = svc.get('disabled_reason') or ''
        found = _RUN_IN_REASON.search(reason)
        self.result['disabled_by_run'] = found.group(1) if found else None
        ours = [self.p['disabled_reason']]
        if found:
            ours.append(reason)  # a reason that names one of our runs is ours, whatever its text
        try:
            done = _recovery.reenable(self.nova, self.p['host'], service_down_time=self.p['service_down_time'],
                                      force_enable=self.p['force_enable'], our_reasons=ours,
                                      check_mode=self.module.check_mode)
        except _recovery.RecoveryRefused as exc:
            self.fail(str(exc), exc.failure, steps=exc.steps, half_state=exc.half_state,
                      service={'before': _svc_view(svc), 'after': _svc_view(svc)})
        after = dict((k, done['service']['after'].get(k)) for k in ('status', 'state', 'forced_down', 'disabled_reason'))
        self.result.update(changed=done['changed'], service={'before': _svc_view(svc), 'after': after},
                           steps=done['steps'], half_state=done['half_state'], msg=done['msg'])
        if self.module._diff:
            self.result['diff'] = {'before': {'service': _svc_view(svc)}, 'after': {'service': after}}
        self.module.exit_json(**self.result)

    def enabled_libvirt(self, svc):
        """Remove the maintenance mark of a libvirt host: one this collection set (its reason names a
        run or is O(disabled_reason)), or any with force_enable."""
        host = self.p['host']
        reason = svc.get('disabled_reason') or ''
        found = _RUN_IN_REASON.search(reason)
        self.result['disabled_by_run'] = found.group(1) if found else None
        before = _svc_view(svc)
        after = dict(before, status='enabled', disabled_reason=None)
        steps = []
        if svc['state'] != 'up':
            self.fail('libvirt of %s does not answer (%s): its maintenance mark cannot be read or removed'
                      % (host, svc.get('error') or 'down'), FailureClass.UNREACHABLE,
                      service={'before': before, 'after': before})
        if svc['status'] == 'enabled':
            msg = '%s has no maintenance mark: nothing to do' % host
            after = before
        elif not (found or reason == self.p['disabled_reason'] or self.p['force_enable']):
            self.fail('%s carries a maintenance mark this collection did not set (%r); nothing was changed. '
                      'Check why it is in maintenance, then run again with force_enable=true' % (host, reason),
                      FailureClass.INCONSISTENT, service={'before': before, 'after': before})
        else:
            self.result['changed'] = True
            steps.append('maintenance mark removed (was %r)' % reason)
            msg = '%s %s enabled: maintenance mark removed' % (host, 'would be' if self.module.check_mode else '')
            msg = msg.replace('  ', ' ')
            if not self.module.check_mode:
                try:
                    self.nova.clear_maintenance(host)
                except LibvirtBackendError as exc:
                    self.fail('cannot enable %s: %s' % (host, exc), FailureClass.UNREACHABLE,
                              service={'before': before, 'after': before})
        self.result.update(service={'before': before, 'after': after}, steps=steps, half_state=None, msg=msg)
        if self.module._diff:
            self.result['diff'] = {'before': {'service': before}, 'after': {'service': after}}
        self.module.exit_json(**self.result)

    # -- shared: run moves ---------------------------------------------------------------
    def execute(self, moves, on_failure, purpose, held_lock=None, recheck=None, fencing=None):
        """Run the moves under the cloud lock (``held_lock``: taken already by the caller)."""
        log = ProgressLog(self.p['progress_log'])
        executor = Executor(
            self.nova, timeout=self.p['timeout'], abort_timeout=self.p['abort_timeout'],
            poll_interval=self.p['poll_interval'], max_parallel=self.p['max_parallel'],
            max_per_host=self.p['max_per_host'], on_failure=on_failure, on_drift=self.p['on_drift'],
            check_mode=self.module.check_mode, progress=log.write, journal=self.journal, recheck=recheck)
        lock = held_lock or lock_for_run(self.platform.lock_key, self.p, self.module.check_mode, len(moves), purpose)
        try:
            totals = run_locked(executor, moves, NoLock() if held_lock else lock, log, purpose,
                                self.module.check_mode, fencing=fencing)
        except LockBusy as exc:
            self.fail(str(exc), FailureClass.INCONSISTENT, holder=exc.holder)
        except UnsafePath as exc:  # nothing has moved: the lock is taken first
            self.fail('lock_dir: %s' % exc)
        self.result.update(moves=[m.as_dict() for m in moves], totals=totals, progress=executor.progress,
                           stopped_by=executor.stopped_by, lock=lock_view(lock))
        if self.recorded is not None:
            self.result['resumed'] = resume_view(self.recorded, moves)
        if executor.journal_error:
            self.fail('%s: %s' % (purpose, executor.journal_error), FailureClass.INCONSISTENT)
        return executor, totals

    def disable(self, svc):
        """Disable the service unless it is; returns the 'after' view."""
        after = dict(_svc_view(svc))
        reason = self.p['disabled_reason']
        if self.journal is not None and self.journal.run_id:
            reason = '%s (run %s)' % (reason, self.journal.run_id)
        if svc['status'] != 'disabled':
            self.result['changed'] = True
            after.update(status='disabled', disabled_reason=reason)
            if not self.module.check_mode:
                self.nova.set_service_status(svc['id'], False, reason)
        self.result['service'] = {'before': _svc_view(svc), 'after': after}
        return after

    def select(self, servers):
        """Keep the instances named in O(instances) (all when unset); the rest are left alone."""
        wanted = self.p['instances']
        if wanted is None:
            return servers, []
        chosen = [s for s in servers if s['id'] in wanted or s['name'] in wanted]
        found = set(s['id'] for s in chosen) | set(s['name'] for s in chosen)
        missing = [w for w in wanted if w not in found]
        if missing:
            self.fail('instances %s are not on %s (instances lists instances of the host, by name or UUID)'
                      % (', '.join(missing), self.p['host']))
        others = [dict(id=s['id'], name=s['name'], status=s['status'], reason='not selected (instances)')
                  for s in servers if s not in chosen]
        return chosen, others

    # -- state: drained ------------------------------------------------------------------
    def drained(self):
        host = self.p['host']
        services, svc = self.service()
        if self.platform.libvirt and svc['state'] != 'up':
            self.fail('libvirt of %s does not answer (%s): its domains cannot be live-migrated; nothing was '
                      'changed' % (host, svc.get('error') or 'down'), FailureClass.UNREACHABLE)
        if svc['state'] != 'up' or svc['forced_down']:
            self.fail('compute service of %s is down: its instances cannot be live-migrated. If the host '
                      'has failed, recover them with state=evacuated' % host, FailureClass.INCONSISTENT)
        # Name order: the same host always drains in the same order, whatever Nova's list order.
        servers = sorted(self.nova.servers_on_host(host), key=lambda s: (s['name'] or '', s['id']))
        servers, left = self.select(servers)
        self.result['instances_before'] = len(servers)
        movable = []
        for s in servers:
            if s['status'] == 'ACTIVE' and not s['task_state']:
                movable.append((s, 'live'))
            elif s['status'] == 'SHUTOFF' and self.platform.libvirt:
                left.append(dict(id=s['id'], name=s['name'], status=s['status'],
                                 reason='SHUTOFF: plain libvirt live-migrates running domains only'))
            elif s['status'] == 'SHUTOFF' and not s['task_state'] and self.p['migrate_stopped']:
                movable.append((s, 'cold'))
            elif s['status'] == 'SHUTOFF' and not s['task_state']:
                left.append(dict(id=s['id'], name=s['name'], status=s['status'],
                                 reason='SHUTOFF and migrate_stopped is false'))
            else:
                busy = ' (task_state %s)' % s['task_state'] if s['task_state'] else ''
                left.append(dict(id=s['id'], name=s['name'], status=s['status'],
                                 reason='%s%s: not movable' % (s['status'], busy)))
        self.result['left_alone'] = left

        resumed = self.resumed_moves(('live', 'cold'))
        if resumed is not None:
            self.result['planner'] = 'journal'
            moves = resumed
        elif self.p['plan'] is not None:
            self.result['planner'] = 'plan'
            try:
                moves = moves_from_plan(self.p['plan'])
            except ValueError as exc:
                self.fail(str(exc))
            check, stale = plan_freshness(self.p['plan'], self.p['max_plan_age'], current_digest=self.platform.digest)
            self.result['plan_check'] = check
            if stale:
                self.fail(stale + '; nothing was changed')
            if self.p['require_digest'] and not check['digest_match']:
                self.fail('require_digest: the live cloud no longer matches the plan (plan %s, now %s%s); nothing '
                          'was changed. Take a fresh snapshot and plan the drain again' % (
                              check['digest_in_plan'], check['digest_now'],
                              '; ' + check['digest_note'] if check['digest_note'] else ''), FailureClass.INCONSISTENT)
            strangers = [m.instance for m in moves if m.source != host]
            if strangers:
                self.fail('the plan moves instances off hosts other than %s (%s): pass a drain plan for this host'
                          % (host, ', '.join(strangers)))
            unknown = sorted(set(m.destination for m in moves if m.destination and m.destination not in services))
            if unknown:
                self.fail('the plan names unknown host(s) %s' % ', '.join(unknown))
            if self.p['instances'] is not None:
                chosen = set(s['id'] for s in servers)
                moves = [m for m in moves if m.instance in chosen]
            planned = set(m.instance for m in moves)
            for s, kind in movable:
                if s['id'] not in planned:
                    if kind == 'cold':
                        moves.append(Move(s['id'], host, None, name=s['name'], wave=max([m.wave for m in moves] or [1]),
                                          kind='cold'))
            by_id = dict((s['id'], kind) for s, kind in movable)
            for m in moves:
                m.kind = by_id.get(m.instance, m.kind)
            # level_plan lists an instance left behind as {kind: instance, id, name, reason}.
            here = set(s['id'] for s in servers)
            skipped = [x for x in (self.p['plan'].get('skipped') or [])
                       if isinstance(x, dict) and x.get('kind', 'instance') == 'instance'
                       and (x.get('id') or x.get('instance')) in here]
            unplanned = [s for s, kind in movable if kind == 'live' and s['id'] not in planned]
            if self.p['all_or_nothing'] and (skipped or unplanned):
                names = [str(x.get('name') or x.get('instance')) + ': ' + str(x.get('reason', 'did not fit'))
                         for x in skipped] + ['%s: not in the plan' % s['name'] for s in unplanned]
                self.fail('the drain plan does not place every instance of %s (%s); nothing was moved '
                          '(all_or_nothing). Free room or set all_or_nothing=false' % (host, '; '.join(names)),
                          FailureClass.INCONSISTENT, not_placed=names)
        else:
            # Fallback: no drain plan, the Nova scheduler picks each destination (when allowed).
            self.result['planner'] = 'scheduler'
            moves = [Move(s['id'], host, None, name=s['name'], kind=kind) for s, kind in movable]
            if moves and self.platform.libvirt:
                self.fail('%s still holds %d domain(s) to move and no drain plan was given; nothing was changed. '
                          'Plain libvirt has no scheduler: pass plan (level_plan strategy=drain on a snapshot '
                          'from hypervisor_load_info sources=[libvirt])' % (host, len(moves)))
            if moves and not self.p['allow_scheduler']:
                names = ', '.join(m.name or m.instance for m in moves[:5])
                self.fail('%s still holds %d instance(s) to move (%s) and no drain plan was given; nothing '
                          'was changed. Pass plan (level_plan strategy=drain) or allow_scheduler=true to let '
                          'the Nova scheduler choose' % (host, len(moves), names), FailureClass.CONFIGURATION)
            if self.p['all_or_nothing'] and moves:
                shortfall = drain_capacity_shortfall(self.nova, host, services, [s for s, kind in movable])
                if shortfall:
                    self.fail('the other enabled hosts have too little room for the instances of %s (%s); '
                              'nothing was moved (all_or_nothing)' % (host, shortfall), FailureClass.INCONSISTENT)

        purpose = 'drain of %s' % host
        on_failure = self.p['on_failure'] or 'stop'
        # The lock first: a drain that finds another run moving on this cloud fails before it has
        # disabled the host, and leaves the service as it found it.
        lock = lock_for_run(self.platform.lock_key, self.p, self.module.check_mode, len(moves), purpose)
        try:
            with lock:
                self.open_journal(moves, purpose)
                after_svc = self.disable(svc)
                executor, totals = self.execute(moves, on_failure, purpose, held_lock=lock)
        except LockBusy as exc:
            self.fail(str(exc), FailureClass.INCONSISTENT, holder=exc.holder)
        except UnsafePath as exc:
            self.fail('lock_dir: %s' % exc)
        if totals['moved']:
            self.result['changed'] = True
        self.record_homes(moves, servers, host, ('moved',))

        remaining = []
        if not self.module.check_mode:
            # Waiting for the host to empty makes sense only when every move ended moved: after a
            # failed, skipped, aborted or unresolved move the instance stays, and the run reports it
            # at once instead of waiting wait_timeout for nothing.
            settled = all(m.result == 'moved' for m in moves)
            deadline = time.monotonic() + (self.p['wait_timeout'] if self.p['wait'] and settled else 0)
            while True:
                remaining = self.nova.servers_on_host(host)
                if self.p['instances'] is not None:
                    chosen = set(s['id'] for s in servers)
                    remaining = [r for r in remaining if r['id'] in chosen]
                if not remaining or time.monotonic() >= deadline:
                    break
                time.sleep(self.p['wait_sleep'])
        else:
            stay = [dict(x) for x in left if x['reason'] != 'not selected (instances)']
            remaining = [dict(id=m.instance, name=m.name, status=m.status_before) for m in moves
                         if m.result != 'would move'] + stay
        reasons = dict((x['id'], x['reason']) for x in left)
        for m in moves:
            if m.result not in ('moved', 'would move'):
                reasons[m.instance] = '%s: %s' % (m.result, m.error)
        self.result['remaining'] = [dict(id=s['id'], name=s['name'], status=s.get('status'),
                                         reason=reasons.get(s['id'], 'still on the host'))
                                    for s in remaining]
        self.result['instances_after'] = len(remaining)
        self._diff_moves(moves, svc, after_svc)
        summary = summary_message(totals, executor.stopped_by)
        if totals['failed'] or totals['aborted'] or totals['unresolved']:
            self.fail('drain of %s incomplete: %s; %d instance(s) left on the host, which stays disabled%s'
                      % (host, summary, len(remaining), unresolved_message(moves, self.nova)), FailureClass.INCONSISTENT)
        if remaining and self.p['wait'] and not self.module.check_mode:
            left_text = ', '.join('%s (%s)' % (r['name'], r['reason']) for r in self.result['remaining'])
            self.fail('%s is not empty after %ss: %s; it stays disabled' % (host, self.p['wait_timeout'], left_text),
                      FailureClass.INCONSISTENT)
        self.result['msg'] = '%s %s: %s; %d instance(s) left' % (
            host, 'would be drained' if self.module.check_mode else 'drained', summary, len(remaining))
        self.module.exit_json(**self.result)

    def record_homes(self, moves, servers, host, results):
        """Each instance that left ``host`` (a move ending in one of ``results``) records it as its
        home (``leveller:home``) unless it records one already: strategy home brings it back.
        Nova only (plain libvirt domains carry no home). Returns the notes of records that failed;
        they are also in the result's ``home_not_recorded``."""
        notes = []
        if self.module.check_mode or self.platform.libvirt:
            return notes
        homes = dict((s['id'], s) for s in servers)
        for m in moves:
            if m.result not in results:
                continue
            meta = _recovery.home_metadata(homes.get(m.instance) or {}, host)
            if meta:
                try:
                    self.nova.set_server_metadata(m.instance, meta)
                except NovaError as exc:
                    notes.append('%s (%s): could not record its home host %s: %s' % (m.name, m.instance, host, exc))
        if notes:
            self.result['home_not_recorded'] = notes
        return notes

    # -- state: evacuated ----------------------------------------------------------------
    def recovery(self):
        """The fencing sequence of this run (``_recovery.Recovery``), its BMC driver built from ``fence``."""
        p = self.p
        try:
            fence = _fence.make_fence(p['fence']) if p['fence'] else None
            return _recovery.Recovery(
                self.nova, p['host'], fence=fence, fenced=p['fenced'], service_down_time=p['service_down_time'],
                min_down_seconds=p['min_down_seconds'], max_down_fraction=p['max_down_fraction'],
                poll_interval=p['poll_interval'], check_mode=self.module.check_mode)
        except _fence.FenceError as exc:
            self.fail(str(exc), exc.failure, exception=exc.exception)
        except LevellerError as exc:
            self.fail(str(exc))

    def fence_host(self, recovery):
        """Fence the host (steps a-d), or, on resume, re-check it against what the killed run established."""
        fencing = self.recorded.fencing if self.recorded is not None else None
        try:
            if fencing and fencing.get('host') == self.p['host']:
                recovery.adopt(fencing)
                why = recovery.recheck()
                if why:
                    self.fail('refusing to resume the evacuation of %s: %s' % (self.p['host'], why),
                              FailureClass.INCONSISTENT, steps=recovery.steps)
                prepared = dict(host=self.p['host'], fencing=fencing.get('fencing'), steps=recovery.steps,
                                service={'before': fencing.get('service'), 'after': fencing.get('service')})
            else:
                if self.journal is not None and self.journal.run_id:
                    recovery.disabled_reason = '%s (run %s)' % (
                        _recovery.evacuation_reason(time.time()), self.journal.run_id)
                prepared = recovery.prepare()
        except _recovery.RecoveryRefused as exc:
            self.fail(str(exc), exc.failure, steps=exc.steps)
        finally:
            self.result['steps'] = recovery.steps
        self.result.update(fencing=prepared['fencing'], service=prepared['service'])
        return prepared

    def evacuated(self):
        host = self.p['host']
        services, svc = self.service()
        recovery = self.recovery()
        moves = self.resumed_moves(('evacuate',))
        left = []
        notes = []
        if moves is not None:
            # The instances of the interrupted run, each counted once at the end, wherever it is now.
            servers = [dict(id=m['instance'], name=m.get('name')) for m in self.recorded.moves]
            self.result['planner'] = 'journal'
        else:
            servers = sorted(self.nova.servers_on_host(host), key=lambda s: (s['name'] or '', s['id']))
            servers, left = self.select(servers)
            movable = []
            for s in servers:
                if s['status'] in EVACUABLE and not s['task_state']:
                    movable.append(s)
                else:
                    left.append(dict(id=s['id'], name=s['name'], status=s['status'],
                                     reason='%s%s: Nova cannot evacuate it; reset its state first' % (
                                         s['status'], ' (task_state %s)' % s['task_state'] if s['task_state'] else '')))
            # Masakari's HA_Enabled=True and a higher leveller:priority first, each group its own wave;
            # reserved hosts are the preferred destinations (the scheduler still validates them).
            ordered, notes = _recovery.evacuation_order(movable)
            destinations = {}
            if self.p['reserved_hosts']:
                room = {}
                for name in self.p['reserved_hosts']:
                    try:
                        room[name] = self.nova.host_room(name)
                    except NovaError:
                        pass  # reserved_destinations notes a host whose room is unknown
                try:
                    destinations, more = _recovery.reserved_destinations(
                        [srv for srv, _wave in ordered], self.p['reserved_hosts'], services, room, host)
                except LevellerError as exc:
                    self.fail(str(exc))
                notes.extend(more)
            moves = [Move(srv['id'], host, destinations.get(srv['id']), name=srv['name'], wave=wave, kind='evacuate')
                     for srv, wave in ordered]
            self.result['planner'] = 'reserved_hosts' if any(destinations.values()) else 'scheduler'
        self.result['instances_before'] = len(servers)
        self.result['left_alone'] = left
        self.result['notes'] = notes
        self.result['microversion'] = self.nova.evacuate_microversion()
        purpose = 'evacuation of %s' % host
        # One run at a time from fencing to the last evacuation: the lock covers both.
        lock = lock_for_run(self.conn, self.p, self.module.check_mode, 1, purpose)
        try:
            with lock:
                self.open_journal(moves, purpose)
                prepared = self.fence_host(recovery)
                fencing = dict(host=host, fencing=prepared['fencing'], baseline=recovery.baseline(),
                               service=prepared['service']['after'])
                on_failure = self.p['on_failure'] or 'continue'
                executor, totals = self.execute(moves, on_failure, purpose, held_lock=lock, recheck=recovery.recheck,
                                                fencing=fencing)
        except LockBusy as exc:
            self.fail(str(exc), FailureClass.INCONSISTENT, holder=exc.holder)
        except UnsafePath as exc:
            self.fail('lock_dir: %s' % exc)
        finally:
            if recovery.fence is not None:
                recovery.fence.close()
        if totals['evacuated'] or prepared['service']['after'] != prepared['service']['before']:
            self.result['changed'] = True

        # Each evacuated instance records the host it came from (leveller:home), to go back later.
        notes.extend(self.record_homes(moves, servers, host, ('evacuated',)))

        # Count: every instance that was on the host exists exactly once afterwards.
        found, still_here = 0, []
        for s in servers:
            now = self.nova.get_server(s['id'])
            if now is not None:
                found += 1
                if now['host'] == host:
                    still_here.append(dict(id=s['id'], name=s['name'], status=now['status'],
                                           reason='still on the failed host'))
        for r in still_here:
            for m in moves:
                if m.instance == r['id'] and m.result not in ('evacuated', 'would evacuate'):
                    r['reason'] = '%s: %s' % (m.result, m.error)
        self.result['instances_after'] = found
        self.result['remaining'] = still_here
        self._diff_moves(moves, svc, prepared['service']['after'])
        summary = summary_message(totals, executor.stopped_by)
        if found != len(servers):
            self.fail('instance count changed: %d before, %d after; %s' % (len(servers), found, summary),
                      FailureClass.INCONSISTENT)
        if executor.recheck_refusal:
            self.fail('evacuation of %s stopped: %s; %s. Find out whether the host is back before anything else'
                      % (host, executor.recheck_refusal, summary), FailureClass.INCONSISTENT)
        if totals['failed'] or totals['aborted'] or totals['unresolved']:
            self.fail('evacuation of %s incomplete: %s; %d instance(s) still on the failed host%s'
                      % (host, summary, len(still_here), unresolved_message(moves, self.nova)), FailureClass.INCONSISTENT)
        self.result['msg'] = '%s %s (fencing %s): %s; instances before %d, after %d' % (
            host, 'would be evacuated' if self.module.check_mode else 'evacuated', prepared['fencing'], summary,
            len(servers), found)
        self.module.exit_json(**self.result)


def record(run):
    """What a run did so far, for a failure that comes after its first move."""
    if run is None:
        return {}
    return dict((k, v) for k, v in run.result.items() if k not in ('msg', 'failure', 'exception'))
