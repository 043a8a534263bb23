#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: live_migrate
short_description: Live-migrate one instance, or carry out a plan from level_plan, with checks at every step
version_added: 0.1.0
description:
  - Moves one instance (O(instance), to O(destination) or to a host the Nova scheduler picks),
    or every move of a plan made by M(cloudops.leveller.level_plan) (O(plan)), wave by wave.
  - Before each move the live cloud is checked again. The instance must exist, be ACTIVE and
    idle (no task_state) and be on the move's source host. The destination's compute service
    must be enabled and up, and have room for the instance in Placement (allocation ratios and
    reserved amounts included). A difference from the plan is B(drift), handled by O(on_drift).
  - The live-migration API is called at microversion 2.30 with C(block_migration=auto) and never
    with C(force), so Nova's scheduler still validates the destination (server groups,
    aggregates, capacity).
  - Each move has a deadline (O(timeout)). A live migration still running at its deadline is
    aborted through the API and the instance is confirmed ACTIVE on its source; if Nova cannot
    abort it, the result says so.
  - After each move the instance must be ACTIVE and idle on the expected service host
    (C(OS-EXT-SRV-ATTR:host)), else the move is reported as failed. A failed move is never
    retried.
  - Only one run per cloud moves instances at a time (see O(lock)).
  - With O(libvirt_uris) it drives plain KVM hosts through libvirt instead of Nova, with the same
    waves, limits, deadlines, journal, lock and checks (see O(libvirt_uris)).
  - The task fails when any move failed or was aborted; RV(moves) and RV(totals) are returned
    in every case.
extends_documentation_fragment:
  - cloudops.leveller.openstack
  - cloudops.leveller.execution
  - cloudops.leveller.libvirt
  - cloudops.leveller.attributes
  - cloudops.leveller.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - Runs every pre-check against the live cloud and reports C(would move) or why a move
        would be skipped. No call that changes anything is made, and no lock is taken.
  diff_mode:
    support: full
    details:
      - The service host of each instance before and after (predicted in check mode).
options:
  instance:
    description:
      - Name or UUID of one instance to move. A name must match exactly one instance.
      - Mutually exclusive with O(plan).
    type: str
  destination:
    description:
      - Service host to move O(instance) to. When unset, the Nova scheduler picks a host.
      - If the instance is already there, nothing is done and the task reports C(changed=false).
    type: str
  plan:
    description:
      - A plan returned by M(cloudops.leveller.level_plan) (its C(plan) key). Its C(moves) are
        carried out by C(wave), lowest first; a later wave starts when the previous one has
        finished.
      - Mutually exclusive with O(instance) and O(resume).
      - Before any move, the plan's age and digest are checked (O(max_plan_age),
        O(require_digest)); the outcome is returned in RV(plan_check).
    type: dict
  max_plan_age:
    description:
      - Refuse a plan whose snapshot (C(snapshot_taken_at)) is older than this many seconds; nothing
        moves. V(0) accepts any age. A plan without C(snapshot_taken_at) (written by hand) is not
        aged; RV(plan_check) says so.
    type: int
    default: 3600
  require_digest:
    description:
      - The live cloud is digested over the plan's C(snapshot_hosts) and compared with its
        C(snapshot_digest) (instance hosts, flavors, host states).
      - V(false) reports a mismatch in RV(plan_check) and carries out the plan move by move, each
        move checked against the live cloud just before it starts (O(on_drift)).
      - V(true) refuses the whole plan when the digests differ or cannot be compared; nothing moves.
    type: bool
    default: false
  on_failure:
    description:
      - C(stop) starts no further move once a move has failed or was aborted. Moves already in
        flight finish and are checked; the moves not started are reported as C(skipped).
      - C(continue) carries out the rest of the plan.
    type: str
    choices: [stop, continue]
    default: stop
  timeout:
    description:
      - Seconds each move may take, from the API call to the post-check. A live migration still
        running then is aborted.
    type: int
    default: 600
  max_per_host:
    description:
      - Moves in flight at the same time that touch any one host, incoming and outgoing counted
        together.
    type: int
    default: 1
  check_room:
    description:
      - Check in Placement that the destination still has room for the instance before each
        move. Nova's scheduler checks again when the move starts.
    type: bool
    default: true
notes:
  - When the task runs on the controller (C(localhost), a local connection), the collection's
    action plugin shows each line of the progress log in the job output as it is written (each
    wave start and each finished move), in C(ansible-playbook) and in AWX; RV(progress_streamed)
    is then true. On a remote host, with C(async) or C(no_log), the output comes when the module
    returns, and C(tail -f) on O(progress_log) follows the run. See the execution guide.
  - Needs admin credentials (live migration, services and Placement are admin APIs by default).
seealso:
  - module: cloudops.leveller.level_plan
  - module: cloudops.leveller.evacuate_host
author:
  - cloudops.leveller contributors (@cloudops-leveller)
'''

EXAMPLES = r'''
- name: Move one instance to a chosen host
  cloudops.leveller.live_migrate:
    cloud: prod
    instance: web-1
    destination: compute3

- name: Let the Nova scheduler choose the destination
  cloudops.leveller.live_migrate:
    cloud: prod
    instance: 6f1c2f5e-0c9a-4e43-9d57-0a3c1b1d2e3f

- name: Plain KVM hosts, no OpenStack - move one domain, 100 MiB/s at most
  cloudops.leveller.live_migrate:
    libvirt_uris:
      kvm1: qemu+ssh://root@kvm1/system
      kvm2: qemu+ssh://root@kvm2/system
    instance: web-1
    destination: kvm2
    bandwidth: 100

- name: Carry out a plan, two moves at a time, and keep a live progress file
  cloudops.leveller.live_migrate:
    cloud: prod
    plan: "{{ balance.plan }}"
    max_parallel: 2
    max_per_host: 1
    timeout: 900
    on_failure: stop
    progress_log: /var/log/leveller/progress.log
  register: run

- name: Show what happened
  ansible.builtin.debug:
    var: run.progress

- name: Finish what a killed run left (its journal is in its result and its progress log)
  cloudops.leveller.live_migrate:
    cloud: prod
    resume: ~/.local/state/cloudops-leveller/journal/20261206T231500Z-live-migrate-4242.jsonl
'''

RETURN = r'''
moves:
  description: One entry per move, in plan order.
  returned: always
  type: list
  elements: dict
  contains:
    instance:
      description: Instance UUID.
      type: str
    name:
      description: Instance name.
      type: str
    kind:
      description: C(live) (or C(cold) for a plan move of a shut-off instance).
      type: str
    wave:
      description: Wave of the move.
      type: int
    source:
      description: Service host the move starts from.
      type: str
    destination:
      description: Service host asked for, or null when the scheduler picks.
      type: str
    host_after:
      description: Service host of the instance when the move ended.
      type: str
    status_before:
      description: Instance status seen by the pre-check.
      type: str
    status_after:
      description: Instance status when the move ended.
      type: str
    result:
      description: C(moved), C(failed), C(skipped), C(aborted) or, in check mode, C(would move).
      type: str
    seconds:
      description: Seconds from the API call to the end of the post-check, or null if not started.
      type: float
    error:
      description: Why the move was skipped, failed or aborted, with the state the instance was left in.
      type: str
    note:
      description: Anything else worth knowing (for example a migration that completed while being aborted).
      type: str
    migration_id:
      description: Id of Nova's migration record of the move.
      type: int
  sample:
    - instance: 0d3c44f8-8f5c-4a47-a1f5-8a4b6f1d1c11
      name: web-1
      kind: live
      wave: 1
      source: compute1
      destination: compute3
      host_after: compute3
      status_before: ACTIVE
      status_after: ACTIVE
      result: moved
      seconds: 1.6
      error: null
      note: null
      migration_id: 12
totals:
  description: Number of moves per result, and C(total).
  returned: always
  type: dict
  sample: {moved: 3, failed: 0, skipped: 1, aborted: 0, would_move: 0, evacuated: 0, would_evacuate: 0, total: 4}
progress:
  description: One line per finished move, in the order they finished.
  returned: always
  type: list
  elements: str
  sample: ["[1/4] wave 1 live web-1 (0d3c44f8-...) compute1 -> compute3: moved in 1.6 s"]
progress_streamed:
  description:
    - True when the action plugin showed the progress lines in the job output while the module
      ran (a task on the controller); absent otherwise.
  returned: when the lines were streamed
  type: bool
stopped_by:
  description: Name of the move that stopped the run (O(on_failure=stop)), else null.
  returned: always
  type: str
lock:
  description: The lock file used and the seconds spent waiting for it (null in check mode or with O(lock=false)).
  returned: always
  type: dict
  sample: {path: /run/user/0/cloudops-leveller/locks/cloud-5d1c0e2a.lock, waited: 0.0}
journal:
  description:
    - The run journal (see O(journal_dir)); pass it to O(resume) if the run was interrupted.
      Null in check mode and when there was nothing to move.
  returned: always
  type: str
  sample: ~/.local/state/cloudops-leveller/journal/20261206T231500Z-live-migrate-4242.jsonl
run_id:
  description: The run's id (the journal's name without C(.jsonl)), or null without a journal.
  returned: always
  type: str
resumed:
  description:
    - With O(resume), the journal taken over, its run, how many moves had ended before
      (C(ended_before)), how many were left (C(pending)), how many of those the interrupted run
      may have started (C(begun_before), a start call recorded without an end) and how many of
      those had really begun and were tracked to their end, not started again (C(adopted)).
      Null otherwise.
  returned: always
  type: dict
plan_check:
  description:
    - With O(plan), the plan's C(snapshot_taken_at), C(age_seconds), C(max_plan_age), the plan's
      and the live cloud's digests (C(digest_in_plan), C(digest_now), C(digest_match)) and a
      C(digest_note) when they could not be compared. Null otherwise.
  returned: always
  type: dict
msg:
  description: One-line summary.
  returned: always
  type: str
'''

import traceback

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerModule, connect, openstack_argument_spec)
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import Nova, NovaError
from ansible_collections.cloudops.leveller.plugins.module_utils._libvirt_backend import LibvirtBackendError
from ansible_collections.cloudops.leveller.plugins.module_utils._platform import (
    libvirt_argument_spec, libvirt_params_problem, open_platform)
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    Executor, Move, ProgressLog, check_hosts_known, diff_of, execution_argument_spec, execution_params_problem,
    lock_view, moves_from_journal, moves_from_plan, open_journal, plan_freshness, resume_view,
    run_locked, summary_message, unresolved_message)
from ansible_collections.cloudops.leveller.plugins.module_utils import _journal
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import LockBusy, lock_for_run, run_paths_problem
from ansible_collections.cloudops.leveller.plugins.module_utils._report import UnsafePath


def _resolve_instance(nova, ref):
    """The server for a name or UUID; raises ValueError naming the problem."""
    server = nova.get_server(ref)
    if server is not None:
        return server
    found = nova.find_servers(ref)
    if not found:
        raise ValueError('unknown instance %r: no instance has this UUID or name (in any project)' % ref)
    if len(found) > 1:
        raise ValueError('instance name %r is ambiguous (%s): pass the UUID' % (
            ref, ', '.join(s['id'] for s in found)))
    return found[0]


def run(module):
    p = module.params
    recorded = None
    if p['plan'] is not None:
        try:
            moves_from_plan(p['plan'])  # the whole plan, before any connection
        except ValueError as exc:
            module.fail_json(msg=str(exc), failure=FailureClass.CONFIGURATION)
    if p['resume'] is not None:
        try:
            recorded = _journal.read(p['resume'])
        except _journal.JournalError as exc:
            module.fail_json(msg=str(exc), failure=FailureClass.CONFIGURATION)
    platform = open_platform(module, connect_to=connect, nova_factory=Nova)
    nova = platform.nova
    try:
        services = nova.compute_services()
    except (NovaError, LibvirtBackendError) as exc:
        denied = getattr(exc, 'status', None) in (401, 403)
        module.fail_json(msg='Cannot list the %ss%s: %s' % (
            platform.host_word(), ' (admin credentials are needed)' if denied else '', exc),
            failure=FailureClass.PERMISSION if denied else FailureClass.UNREACHABLE)

    # Everything that can be wrong with the input fails here, before any move starts.
    plan_check = None
    try:
        if recorded is not None:
            moves = moves_from_journal(recorded)
        elif p['plan'] is not None:
            moves = moves_from_plan(p['plan'])
            plan_check, stale = plan_freshness(p['plan'], p['max_plan_age'], current_digest=platform.digest)
            if stale:
                raise ValueError(stale)
            if p['require_digest'] and not plan_check['digest_match']:
                raise ValueError('require_digest: the live cloud no longer matches the plan (plan %s, now %s%s); '
                                 'nothing was moved. Take a fresh snapshot and plan again' % (
                                     plan_check['digest_in_plan'], plan_check['digest_now'],
                                     '; ' + plan_check['digest_note'] if plan_check['digest_note'] else ''))
        else:
            if platform.libvirt and not p['destination']:
                raise ValueError('destination: plain libvirt has no scheduler to choose a host; name the '
                                 'destination (one of %s)' % ', '.join(sorted(services)))
            server = _resolve_instance(nova, p['instance'])
            moves = [Move(server['id'], server['host'], p['destination'], name=server['name'])]
        check_hosts_known(moves, services, platform.host_word())
    except ValueError as exc:
        module.fail_json(msg=str(exc), failure=FailureClass.CONFIGURATION, plan_check=plan_check)
    except (NovaError, LibvirtBackendError) as exc:
        module.fail_json(msg='Cannot read the instance: %s' % exc, failure=FailureClass.UNREACHABLE)

    purpose = ('resume of %s' % recorded.run_id if recorded is not None
               else 'live_migrate')
    try:
        journal = open_journal(p, module.check_mode, moves, 'live_migrate', recorded)
    except (UnsafePath, OSError) as exc:
        module.fail_json(msg='journal_dir: %s; nothing was moved' % exc, failure=FailureClass.CONFIGURATION)
    log = ProgressLog(p['progress_log'])
    executor = Executor(
        nova, timeout=p['timeout'], abort_timeout=p['abort_timeout'], poll_interval=p['poll_interval'],
        max_parallel=p['max_parallel'], max_per_host=p['max_per_host'], on_failure=p['on_failure'],
        on_drift=p['on_drift'], check_mode=module.check_mode, check_room=p['check_room'],
        progress=log.write, journal=journal)
    lock = lock_for_run(platform.lock_key, p, module.check_mode, len(moves), purpose)
    try:
        totals = run_locked(executor, moves, lock, log, purpose, module.check_mode)
    except LockBusy as exc:
        module.fail_json(msg=str(exc), holder=exc.holder, failure=FailureClass.INCONSISTENT, moves=[],
                         totals={}, progress=[])
    except UnsafePath as exc:  # nothing has moved: the lock is taken first
        module.fail_json(msg='lock_dir: %s' % exc, failure=FailureClass.CONFIGURATION, moves=[],
                         totals={}, progress=[])

    result = dict(
        changed=(totals['moved'] + totals['would_move']) > 0,
        moves=[m.as_dict() for m in moves],
        totals=totals,
        progress=executor.progress,
        stopped_by=executor.stopped_by,
        lock=lock_view(lock),
        journal=journal.path,
        run_id=journal.run_id,
        resumed=None if recorded is None else resume_view(recorded, moves),
        plan_check=plan_check,
        msg=summary_message(totals, executor.stopped_by) + unresolved_message(moves, nova),
    )
    if executor.journal_error:
        result['msg'] += '; ' + executor.journal_error
    if module._diff:
        result['diff'] = diff_of(moves)
    if totals['failed'] or totals['aborted'] or totals['unresolved'] or executor.journal_error:
        result['failure'] = FailureClass.INCONSISTENT
        module.fail_json(**result)
    module.exit_json(**result)


def main():
    argument_spec = openstack_argument_spec()
    argument_spec.update(execution_argument_spec())
    argument_spec.update(libvirt_argument_spec())
    argument_spec.update(
        instance=dict(type='str'),
        destination=dict(type='str'),
        plan=dict(type='dict'),
        on_failure=dict(type='str', default='stop', choices=['stop', 'continue']),
        timeout=dict(type='int', default=600),
        max_per_host=dict(type='int', default=1),
        check_room=dict(type='bool', default=True),
        max_plan_age=dict(type='int', default=3600),
        require_digest=dict(type='bool', default=False),
    )
    module = LevellerModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('instance', 'plan', 'resume'), ('destination', 'plan', 'resume')],
        required_one_of=[('instance', 'plan', 'resume')],
        supports_check_mode=True,
    )
    problem = (execution_params_problem(module.params) or libvirt_params_problem(module.params)
               or run_paths_problem(module.params))
    if not problem and module.params['max_plan_age'] < 0:
        problem = 'max_plan_age must not be negative (got %s); 0 accepts a plan of any age' % module.params['max_plan_age']
    if problem:
        module.fail_json(msg=problem, failure=FailureClass.CONFIGURATION)
    try:
        run(module)
    except Exception as exc:  # report, never leave a traceback without context
        module.fail_json(msg='live_migrate stopped unexpectedly: %s' % exc, exception=traceback.format_exc(),
                         failure=FailureClass.INCONSISTENT)


if __name__ == '__main__':
    main()
