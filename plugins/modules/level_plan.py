#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: level_plan
short_description: Plan live migrations that level hypervisor load, from a snapshot
version_added: 0.1.0
description:
  - Reads a snapshot made by M(cloudops.leveller.hypervisor_load_info) and returns a plan of live
    migrations, ordered into waves, for M(cloudops.leveller.live_migrate) to carry out.
  - The module never talks to a cloud and never changes anything, so it always returns
    C(changed=false). The same snapshot and options always give the same plan.
  - Every plan keeps capacity (vCPU, RAM and disk with allocation ratios and reserved amounts),
    the availability zone, the aggregates, every server-group policy, pins and exclusions;
    disabled or down hosts never receive.
  - Strategy C(balance) levels host scores (weighted CPU and memory load). Strategy C(overload)
    only brings hosts above O(threshold) back below it.
  - Strategy C(drain) empties the hosts named in O(hosts) for maintenance, spreading their
    instances over the idlest hosts, all-or-nothing unless O(partial=true). Strategy
    C(consolidate) empties whole hosts by packing their instances onto other used hosts under
    O(max_load_after), and lists them in the plan's C(freed_hosts).
  - The snapshot and plan formats, every parameter and both algorithms are described in the
    collection's C(snapshot_plan_reference) guide.
author:
  - cloudops.leveller contributors (@cloudops-leveller)
options:
  snapshot:
    description:
      - The snapshot, as returned by M(cloudops.leveller.hypervisor_load_info) (its C(snapshot) key).
      - Exactly one of O(snapshot) and O(snapshot_file) is required.
      - "The contract is strict (C(docs/schema/snapshot-v1.schema.json)): an unknown key at any level,
        a load outside 0..1, a size no host has or a number that is not finite fails with the field's
        path, the known keys and a near miss, for example C(hosts[0].allocation_ratio.vcpu: unknown key;
        known: vcpus, memory_mb, disk_gb), then: did you mean vcpus?"
    type: dict
  snapshot_file:
    description:
      - Path of a snapshot saved as JSON (or YAML) on the managed node.
    type: path
  strategy:
    description:
      - C(balance) moves instances from busy to idle hosts until the hosts of each pool are level.
      - C(overload) moves the busiest instances off hosts above O(threshold) and nothing else.
      - C(drain) moves every instance off the hosts in O(hosts).
      - C(consolidate) empties whole hosts (fewest instances first) onto other used hosts.
      - C(home) sends instances back to the host recorded in their C(leveller:home) metadata (set
        by M(cloudops.leveller.evacuate_host) when it drains or evacuates a host), once that host
        is up and enabled. Instances that cannot go back are listed in C(skipped) with the reason.
    type: str
    choices: [balance, consolidate, drain, home, overload]
    default: balance
  weight_cpu:
    description:
      - Weight of the CPU load in a host's score.
      - Default the snapshot's C(sources.weights.cpu) (the gatherer's
        O(cloudops.leveller.hypervisor_load_info#module:weight_cpu)), else V(1).
    type: float
  weight_memory:
    description:
      - Weight of the memory load in a host's score.
      - Default the snapshot's C(sources.weights.memory), else V(1).
    type: float
  min_load:
    description:
      - C(balance) acts on a pool only while its busiest host's score is at least this. Default V(0.5).
    type: float
  min_diff:
    description:
      - C(balance) acts on a pool only while its max/min score - 1 is at least this. Default V(0.2).
    type: float
  min_gain:
    description:
      - C(balance) takes a move only if it cuts the sum of squared deviations of host scores from
        the mean by at least this. Default V(0.005).
    type: float
  min_gain_per_gib:
    description:
      - C(balance) also requires each move to cut the spread by at least this much per GiB of RAM
        copied (with O(move_cost_gib) added), which drops the costly tail of a plan where moves
        copy much for little. V(0) turns it off. Default V(0).
      - For example V(0.002) halved the GiB moved at 1,000 hosts for a slightly smaller cut (see
        the balance guide).
    type: float
  move_cost_gib:
    description:
      - C(balance) ranks moves by spread cut per GiB of RAM copied plus this fixed cost per
        migration. Default V(4).
    type: float
  threshold:
    description:
      - C(overload) relieves hosts whose CPU or memory load (a fraction of physical capacity) is
        above this. Default V(0.85).
    type: float
  destination:
    description:
      - Where C(overload) sends a relieved instance. V(headroom) (the default) picks the host of
        its pool with the lowest load (the most headroom), which may be an empty host.
        V(fullest) packs instead - the used host (one holding instances) with the highest load
        that takes it within every rule and stays at or below O(threshold) (best fit), and an
        empty host only when no used host takes it - so relieving hosts does not undo
        consolidation.
    type: str
    choices: [headroom, fullest]
  max_moves:
    description:
      - At most this many moves in the plan; V(0) means no limit. Default V(20); V(100) for
        C(consolidate), which only empties a host if all of its moves fit in the budget; V(0) for
        C(drain), which plans nothing (or, with O(partial), only what fits) when the budget is
        too small, and for C(home), where the instances beyond the budget stay away and are listed.
    type: int
  max_gib:
    description: At most this much RAM (GiB) copied by the plan; V(0) means no limit. Default V(0).
    type: float
  cooldown:
    description:
      - Instances whose C(last_moved_at) is less than this many seconds before the snapshot's
        C(taken_at) stay where they are. Default V(3600); V(0) for C(drain), since a host going
        into maintenance has to be emptied even of instances that moved recently, and for C(home),
        whose instances moved when their host went away.
      - C(consolidate) also never empties a host holding such an instance, since it has just received it.
    type: int
  cross_az:
    description: Allow moves between availability zones. Default V(false).
    type: bool
  keep_aggregates:
    description:
      - Move instances only between hosts in exactly the same host aggregates. Default V(true).
    type: bool
  max_parallel:
    description: At most this many migrations in one wave. Default V(4).
    type: int
  max_per_host:
    description:
      - At most this many migrations in one wave per host, incoming and outgoing counted together.
        Default V(1).
    type: int
  hosts:
    description:
      - C(drain), required there. Names (or hypervisor hostnames) of the hosts to empty. They
        never receive. They may already be disabled; a down host cannot be drained (its instances
        need M(cloudops.leveller.evacuate_host) with C(state=evacuated)).
      - C(home). Only instances whose C(leveller:home) is one of these hosts go back; empty for
        every recorded home.
    type: list
    elements: str
  use_empty_hosts:
    description:
      - C(drain) only. Also place instances on hosts that hold none. Default V(false).
    type: bool
  partial:
    description:
      - C(drain) only. With V(false) (the default) the drain is all-or-nothing. If any instance that
        has to leave cannot (no room, a server-group rule, pinned, not migratable, busy, budget),
        the plan has no moves. With V(true) the plan moves what fits.
      - Either way, C(skipped) lists each instance that cannot leave, with C(blocking=true) and
        its reason. Stopped instances stay without blocking and are listed in C(staying).
    type: bool
  bandwidth_mbps:
    description:
      - C(drain) only. Megabits (10^6 bits) per second one live migration copies at, for the
        makespan bound in the plan's C(bound). Default V(10000) (10 GbE). Nova's
        C(live_migration_bandwidth) is in MiB/s; 1 MiB/s is 8.39 Mbit/s.
    type: float
  max_load_after:
    description:
      - C(consolidate) only. Ceiling on every host that receives, as a fraction of capacity per
        resource. It applies to vCPU, RAM and disk allocations (of what Placement lets the host
        schedule) and to the measured CPU and memory load (of physical capacity, where measured).
        Between 0 (excluded) and 1. Default V(0.8).
    type: float
  max_hosts:
    description:
      - C(consolidate) only. Empty at most this many hosts; V(0) means no limit. Default V(0).
    type: int
  exclude:
    description: Instance ids or names that never move, in addition to pinned instances.
    type: list
    elements: str
  scope:
    description:
      - Plan only for these hosts; the others neither give nor receive. A host must match every
        key given.
    type: dict
    suboptions:
      az:
        description: Availability zones.
        type: list
        elements: str
      aggregate:
        description: Host aggregates (a host in any of them matches).
        type: list
        elements: str
      hosts:
        description: Host names.
        type: list
        elements: str
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
notes:
  - Pin an instance with the metadata C(leveller:pin=true) or the tag C(leveller-pin).
seealso:
  - module: cloudops.leveller.hypervisor_load_info
  - module: cloudops.leveller.live_migrate
'''

EXAMPLES = r'''
- name: Take a snapshot of the cloud
  cloudops.leveller.hypervisor_load_info:
    cloud: prod
  register: load

- name: Plan at most 10 moves that level the load, 2 at a time
  cloudops.leveller.level_plan:
    snapshot: "{{ load.snapshot }}"
    strategy: balance
    max_moves: 10
    max_parallel: 2
  register: balance

- name: Show why the planner stopped
  ansible.builtin.debug:
    msg: "{{ balance.plan.summary.reason }}"

- name: Plan from a saved snapshot, relieving hosts above 90 % CPU or memory in one AZ
  cloudops.leveller.level_plan:
    snapshot_file: /var/lib/leveller/snapshot.json
    strategy: overload
    threshold: 0.9
    scope:
      az: [nova]
    exclude: [db-primary]
  register: relief

- name: Plan the drain of compute7 for maintenance (nothing moves unless everything can)
  cloudops.leveller.level_plan:
    snapshot: "{{ load.snapshot }}"
    strategy: drain
    hosts: [compute7]
  register: drain

- name: Carry it out
  cloudops.leveller.evacuate_host:
    cloud: prod
    host: compute7
    state: drained
    plan: "{{ drain.plan }}"

- name: Plan a consolidation that keeps every receiving host under 75 %
  cloudops.leveller.level_plan:
    snapshot: "{{ load.snapshot }}"
    strategy: consolidate
    max_load_after: 0.75
    max_hosts: 5
  register: packed

- name: After the moves, the freed hosts are the hook for disabling and powering off
  ansible.builtin.debug:
    msg: "{{ packed.plan.freed_hosts }}"

- name: After maintenance, plan the way back of the instances drained from compute7
  cloudops.leveller.level_plan:
    snapshot: "{{ load.snapshot }}"
    strategy: home
    hosts: [compute7]
  register: back

- name: Say which instances cannot go back, and why
  ansible.builtin.debug:
    msg: "{{ back.plan.skipped | map(attribute='reason') | list }}"
'''

RETURN = r'''
plan:
  description: The plan (version 1). The same snapshot and options give a byte-identical plan.
  returned: success
  type: dict
  contains:
    version:
      description: Plan format version.
      type: int
      sample: 1
    strategy:
      description: The strategy that made the plan.
      type: str
      sample: balance
    params:
      description: Every effective parameter, defaults included.
      type: dict
    snapshot_digest:
      description: C(sha256:<hex>) of the snapshot's placement-relevant state; executors refuse a
        plan whose digest no longer matches the cloud.
      type: str
    moves:
      description: The moves, by wave, in plan order within a wave.
      type: list
      elements: dict
      contains:
        instance:
          description: Instance id.
          type: str
        name:
          description: Instance name.
          type: str
        source:
          description: Host the instance leaves.
          type: str
        destination:
          description: Host the instance goes to.
          type: str
        wave:
          description: Wave number, from 1. Moves of one wave may run together.
          type: int
        reason:
          description: Why this move, with the scores before and after.
          type: str
        memory_mb:
          description: RAM to copy (the flavor's), the move's cost.
          type: float
        flavor:
          description: The instance's flavor C(vcpus), C(memory_mb), C(disk_gb).
          type: dict
        source_score_after:
          description: Predicted score of the source after this move.
          type: float
        destination_score_after:
          description: Predicted score of the destination after this move.
          type: float
    waves:
      description: Number of waves.
      type: int
    before:
      description:
        - C(hosts) maps each host to its C(score), C(cpu), C(memory) (fractions) and C(instances);
          C(active=false) marks hosts left alone.
        - C(spread) gives C(max), C(min), C(ratio) (max/min - 1, null when min is 0), C(stddev),
          C(mean), C(active_hosts), C(cpu_max), C(cpu_stddev), C(memory_max), C(memory_stddev)
          over the active hosts.
      type: dict
    after:
      description: The same figures, predicted after every move.
      type: dict
    bound:
      description: Lower bounds known for the strategy's goal, and the gap to them.
      type: dict
    skipped:
      description:
        - Hosts and instances left alone, each with C(kind), C(name) (and C(id), C(host)
          for instances) and C(reason).
        - C(drain) lists there the instances of the drained hosts that cannot leave, with
          C(instance) (the id again) and C(blocking=true).
      type: list
      elements: dict
    staying:
      description:
        - C(drain) only. Stopped instances of the drained hosts, which a live migration cannot move
          and which do not block the drain, each with C(id), C(instance), C(name), C(host),
          C(reason) and C(blocking=false).
      returned: with strategy drain
      type: list
      elements: dict
    drained_hosts:
      description: C(drain) only. The hosts the plan empties of every instance that has to leave.
      returned: with strategy drain
      type: list
      elements: str
    freed_hosts:
      description:
        - C(consolidate) only. The hosts the plan empties. After the moves, a playbook can disable
          their compute service and power them off.
      returned: with strategy consolidate
      type: list
      elements: str
    summary:
      description: C(moves), C(gib_moved), C(acted) and C(reason) (why the planner stopped).
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudops.leveller.plugins.module_utils._plan import PlanError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import (
    SnapshotError, from_dict, load_file,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan

PARAM_OPTIONS = dict(
    weight_cpu=dict(type='float'),
    weight_memory=dict(type='float'),
    min_load=dict(type='float'),
    min_diff=dict(type='float'),
    min_gain=dict(type='float'),
    min_gain_per_gib=dict(type='float'),
    move_cost_gib=dict(type='float'),
    threshold=dict(type='float'),
    destination=dict(type='str', choices=['headroom', 'fullest']),
    hosts=dict(type='list', elements='str'),
    use_empty_hosts=dict(type='bool'),
    partial=dict(type='bool'),
    bandwidth_mbps=dict(type='float'),
    max_load_after=dict(type='float'),
    max_hosts=dict(type='int'),
    max_moves=dict(type='int'),
    max_gib=dict(type='float'),
    cooldown=dict(type='int'),
    cross_az=dict(type='bool'),
    keep_aggregates=dict(type='bool'),
    max_parallel=dict(type='int'),
    max_per_host=dict(type='int'),
    exclude=dict(type='list', elements='str'),
    scope=dict(type='dict', options=dict(
        az=dict(type='list', elements='str'),
        aggregate=dict(type='list', elements='str'),
        hosts=dict(type='list', elements='str'),
    )),
)


def main():
    argument_spec = dict(
        snapshot=dict(type='dict'),
        snapshot_file=dict(type='path'),
        strategy=dict(type='str', default='balance', choices=['balance', 'consolidate', 'drain', 'home', 'overload']),
    )
    argument_spec.update(PARAM_OPTIONS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('snapshot', 'snapshot_file')],
        required_one_of=[('snapshot', 'snapshot_file')],
        supports_check_mode=True,
    )
    params = dict((name, module.params[name]) for name in PARAM_OPTIONS
                  if module.params[name] is not None)
    if 'scope' in params:
        params['scope'] = dict((k, v) for k, v in params['scope'].items() if v)
    try:
        if module.params['snapshot_file']:
            snapshot = load_file(module.params['snapshot_file'])
        else:
            snapshot = from_dict(module.params['snapshot'])
    except SnapshotError as exc:
        module.fail_json(msg="invalid snapshot: %s" % exc)
    try:
        plan = make_plan(snapshot, module.params['strategy'], params)
    except PlanError as exc:
        module.fail_json(msg="invalid parameter: %s" % exc)
    module.exit_json(changed=False, plan=plan.to_dict())


if __name__ == '__main__':
    main()
