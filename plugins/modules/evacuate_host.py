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
  - C(enabled) enables the compute service again and clears C(forced_down); idempotent. After an
    evacuation it refuses while the host's nova-compute has not started again (Nova deletes the
    evacuated guests from the host only when nova-compute starts there, and its evacuation records
    stay C(done) until then) or does not report, and C(forced_down) stays set until then. A host disabled with a
    reason that is not this collection's is enabled only with O(force_enable=true). A half-done
    enable (forced_down cleared, the service still disabled) is reported and completed.
  - C(evacuated) recovers the instances of a B(failed) host with Nova's evacuate API (rebuild
    on another host). It evacuates only a host that is proven off, in this order, each step in
    RV(steps). (a) It refuses while the host's compute service reads up or has reported within
    O(service_down_time), as nova-compute is alive there, maybe only cut off, with its instances
    running. C(forced_down) set by hand proves nothing. (b) It refuses when more than
    O(max_down_fraction) of the compute hosts are down at once. (c) With O(fence), it powers the
    host off through its BMC (Redfish or IPMI, a hard off) and waits until the BMC reads off.
    Without O(fence), only O(fenced=true) with a last report older than O(min_down_seconds) is
    taken, and RV(fencing) says C(asserted) (the operator's word, not verified). (d) It sets
    C(forced_down) and disables the service. (e) Before each evacuation, it checks again that the
    host is still forced down, silent and (with O(fence)) off at its BMC; if not, no further
    evacuation starts and the task fails.
  - Instances with Masakari's C(HA_Enabled=True) metadata, or a higher C(leveller:priority), go
    first, each group in its own wave. O(reserved_hosts) are the preferred destinations (the
    scheduler still validates them). Each evacuated instance gets C(leveller:home) metadata naming
    the host it came from. The count of instances before and after must be equal.
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
      - With O(state=evacuated) the reason is always C(evacuated by cloudops.leveller at <time>
        (run <run id>)), which O(state=enabled) recognises.
      - With O(state=enabled), a reason equal to this one, or one naming cloudops.leveller or one of
        its runs, counts as this collection's; any other needs O(force_enable).
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
      - With O(state=evacuated) and no O(fence), the operator's statement that the host is powered
        off or isolated. It is taken only when the host's last report is older than
        O(min_down_seconds). Never set it for a host that might still be running its instances.
    type: bool
    default: false
  fence:
    description:
      - With O(state=evacuated), the host's BMC. The module powers the host off through it (a hard
        off, never a reboot) and waits until it reads off before anything is evacuated, and reads
        it again before each evacuation.
      - Needs C(sushy) (Redfish) or C(pyghmi) (IPMI) on the host that runs the module.
    type: dict
    suboptions:
      driver:
        description: C(redfish) or C(ipmi).
        type: str
        choices: [redfish, ipmi]
      address:
        description:
          - The BMC's host name or IP address. For Redfish also C(host:port) or an C(http(s)://) URL
            without a path.
        type: str
      port:
        description: The BMC's port (Redfish default 443, IPMI default 623).
        type: int
      username:
        description: BMC user.
        type: str
      password:
        description: BMC password. Never shown in any output.
        type: str
      system_id:
        description: Redfish only, the system's id or C(/redfish/v1/Systems/<id>).
        type: str
      verify:
        description: Redfish only, check the BMC's TLS certificate (default true).
        type: bool
      ca:
        description: Redfish only, a PEM CA bundle to check the BMC's certificate with.
        type: path
      fence_timeout:
        description: Seconds to wait for the BMC to read off after the power-off order (default 60).
        type: int
  service_down_time:
    description:
      - Nova's C([DEFAULT]service_down_time) on this cloud, in seconds. With O(state=evacuated), a
        host that reported within it is never evacuated. With O(state=enabled), a host must have
        reported within it to be enabled after an evacuation.
    type: int
    default: 60
  min_down_seconds:
    description:
      - With O(fenced=true) and no O(fence), how long the host must have been silent. Default twice
        O(service_down_time); at least O(service_down_time).
    type: int
  max_down_fraction:
    description:
      - With O(state=evacuated), refuse when more than this share of the compute hosts are down at
        once (the controller is then more likely cut off than half the cloud dead). V(1.0) turns the
        brake off.
    type: float
    default: 0.5
  reserved_hosts:
    description:
      - With O(state=evacuated), hosts kept free for recoveries, tried first as destinations (first
        fit by free capacity). Instances that fit none go where the scheduler puts them.
    type: list
    elements: str
    default: []
  force_enable:
    description:
      - With O(state=enabled), enable a host that was disabled with a reason that is not this
        collection's (someone else disabled it on purpose).
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

- name: Recover a failed host, powered off through its Redfish BMC first
  cloudops.leveller.evacuate_host:
    cloud: prod
    host: cmp042
    state: evacuated
    fence:
      driver: redfish
      address: bmc-cmp042.example.com
      username: "{{ bmc_user }}"
      password: "{{ bmc_password }}"
      system_id: "1"
    reserved_hosts: [cmp090, cmp091]
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
fencing:
  description:
    - With O(state=evacuated), how the host was proven off. C(verified) means its BMC read off.
      C(asserted) means O(fenced=true) without O(fence), the operator's word, not verified.
  returned: with state=evacuated, once the host is fenced
  type: str
steps:
  description:
    - With O(state=evacuated) or O(state=enabled), each step of the fencing or re-enable sequence
      with C(step), C(result) and C(detail). On a refusal, the last one says why.
  returned: with state=evacuated or state=enabled
  type: list
  elements: dict
notes:
  description: With O(state=evacuated), remarks on ordering and reserved hosts, such as a reserved host that is down.
  returned: with state=evacuated
  type: list
  elements: str
half_state:
  description: With O(state=enabled), whether an earlier enable was left half done (and is completed now).
  returned: with state=enabled
  type: bool
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
    FailureClass, LevellerError, LevellerModule, connect, openstack_argument_spec)
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import Nova, NovaError
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    Executor, Move, ProgressLog, diff_of, drain_capacity_shortfall, execution_argument_spec, execution_params_problem,
    live_digest, lock_view, moves_from_journal, moves_from_plan, open_journal, plan_freshness, resume_view,
    run_locked, summary_message, unresolved_message)
from ansible_collections.cloudops.leveller.plugins.module_utils import _journal
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import (
    LockBusy, NoLock, lock_for_run, run_paths_problem)
from ansible_collections.cloudops.leveller.plugins.module_utils import _fence, _recovery
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
        if self.journal is not None:
            self.journal.close()  # a journal with no record is removed
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
        """Re-enable the host (``_recovery.reenable``): after an evacuation only once its nova-compute
        has started again and cleaned up; a host disabled by someone else only with force_enable."""
        services, svc = self.service()
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

    # -- shared: run moves ---------------------------------------------------------------
    def execute(self, moves, on_failure, purpose, held_lock=None, recheck=None, fencing=None):
        """Run the moves under the cloud lock (``held_lock``: taken already by the caller)."""
        log = ProgressLog(self.p['progress_log'])
        executor = Executor(
            self.nova, timeout=self.p['timeout'], abort_timeout=self.p['abort_timeout'],
            poll_interval=self.p['poll_interval'], max_parallel=self.p['max_parallel'],
            max_per_host=self.p['max_per_host'], on_failure=on_failure, on_drift=self.p['on_drift'],
            check_mode=self.module.check_mode, progress=log.write, journal=self.journal, recheck=recheck)
        lock = held_lock or lock_for_run(self.conn, self.p, self.module.check_mode, len(moves), purpose)
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
        homes = dict((s['id'], s) for s in servers)
        if not self.module.check_mode:
            for m in moves:
                if m.result != 'evacuated':
                    continue
                meta = _recovery.home_metadata(homes.get(m.instance) or {}, host)
                if meta:
                    try:
                        self.nova.set_server_metadata(m.instance, meta)
                    except NovaError as exc:
                        notes.append('%s (%s): could not record its home host %s: %s' % (m.name, m.instance, host, exc))

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
                      % (host, summary, len(still_here), unresolved_message(moves)), FailureClass.INCONSISTENT)
        self.result['msg'] = '%s %s (fencing %s): %s; instances before %d, after %d' % (
            host, 'would be evacuated' if self.module.check_mode else 'evacuated', prepared['fencing'], summary,
            len(servers), found)
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
        fence=dict(type='dict', options=_fence.fence_argument_spec()),
        service_down_time=dict(type='int', default=60),
        min_down_seconds=dict(type='int'),
        max_down_fraction=dict(type='float', default=0.5),
        reserved_hosts=dict(type='list', elements='str', default=[]),
        force_enable=dict(type='bool', default=False),
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
