#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: level_backtest
short_description: Replay schedules of strategy runs over the cloud's own load history
version_added: 0.2.0
description:
  - Answers "what would this configuration have done to my cloud over the last day?" before it
    is scheduled. It takes the start of the history as a snapshot (from
    M(cloudops.leveller.hypervisor_load_info) with its O(cloudops.leveller.hypervisor_load_info#module:at)
    option, so Nova's current placement with the loads of that time) and the CPU load of every
    instance over the history (the same module's C(load_history)), and replays each configuration
    through a simulated copy of the cloud.
  - A configuration is a schedule of strategy runs, each with the same parameters as
    M(cloudops.leveller.level_plan), run every so often, or when a host is hot, or when the pool is
    cool. At each run the planner sees what the real one would, the replayed placement and loads
    with every zone, aggregate, server group, pin and lock of the snapshot. The moves it plans are
    played out, and each migration takes time and costs CPU.
  - Real rules hold throughout. RAM is checked on every move, and a migrating instance holds its
    RAM on both hosts. A move that would break a rule is refused and counted.
  - It returns the same figures for every configuration, as a table and a picture. The figures are
    migrations, GiB moved, the most moves of one instance, moves back within the ping-pong window,
    hosts on, host-hours overloaded, SLATAH, PDM, energy and planner time.
  - The module talks to nothing and changes nothing (C(changed=false)). Bad input fails before
    anything is replayed, and the message names the field.
  - Only CPU varies over the history. Memory use is the snapshot's. Energy comes from a linear
    power model and counts a host without instances as off, which is what switching empty hosts
    off would save. It is not a measurement of the cloud.
author:
  - cloudops.leveller contributors (@cloudops-leveller)
options:
  snapshot:
    description:
      - The start, as returned by M(cloudops.leveller.hypervisor_load_info) (its C(snapshot) key),
        best gathered with C(at) set to the start of the history.
      - Exactly one of O(snapshot) and O(snapshot_file) is required, unless O(check_only=true).
    type: dict
  snapshot_file:
    description:
      - Path of a snapshot saved as JSON (C(dest) of M(cloudops.leveller.hypervisor_load_info)).
    type: path
  history:
    description:
      - The C(load_history) of M(cloudops.leveller.hypervisor_load_info) (its C(history) option).
        It holds a grid (C(start), C(step), C(times)) and per instance and per host a CPU list
        with one value per grid point.
      - Missing points take the value before them. An instance without a series shares its host's
        busy CPUs in proportion to its vCPUs. Without a host series, the instance keeps its
        snapshot load. The result's C(load_from) counts each case.
      - Exactly one of O(history) and O(history_file) is required, unless O(check_only=true).
    type: dict
  history_file:
    description:
      - Path of a load history saved as JSON (C(history_dest) of
        M(cloudops.leveller.hypervisor_load_info)).
    type: path
  configurations:
    description:
      - The configurations to compare, at least one. Each gets a column in the table and a line
        in the picture.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The configuration's name in the table; unique.
        type: str
        required: true
      schedule:
        description:
          - The strategy runs of this configuration. At each grid point, every due entry plans in
            list order, and its moves start.
        type: list
        elements: dict
        required: true
        suboptions:
          strategy:
            description:
              - The strategy, as in M(cloudops.leveller.level_plan).
            type: str
            required: true
            choices: [balance, consolidate, drain, home, overload]
          params:
            description:
              - "The strategy's parameters, with the same names and checks as the options of
                M(cloudops.leveller.level_plan), for example V({threshold: 0.85, max_moves: 5}).
                They are checked on the start before anything is replayed."
            type: dict
          every:
            description:
              - Seconds between two runs of this entry (at least the history's step). V(0) means
                every grid point.
            type: int
            default: 0
          when:
            description:
              - V(always) runs the entry on its O(configurations[].schedule[].every) period.
              - V(hot) runs it only at a point where some host's CPU demand is above
                O(configurations[].schedule[].level) of its CPUs (default V(1.0)), and at most every
                O(configurations[].schedule[].every) seconds.
              - V(cool) runs it only when the mean CPU use of the hosts in use is below
                O(configurations[].schedule[].level) (default V(0.5)).
            type: str
            choices: [always, hot, cool]
            default: always
          level:
            description:
              - The level of O(configurations[].schedule[].when=hot) or
                O(configurations[].schedule[].when=cool), a share of a host's CPUs.
            type: float
          estimate:
            description:
              - The load the planner sees for each instance, when set. It is the larger of its current
                load and this percentile of its load over the last O(configurations[].schedule[].estimate.window)
                seconds, the past only. This is what a planner would see if it read a percentile
                query instead of the current rate.
            type: dict
            suboptions:
              percentile:
                description:
                  - The percentile, 1 to 100.
                type: float
                required: true
              window:
                description:
                  - Seconds of history.
                type: int
                required: true
  check_only:
    description:
      - Only check O(configurations) (names, keys, every entry's parameters with
        M(cloudops.leveller.level_plan)'s checks) and return, without a snapshot or a history.
        Playbooks do this before they gather, so a typo fails before Prometheus is asked for days
        of data.
      - The checks that need the cloud (for example a drain's hosts) still come when the replay
        starts.
    type: bool
    default: false
  ping_pong_window:
    description:
      - A move back to a host that the instance left less than this many seconds before counts
        as ping-pong.
    type: int
    default: 3600
  migration_mib_per_s:
    description:
      - Speed of one live migration. It copies the flavor's RAM at this rate.
    type: float
    default: 1000
  power_idle_watts:
    description:
      - Power of a host that is on and idle, for the energy estimate.
    type: float
    default: 150
  power_max_watts:
    description:
      - Power of a host at full CPU. Between idle and full the model is linear.
    type: float
    default: 350
extends_documentation_fragment:
  - cloudops.leveller.attributes
  - cloudops.leveller.attributes.INFO_MODULE
notes:
  - The planner time in the table is the time the strategies took on this controller. It gives
    a first idea of what each scheduled run costs.
  - The C(backtest.yml) playbook gathers the history, runs this module and writes the report.
    The guide C(backtest_guide) shows how to compare two configurations before scheduling one.
seealso:
  - module: cloudops.leveller.hypervisor_load_info
  - module: cloudops.leveller.level_plan
'''

EXAMPLES = r'''
- name: The last day of the cloud, from its Prometheus
  cloudops.leveller.hypervisor_load_info:
    cloud: mycloud
    prometheus_url: http://prometheus:9090
    query_instance_cpu: sum by (resource) (rate(ceilometer_cpu[5m])) / 1e9
    instance_cpu_unit: cores
    at: -24h
    history:
      start: -24h
      end: now
      step: 300
  register: gathered

- name: Balance hourly against relieving hot hosts only
  cloudops.leveller.level_backtest:
    snapshot: "{{ gathered.snapshot }}"
    history: "{{ gathered.load_history }}"
    configurations:
      - name: balance-hourly
        schedule:
          - strategy: balance
            every: 3600
            params: {max_moves: 10, cooldown: 3600}
      - name: overload-when-hot
        schedule:
          - strategy: overload
            when: hot
            level: 0.9
            params: {threshold: 0.85}
          - strategy: consolidate
            every: 3600
            params: {max_load_after: 0.8, cooldown: 3600}
  register: backtest

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ backtest.backtest.table.split('\n') }}"
'''

RETURN = r'''
checked:
  description: The names of the configurations, all checked.
  returned: success
  type: list
  elements: str
backtest:
  description: The replay of every configuration over the history.
  returned: success, unless O(check_only=true)
  type: dict
  contains:
    start:
      description: The first grid point (ISO 8601).
      type: str
    end:
      description: The end of the replayed time, one step after the last grid point (each point holds for one step).
      type: str
    step:
      description: Seconds between grid points.
      type: float
    ticks:
      description: Grid points replayed.
      type: int
    hosts:
      description: Hosts of the snapshot.
      type: int
    instances:
      description: Instances replayed (those on a host of the snapshot).
      type: int
    load_from:
      description: >-
        How many instances took their load from their own series (C(instance series)), from
        their host's (C(host series)), from the snapshot alone (C(snapshot)), or had none
        (C(none)). Instances that are stopped in the snapshot (C(SHUTOFF), C(SUSPENDED),
        C(PAUSED), C(SHELVED), C(ERROR)) are counted in C(stopped) and use no CPU.
      type: dict
    configurations:
      description: >-
        Per configuration, in the order given, its C(name) and figures (C(migrations),
        C(gib_moved), C(max_migrations_per_vm), C(ping_pong), C(active_hosts_mean),
        C(overloaded_host_hours), C(slatah), C(pdm), C(slav), C(energy_kwh), C(refused_moves),
        C(plan_seconds), C(plan_runs), C(hosts_used_at_end)). It also gives C(timeline), which per
        grid point has C(t) (seconds from the start), the hosts C(active) and C(overloaded), the
        C(energy_kwh) used since the point before, and the C(migrations) started with their
        C(gib_moved) and the C(plan_seconds) they took. Then C(moves) lists the first 1,000 moves
        with C(at), C(instance), C(name), C(source) and C(destination).
      type: list
      elements: dict
    table:
      description: The figures side by side as text, one column per configuration.
      type: str
    svg:
      description: The picture (SVG) of hosts on, hosts overloaded and migrations started over the history.
      type: str
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudops.leveller.plugins.module_utils import _backtest as backtest
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import (
    SnapshotError, from_dict, load_file,
)

STRATEGIES = ['balance', 'consolidate', 'drain', 'home', 'overload']


def argument_spec():
    entry = dict(
        strategy=dict(type='str', required=True, choices=STRATEGIES),
        params=dict(type='dict'),
        every=dict(type='int', default=0),
        when=dict(type='str', default='always', choices=['always', 'hot', 'cool']),
        level=dict(type='float'),
        estimate=dict(type='dict', options=dict(
            percentile=dict(type='float', required=True),
            window=dict(type='int', required=True),
        )),
    )
    return dict(
        snapshot=dict(type='dict'),
        snapshot_file=dict(type='path'),
        history=dict(type='dict'),
        history_file=dict(type='path'),
        configurations=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            schedule=dict(type='list', elements='dict', required=True, options=entry),
        )),
        check_only=dict(type='bool', default=False),
        ping_pong_window=dict(type='int', default=3600),
        migration_mib_per_s=dict(type='float', default=1000.0),
        power_idle_watts=dict(type='float', default=150.0),
        power_max_watts=dict(type='float', default=350.0),
    )


def _history(module):
    path = module.params['history_file']
    if not path:
        return module.params['history']
    if not os.path.isfile(path):
        module.fail_json(msg='history_file %s: no such file (the history_dest of hypervisor_load_info)' % path)
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg='history_file %s: not a load history as JSON (%s)' % (path, exc))


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[('snapshot', 'snapshot_file'), ('history', 'history_file')],
        required_if=[('check_only', False, ('snapshot', 'snapshot_file'), True),
                     ('check_only', False, ('history', 'history_file'), True)],
        supports_check_mode=True,
    )
    p = module.params
    if p['ping_pong_window'] < 0:
        module.fail_json(msg='ping_pong_window must be >= 0 seconds, got %d' % p['ping_pong_window'])
    configurations = []
    for configuration in p['configurations']:
        schedule = []
        for entry in configuration['schedule']:
            schedule.append(dict((k, v) for k, v in entry.items() if v is not None))
        configurations.append({'name': configuration['name'], 'schedule': schedule})
    try:
        checked = backtest.check_configurations(configurations)
    except backtest.BacktestError as exc:
        module.fail_json(msg=str(exc))
    names = [c['name'] for c in checked]
    if p['check_only']:
        module.exit_json(changed=False, checked=names)
    try:
        if p['snapshot_file']:
            snapshot = load_file(p['snapshot_file'])
        else:
            snapshot = from_dict(p['snapshot'])
    except SnapshotError as exc:
        module.fail_json(msg='invalid snapshot: %s' % exc)
    history = _history(module)
    try:
        result = backtest.run(snapshot, history, configurations, ping_pong_window=float(p['ping_pong_window']),
                              migration_mib_per_s=p['migration_mib_per_s'],
                              power_idle_watts=p['power_idle_watts'], power_max_watts=p['power_max_watts'])
    except backtest.BacktestError as exc:
        module.fail_json(msg=str(exc))
    result['svg'] = backtest.svg(result, 'Backtest, %s to %s' % (result['start'], result['end']))
    module.exit_json(changed=False, checked=names, backtest=result)


if __name__ == '__main__':
    main()
