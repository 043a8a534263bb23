#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: evacuate_host
short_description: Drain a compute host for maintenance, enable it again, or recover the instances of a failed host
version_added: 0.1.0
description:
  - Modelled on C(kubernetes.core.k8s_drain). O(state) says what the host should become.
  - C(drained) disables the host's compute service with O(disabled_reason), so nothing new lands
    there. Then it live-migrates every ACTIVE instance away through the same checked execution
    path as M(cloudops.leveller.live_migrate) (pre-checks, deadline and abort, post-checks,
    lock). With O(migrate_stopped), shut-off instances are cold-migrated and their resize
    confirmed. Finally it waits until the host is empty, or reports what is left and fails.
  - Destinations come from O(plan), a drain plan made by M(cloudops.leveller.level_plan). Without
    a plan, and only with O(allow_scheduler=true), the Nova scheduler picks each destination (the
    fallback), and the instances leave in name order. Then only a coarse
    all-or-nothing check is made before the first move (total free vCPU, RAM and disk on the
    other enabled hosts against what the instances hold).
  - C(enabled) enables the compute service again (and clears C(forced_down)); idempotent.
  - C(evacuated) recovers the instances of a B(failed) host with Nova's evacuate API (rebuild
    on another host). It refuses unless the host's compute service is down B(and) either
    C(forced_down) is set on it or O(fenced=true) says the host is powered off. This is
    Masakari's rule. A host that may still run the instances must never get a second copy of
    them. It disables the service, evacuates each instance, and checks that each is on another
    host in the power state it had before. It also reports the instance count before and after,
    which must be equal.
  - Evacuation uses microversion 2.95 when the cloud offers it. Then Nova leaves evacuated
    instances stopped, and the module starts again those that were running, after it has
    confirmed them on their new host. On older clouds it uses 2.29, where Nova keeps the power
    state itself.
extends_documentation_fragment:
  - cloudops.leveller.openstack
  - cloudops.leveller.execution
  - cloudops.leveller.attributes
  - cloudops.leveller.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the service would be disabled or enabled. It pre-checks every move
        against the live cloud and reports C(would move) or C(would evacuate). Nothing is
        changed and no lock is taken.
  diff_mode:
    support: full
    details:
      - The service status, and the host of each instance, before and after.
options:
  host:
    description:
      - Service host name of the compute host (as in C(openstack compute service list)).
    type: str
    required: true
  state:
    description:
      - What the host should become, see the description.
    type: str
    choices: [drained, enabled, evacuated]
    default: drained
  disabled_reason:
    description:
      - Reason recorded on the disabled compute service. The run's id (RV(run_id)) is added to it,
        as C(<reason> (run <run id>)), so that O(state=enabled) and an operator reading
        C(openstack compute service list --long) can tell which run disabled the host.
    type: str
    default: disabled by cloudops.leveller
  max_plan_age:
    description:
      - With O(plan), refuse a plan whose snapshot (C(snapshot_taken_at)) is older than this many
        seconds; nothing changes. V(0) accepts any age. A plan without C(snapshot_taken_at) is
        not aged.
    type: int
    default: 3600
  require_digest:
    description:
      - With O(plan), refuse the plan when the live cloud's digest over the plan's
        C(snapshot_hosts) differs from its C(snapshot_digest) (or cannot be compared). With
        V(false) the comparison is only reported (RV(plan_check)) and every move is checked against
        the live cloud just before it starts (O(on_drift)).
    type: bool
    default: false
  plan:
    description:
      - With O(state=drained), a drain plan from M(cloudops.leveller.level_plan) for this host
        (its C(plan) key). Its moves must all leave O(host). Instances of O(host) listed in the
        plan's C(skipped) did not fit; with O(all_or_nothing) nothing starts then.
    type: dict
  allow_scheduler:
    description:
      - With O(state=drained) and no O(plan), let the Nova scheduler choose the destination of
        each instance to move. Without it, a drain that has instances to move and no plan fails
        before anything changes; a host with nothing to move is simply disabled.
      - A plan from M(cloudops.leveller.level_plan) (strategy C(drain)) keeps every rule of the
        collection (capacity with ratios, server groups, AZ and aggregates, pins); the scheduler
        keeps Nova's own filters only.
    type: bool
    default: false
  all_or_nothing:
    description:
      - With O(state=drained), start no move unless every instance to move has somewhere to
        go (see the description for how that is judged with and without O(plan)).
    type: bool
    default: true
  migrate_stopped:
    description:
      - With O(state=drained), also cold-migrate SHUTOFF instances and confirm their resize.
        Otherwise they stay on the host and are reported in RV(remaining).
    type: bool
    default: false
  instances:
    description:
      - Act only on these instances of O(host), by name or UUID. The others stay where they are and
        are listed in RV(left_alone). For example, evacuate only the instances that need to be highly
        available, as Masakari does with its C(HA_Enabled) flag.
      - RV(instances_before), RV(instances_after) and RV(remaining) then count only these.
      - An instance that is not on O(host) fails the task before anything changes.
    type: list
    elements: str
  fenced:
    description:
      - With O(state=evacuated), the operator's statement that the host is powered off or
        isolated, for when C(forced_down) is not set on its compute service. Never set it for a
        host that might still be running its instances.
    type: bool
    default: false
  wait:
    description:
      - With O(state=drained), wait after the moves until Nova lists no instance on the host.
      - Each move is always waited for and checked, whatever this says.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the host to be empty (O(wait)).
    type: int
    default: 120
  wait_sleep:
    description:
      - Seconds between two checks of whether the host is empty.
    type: int
    default: 5
  timeout:
    description:
      - Seconds each move may take. A live migration still running then is aborted; a cold
        migration or an evacuation cannot be aborted and is reported as failed.
    type: int
    default: 600
  max_per_host:
    description:
      - Moves in flight at the same time that touch any one host. Moves out of O(host) all
        touch it, so this also bounds the parallelism of a drain or evacuation.
    type: int
    default: 1
  on_failure:
    description:
      - C(stop) starts no further move once one has failed; C(continue) goes on.
      - When unset, C(stop) for O(state=drained) and C(continue) for O(state=evacuated), where
        each instance is rescued on its own.
    type: str
    choices: [stop, continue]
notes:
  - Bringing a failed host back after O(state=evacuated) is done in this order. First start
    its nova-compute, which cleans up the evacuated instances and completes their migration
    records. Then run O(state=enabled). Nova refuses to clear C(forced_down) while evacuation
    records are still C(done).
seealso:
  - module: cloudops.leveller.live_migrate
  - module: cloudops.leveller.level_plan
author:
  - cloudops.leveller contributors (@cloudops-leveller)
'''

EXAMPLES = r'''
- name: Drain compute7 for maintenance, letting the scheduler place the instances
  cloudops.leveller.evacuate_host:
    cloud: prod
    host: compute7
    state: drained
    disabled_reason: "kernel update, ticket OPS-1234"
    allow_scheduler: true
    migrate_stopped: true
    max_parallel: 2
    max_per_host: 2

- name: Drain along a plan from the planner
  cloudops.leveller.evacuate_host:
    cloud: prod
    host: compute7
    state: drained
    plan: "{{ drain.plan }}"

- name: Put it back in service
  cloudops.leveller.evacuate_host:
    cloud: prod
    host: compute7
    state: enabled

- name: Recover the instances of a dead host that IPMI confirmed off
  cloudops.leveller.evacuate_host:
    cloud: prod
    host: compute9
    state: evacuated
    fenced: true
    max_parallel: 3
    max_per_host: 3
'''

RETURN = r'''
host:
  description: The host.
  returned: always
  type: str
state:
  description: The state asked for.
  returned: always
  type: str
service:
  description: The compute service before and after (status, state, forced_down, disabled_reason).
  returned: always
  type: dict
  contains:
    before:
      description: As found.
      type: dict
    after:
      description: As left (predicted in check mode).
      type: dict
moves:
  description: One entry per move, as returned by M(cloudops.leveller.live_migrate).
  returned: always
  type: list
  elements: dict
totals:
  description: Number of moves per result, and C(total).
  returned: always
  type: dict
progress:
  description: One line per finished move, in the order they finished.
  returned: always
  type: list
  elements: str
remaining:
  description: Instances still on the host at the end, each with its id, name, status and reason.
  returned: always
  type: list
  elements: dict
left_alone:
  description: Instances that were not moved on purpose, with the reason (state not movable, SHUTOFF without O(migrate_stopped)).
  returned: always
  type: list
  elements: dict
instances_before:
  description: Number of instances on the host at the start.
  returned: always
  type: int
instances_after:
  description:
    - With O(state=evacuated), how many of those instances exist after the run, once each
      (must equal RV(instances_before)). With O(state=drained), how many of them are left on
      the host.
  returned: always
  type: int
planner:
  description: Where the destinations came from, C(plan), C(scheduler) or C(journal) (with O(resume)).
  returned: always
  type: str
lock:
  description: The lock file used and the seconds spent waiting for it, or null.
  returned: always
  type: dict
journal:
  description:
    - The run journal (see O(journal_dir)); pass it to O(resume) if the run was interrupted. Null
      in check mode and when there was nothing to move.
  returned: always
  type: str
run_id:
  description: The run's id (the journal's name without C(.jsonl)), also written into the reason of a host it disables.
  returned: always
  type: str
resumed:
  description: With O(resume), the journal taken over and what was left in it (see M(cloudops.leveller.live_migrate)).
  returned: always
  type: dict
plan_check:
  description: With O(plan), the plan's age and digest check (see M(cloudops.leveller.live_migrate)).
  returned: always
  type: dict
disabled_by_run:
  description:
    - With O(state=enabled), the id of the cloudops.leveller run that had disabled the host (read
      from its disabled reason), or null when the reason names no run.
  returned: success
  type: str
msg:
  description: One-line summary.
  returned: always
  type: str
'''

import re
import time
import traceback

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerModule, connect, openstack_argument_spec)
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import Nova, NovaError
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    Executor, Move, ProgressLog, diff_of, drain_capacity_shortfall, execution_argument_spec, execution_params_problem,
    live_digest, lock_view, moves_from_journal, moves_from_plan, open_journal, plan_freshness, resume_view,
    run_locked, summary_message, unresolved_message)
from ansible_collections.cloudops.leveller.plugins.module_utils import _journal
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import LockBusy, lock_for_run, run_paths_problem
from ansible_collections.cloudops.leveller.plugins.module_utils._report import UnsafePath

EVACUABLE = ('ACTIVE', 'SHUTOFF', 'ERROR')
_RUN_IN_REASON = re.compile(r'\(run ([A-Za-z0-9_.-]+)\)')


def _svc_view(svc):
    return dict((k, svc.get(k)) for k in ('status', 'state', 'forced_down', 'disabled_reason'))


class HostRun(object):

    def __init__(self, module, recorded=None):
        self.module = module
        self.p = module.params
        self.recorded = recorded
        self.journal = None
        self.conn = connect(module)
        self.nova = Nova(self.conn)
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
        out = dict(self.result)
        out.update(extra)
        self.module.fail_json(msg=msg, failure=failure, **out)

    def service(self):
        try:
            services = self.nova.compute_services()
        except NovaError as exc:
            self.fail('Cannot list nova-compute services: %s' % exc, FailureClass.UNREACHABLE)
        svc = services.get(self.p['host'])
        if svc is None:
            self.fail('unknown host %r: not a nova-compute service host of this cloud (known: %s)'
                      % (self.p['host'], ', '.join(sorted(services)) or 'none'))
        return services, svc

    # -- state: enabled ----------------------------------------------------------------
    def enabled(self):
        services, svc = self.service()
        found = _RUN_IN_REASON.search(svc.get('disabled_reason') or '')
        self.result['disabled_by_run'] = found.group(1) if found else None
        after = dict(_svc_view(svc))
        changed = False
        if svc['forced_down']:
            changed = True
            after['forced_down'] = False
            if not self.module.check_mode:
                try:
                    self.nova.set_forced_down(svc['id'], False)
                except NovaError as exc:
                    self.fail('cannot clear forced_down on %s: %s. Start its nova-compute first (it completes '
                              'the evacuation records), then run state=enabled again'
                              % (self.p['host'], exc), FailureClass.INCONSISTENT)
        if svc['status'] != 'enabled':
            changed = True
            after.update(status='enabled', disabled_reason=None)
            if not self.module.check_mode:
                self.nova.set_service_status(svc['id'], True)
        self.result.update(changed=changed, service={'before': _svc_view(svc), 'after': after},
                           msg='%s %s' % (self.p['host'], 'enabled' if changed else 'already enabled'))
        if self.module._diff:
            self.result['diff'] = {'before': {'service': _svc_view(svc)}, 'after': {'service': after}}
        self.module.exit_json(**self.result)

    # -- shared: run moves ---------------------------------------------------------------
    def execute(self, moves, on_failure, purpose):
        log = ProgressLog(self.p['progress_log'])
        executor = Executor(
            self.nova, timeout=self.p['timeout'], abort_timeout=self.p['abort_timeout'],
            poll_interval=self.p['poll_interval'], max_parallel=self.p['max_parallel'],
            max_per_host=self.p['max_per_host'], on_failure=on_failure, on_drift=self.p['on_drift'],
            check_mode=self.module.check_mode, progress=log.write, journal=self.journal)
        lock = lock_for_run(self.conn, self.p, self.module.check_mode, len(moves), purpose)
        try:
            totals = run_locked(executor, moves, lock, log, purpose, self.module.check_mode)
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
            check, stale = plan_freshness(self.p['plan'], self.p['max_plan_age'], current_digest=live_digest(self.conn))
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

        self.open_journal(moves, 'drain of %s' % host)
        after_svc = self.disable(svc)
        on_failure = self.p['on_failure'] or 'stop'
        executor, totals = self.execute(moves, on_failure, 'drain of %s' % host)
        if totals['moved']:
            self.result['changed'] = True

        remaining = []
        if not self.module.check_mode:
            deadline = time.monotonic() + (self.p['wait_timeout'] if self.p['wait'] else 0)
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
                      % (host, summary, len(remaining), unresolved_message(moves)), FailureClass.INCONSISTENT)
        if remaining and self.p['wait'] and not self.module.check_mode:
            left_text = ', '.join('%s (%s)' % (r['name'], r['reason']) for r in self.result['remaining'])
            self.fail('%s is not empty after %ss: %s; it stays disabled' % (host, self.p['wait_timeout'], left_text),
                      FailureClass.INCONSISTENT)
        self.result['msg'] = '%s %s: %s; %d instance(s) left' % (
            host, 'would be drained' if self.module.check_mode else 'drained', summary, len(remaining))
        self.module.exit_json(**self.result)

    # -- state: evacuated ----------------------------------------------------------------
    def evacuated(self):
        host = self.p['host']
        services, svc = self.service()
        if svc['state'] == 'up' and not svc['forced_down']:
            self.fail('refusing to evacuate %s: its compute service is up, so the instances may still be '
                      'running there and evacuating would make a second copy. Drain a live host with '
                      'state=drained' % host, FailureClass.INCONSISTENT)
        if not svc['forced_down'] and not self.p['fenced']:
            self.fail('refusing to evacuate %s: its compute service is down but not forced_down, and '
                      'fenced is false. Power the host off (or isolate it), then either force the service '
                      'down (openstack compute service set --down %s nova-compute) or pass fenced=true'
                      % (host, host), FailureClass.INCONSISTENT)
        moves = self.resumed_moves(('evacuate',))
        left = []
        if moves is not None:
            # The instances of the interrupted run, each counted once at the end, wherever it is now.
            servers = [dict(id=m['instance'], name=m.get('name')) for m in self.recorded.moves]
            self.result['planner'] = 'journal'
        else:
            servers = sorted(self.nova.servers_on_host(host), key=lambda s: (s['name'] or '', s['id']))
            servers, left = self.select(servers)
            moves = []
            for s in servers:
                if s['status'] in EVACUABLE and not s['task_state']:
                    moves.append(Move(s['id'], host, None, name=s['name'], kind='evacuate'))
                else:
                    left.append(dict(id=s['id'], name=s['name'], status=s['status'],
                                     reason='%s%s: Nova cannot evacuate it; reset its state first' % (
                                         s['status'], ' (task_state %s)' % s['task_state'] if s['task_state'] else '')))
            self.result['planner'] = 'scheduler'
        self.result['instances_before'] = len(servers)
        self.result['left_alone'] = left
        self.result['microversion'] = self.nova.evacuate_microversion()
        self.open_journal(moves, 'evacuation of %s' % host)
        after_svc = self.disable(svc)
        on_failure = self.p['on_failure'] or 'continue'
        executor, totals = self.execute(moves, on_failure, 'evacuation of %s' % host)
        if totals['evacuated']:
            self.result['changed'] = True

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
        self._diff_moves(moves, svc, after_svc)
        summary = summary_message(totals, executor.stopped_by)
        if found != len(servers):
            self.fail('instance count changed: %d before, %d after; %s' % (len(servers), found, summary),
                      FailureClass.INCONSISTENT)
        if totals['failed'] or totals['aborted'] or totals['unresolved']:
            self.fail('evacuation of %s incomplete: %s; %d instance(s) still on the failed host%s'
                      % (host, summary, len(still_here), unresolved_message(moves)), FailureClass.INCONSISTENT)
        self.result['msg'] = '%s %s: %s; instances before %d, after %d' % (
            host, 'would be evacuated' if self.module.check_mode else 'evacuated', summary, len(servers), found)
        self.module.exit_json(**self.result)


def main():
    argument_spec = openstack_argument_spec()
    argument_spec.update(execution_argument_spec())
    argument_spec.update(
        host=dict(type='str', required=True),
        state=dict(type='str', default='drained', choices=['drained', 'enabled', 'evacuated']),
        disabled_reason=dict(type='str', default='disabled by cloudops.leveller'),
        plan=dict(type='dict'),
        allow_scheduler=dict(type='bool', default=False),
        all_or_nothing=dict(type='bool', default=True),
        migrate_stopped=dict(type='bool', default=False),
        fenced=dict(type='bool', default=False),
        instances=dict(type='list', elements='str'),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=120),
        wait_sleep=dict(type='int', default=5),
        timeout=dict(type='int', default=600),
        max_per_host=dict(type='int', default=1),
        on_failure=dict(type='str', choices=['stop', 'continue']),
        max_plan_age=dict(type='int', default=3600),
        require_digest=dict(type='bool', default=False),
    )
    module = LevellerModule(argument_spec=argument_spec, supports_check_mode=True,
                            mutually_exclusive=[('resume', 'plan'), ('resume', 'instances')])
    problem = (execution_params_problem(module.params, ('timeout', 'max_parallel', 'max_per_host', 'wait_sleep'))
               or run_paths_problem(module.params))
    if problem:
        module.fail_json(msg=problem, failure=FailureClass.CONFIGURATION)
    if not problem and module.params['max_plan_age'] < 0:
        problem = 'max_plan_age must not be negative (got %s); 0 accepts a plan of any age' % module.params['max_plan_age']
    if problem:
        module.fail_json(msg=problem, failure=FailureClass.CONFIGURATION)
    if module.params['plan'] is not None and module.params['state'] != 'drained':
        module.fail_json(msg='plan is only used with state=drained')
    if module.params['resume'] is not None and module.params['state'] == 'enabled':
        module.fail_json(msg='resume is used with state=drained or state=evacuated (the state of the interrupted run)')
    recorded = None
    if module.params['resume'] is not None:
        try:
            recorded = _journal.read(module.params['resume'])
        except _journal.JournalError as exc:
            module.fail_json(msg=str(exc), failure=FailureClass.CONFIGURATION)
    if module.params['plan'] is not None:
        try:
            moves_from_plan(module.params['plan'])  # the whole plan, before any connection
        except ValueError as exc:
            module.fail_json(msg=str(exc), failure=FailureClass.CONFIGURATION)
    run = None
    try:
        run = HostRun(module, recorded)
        getattr(run, module.params['state'])()
    except NovaError as exc:
        # A late error (the final count, the wait) still returns what was done: moves, totals.
        module.fail_json(msg='evacuate_host stopped on a Nova error: %s' % exc, failure=FailureClass.UNREACHABLE,
                         **_record(run))
    except Exception as exc:  # report, never leave a traceback without context
        module.fail_json(msg='evacuate_host stopped unexpectedly: %s' % exc, exception=traceback.format_exc(),
                         failure=FailureClass.INCONSISTENT, **_record(run))


def _record(run):
    """What a run did so far, for a failure that comes after its first move."""
    if run is None:
        return {}
    return dict((k, v) for k, v in run.result.items() if k not in ('msg', 'failure', 'exception'))


if __name__ == '__main__':
    main()
