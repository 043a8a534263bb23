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
  - With Nova, C(drained) and C(evacuated) record on each instance they move the host it came
    from, as C(leveller:home) metadata, unless it records one already (the first home is the one
    to go back to). M(cloudops.leveller.level_plan) with C(strategy=home) plans the way back
    once the host is enabled again, and a move that lands an instance on its home host removes
    the record (the C(cloudops.leveller.restore) playbook does both).
  - Evacuation uses microversion 2.95 when the cloud offers it. Then Nova leaves evacuated
    instances stopped, and the module starts again those that were running, after it has
    confirmed them on their new host. On older clouds it uses 2.29, where Nova keeps the power
    state itself.
  - With O(libvirt_uris) (plain KVM hosts, no OpenStack), C(drained) puts a maintenance mark on the
    host instead of disabling a compute service (a libvirt secret object with usage name
    C(cloudops-leveller-maintenance) whose description holds the reason; it has no value).
    M(cloudops.leveller.hypervisor_load_info) reads the mark, so the next plans send nothing
    there. A drain then needs O(plan) (there is no scheduler), and shut-off domains are left alone.
    C(enabled) removes the mark (one this collection did not set only with O(force_enable=true)).
    C(evacuated) is refused.
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
      - Each move is always waited for and checked, whatever this says. When a move did not end
        C(moved) (failed, skipped, aborted, unresolved), the host is read once and what is left
        is reported without waiting.
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

- name: Plain KVM hosts, no OpenStack - plan the drain of kvm1 on a libvirt snapshot
  cloudops.leveller.level_plan:
    snapshot: "{{ kvm_snapshot.snapshot }}"
    strategy: drain
    hosts: [kvm1]
  register: kvm_drain

- name: Put kvm1 in maintenance (a mark the next snapshot reads) and carry out the drain
  cloudops.leveller.evacuate_host:
    libvirt_uris: "{{ kvm_uris }}"
    host: kvm1
    state: drained
    plan: "{{ kvm_drain.plan }}"

- name: Take kvm1 out of maintenance
  cloudops.leveller.evacuate_host:
    libvirt_uris: "{{ kvm_uris }}"
    host: kvm1
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
progress_streamed:
  description:
    - True when the action plugin showed the progress lines in the job output while the module
      ran (a task on the controller); absent otherwise.
  returned: when the lines were streamed
  type: bool
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
home_not_recorded:
  description:
    - Instances whose C(leveller:home) could not be written after they moved, with Nova's answer.
      They moved; only the way back has to be planned by hand for them.
  returned: when a record failed
  type: list
  elements: str
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

import traceback

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerModule, connect, openstack_argument_spec)
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import Nova, NovaError
from ansible_collections.cloudops.leveller.plugins.module_utils._libvirt_backend import LibvirtBackendError
from ansible_collections.cloudops.leveller.plugins.module_utils._platform import (
    libvirt_argument_spec, libvirt_params_problem)
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (
    execution_argument_spec, execution_params_problem, moves_from_plan)
from ansible_collections.cloudops.leveller.plugins.module_utils import _fence, _journal
from ansible_collections.cloudops.leveller.plugins.module_utils._host_run import HostRun, record
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import run_paths_problem


def main():
    argument_spec = openstack_argument_spec()
    argument_spec.update(execution_argument_spec())
    argument_spec.update(libvirt_argument_spec())
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
               or libvirt_params_problem(module.params) or run_paths_problem(module.params))
    if not problem and module.params['libvirt_uris'] and module.params['state'] == 'evacuated':
        problem = ('state=evacuated needs Nova: plain libvirt hosts (libvirt_uris) have no evacuation of a failed '
                   'host (no shared instance records to rebuild from). Drain a host that runs with state=drained')
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
        run = HostRun(module, recorded, connect_to=connect, nova_factory=Nova)
        getattr(run, module.params['state'])()
    except (NovaError, LibvirtBackendError) as exc:
        # A late error (the final count, the wait) still returns what was done: moves, totals.
        platform = 'libvirt' if module.params['libvirt_uris'] else 'Nova'
        module.fail_json(msg='evacuate_host stopped on a %s error: %s' % (platform, exc),
                         failure=FailureClass.UNREACHABLE, **record(run))
    except Exception as exc:  # report, never leave a traceback without context
        module.fail_json(msg='evacuate_host stopped unexpectedly: %s' % exc, exception=traceback.format_exc(),
                         failure=FailureClass.INCONSISTENT, **record(run))


if __name__ == '__main__':
    main()
