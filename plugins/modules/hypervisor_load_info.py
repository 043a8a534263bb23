#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: hypervisor_load_info
short_description: Snapshot of hypervisor capacity, allocations, measured load and instances
version_added: 0.1.0
description:
  - Reads Nova, Placement and (optionally) Prometheus and libvirt, and returns one consistent
    snapshot (version 1, see the collection's design) of the compute hosts in scope and the
    instances on them, ready for M(cloudops.leveller.level_plan).
  - Without OpenStack (O(sources) without V(nova), for example V([libvirt])), the hosts are the
    keys of O(libvirt_uris) and the instances are their libvirt domains. See O(sources).
  - Nova is read with list calls only, each once and paged (compute services, hypervisors,
    aggregates, all projects' servers, server groups, migrations). Placement has no bulk read of
    inventories (total, reserved, allocation ratio) and usages. C(GET /resource_providers) lists
    providers without them, C(GET /usages) sums per project, and the provider summaries of
    C(GET /allocation_candidates) give only C((total - reserved) * allocation_ratio) rounded down,
    for providers with room left. So Placement is read with two calls per host in scope
    (inventories, and allocations, whose sum is the usages), in a bounded thread pool. The calls
    are counted in RV(summary.api_calls).
  - An allocation that no instance and no migration under way owns (Nova leaves one when a
    nova-compute restarts in the middle of a live migration) is counted as used, as Nova's
    scheduler counts it, named in C(sources.placement.unowned_allocations) and warned about.
  - Prometheus is asked one instant query per metric for all hosts, never one per host.
  - The module fails before returning anything when a source is unreachable, a query is wrong,
    permissions are missing, the sources disagree, or (unless O(allow_missing_load)) a host in
    scope that Nova reports up has no measured load. The RV(failure) field names the class.
  - Instances are C(migratable) when they are ACTIVE with no task, on a host that is up, not
    locked, and not pinned by metadata C(leveller:pin) (V(true), V(yes), V(1)) or the tag
    C(leveller-pin); otherwise C(not_migratable_reason) says why.
author:
  - cloudops.leveller contributors (@cloudops-leveller)
options:
  sources:
    description:
      - Where the snapshot comes from. With V(nova), hosts and instances come from Nova and Placement,
        and V(prometheus) and V(libvirt) add measured load.
      - Without V(nova) (plain KVM hosts without OpenStack), V(libvirt) is required and hosts and
        instances come from libvirt. The hosts are the keys of O(libvirt_uris); capacity is the node
        info (CPUs, memory; disk capacity is unknown, so it is V(0), named in the host's
        C(capacity_unknown), and the planner does not limit disk); every domain is an instance with
        its UUID, name, state as status (V(ACTIVE) when running), vCPUs and maximum memory as flavor;
        a domain that is not running is not migratable. The availability zone is
        O(libvirt_availability_zone), allocation ratios are O(libvirt_allocation_ratio), and there are
        no aggregates nor server groups. No OpenStack option or credential is needed or read.
      - When both V(prometheus) and V(libvirt) are given, Prometheus wins and libvirt fills the hosts
        Prometheus has no load for.
    type: list
    elements: str
    choices: [nova, prometheus, libvirt]
    default: [nova, prometheus]
  scope:
    description:
      - Which compute hosts to include. A host is in scope when it matches every given filter
        (and any entry of each list). Instances on hosts out of scope are left out.
    type: dict
    default: {}
    suboptions:
      availability_zones:
        description:
          - Availability zones to include.
          - Falls back to the environment variable E(OS_LIMIT_TO_AZ) (seed 000), a comma-separated list.
        type: list
        elements: str
      aggregates:
        description:
          - Host aggregates to include (by name).
        type: list
        elements: str
      hosts:
        description:
          - Hosts to include, by Nova compute service host or hypervisor host name. Unknown names are
            an error.
        type: list
        elements: str
  allow_missing_load:
    description:
      - When V(false), a host in scope that Nova reports up but for which no source has a load
        makes the module fail, naming the hosts.
      - When V(true), such hosts are returned with C(load=null) and C(load_source=none).
      - Hosts Nova reports down never make the module fail for lack of load.
      - Applies only when O(sources) names a load source (V(prometheus) or V(libvirt)). With
        V(nova) alone no load is measured, every host has C(load=null), and the planner works on
        allocations.
    type: bool
    default: false
  history_hours:
    description:
      - How far back to read Nova's migrations list for each instance's C(last_moved_at).
      - V(0) reads the whole list.
    type: int
    default: 168
  page_size:
    description:
      - Page size of Nova's list calls (Nova caps it at its C(max_limit), 1000 by default).
    type: int
    default: 1000
  placement_workers:
    description:
      - Number of Placement reads in flight at once.
    type: int
    default: 8
  libvirt_uris:
    description:
      - For the V(libvirt) source, the libvirt URI of each host, keyed by Nova host name, for
        example V(qemu+ssh://nova@compute1/system) or V(qemu+tls://compute1/system).
      - Without V(nova) in O(sources), the keys are the snapshot's host names, and O(scope.hosts)
        picks among them.
      - Connections are read-only. A URI no libvirt driver serves fails with RV(failure=configuration)
        before any host is read; a host that does not answer fails with RV(failure=unreachable).
      - A password in a URI (V(qemu+ssh://user:password@host/system)) is left out of messages and
        of the snapshot's C(sources.libvirt.uris), and masked in the module's results and logs.
    type: dict
  libvirt_availability_zone:
    description:
      - Without V(nova) in O(sources), the availability zone of every libvirt host (the planner keeps
        moves within a zone). Unset, hosts have no zone.
    type: str
  libvirt_allocation_ratio:
    description:
      - Without V(nova) in O(sources), the allocation ratios of every libvirt host (what Nova's
        C(cpu_allocation_ratio) and C(ram_allocation_ratio) are on a cloud).
    type: dict
    default: {}
    suboptions:
      vcpus:
        description: vCPUs per host CPU.
        type: float
        default: 1.0
      memory_mb:
        description: Memory overcommit.
        type: float
        default: 1.0
      disk_gb:
        description: Disk overcommit (disk capacity is unknown without Nova, so it has no effect).
        type: float
        default: 1.0
  libvirt_sample_interval:
    description:
      - Seconds between the two samples of libvirt's cumulative counters; CPU and disk rates are
        averaged over this interval. All hosts are sampled in parallel.
    type: float
    default: 5.0
  weight_cpu:
    description:
      - Weight of CPU in a host's score, from 0 to 100, recorded in the snapshot as
        C(sources.weights.cpu). M(cloudops.leveller.level_plan) uses it as the default of its own
        O(cloudops.leveller.level_plan#module:weight_cpu); a weight given to the planner wins.
        Nothing in this module uses it.
      - Falls back to the environment variable E(PROMETHEUS_METRIC_WEIGHT_CPU) (seed 000).
    type: float
  weight_memory:
    description:
      - Weight of memory in a host's score, from 0 to 100, recorded as C(sources.weights.memory),
        the default of the planner's O(cloudops.leveller.level_plan#module:weight_memory).
      - Falls back to the environment variable E(PROMETHEUS_METRIC_WEIGHT_MEM) (seed 000).
    type: float
  at:
    description:
      - Read the loads at this past time instead of now, for a backtest. Every PromQL instant query
        (O(query_cpu), O(query_memory), O(query_last_sample), O(query_instance_cpu),
        O(query_instance_memory)) is evaluated at it, and O(staleness) is measured against it.
      - Nova and Placement are read as they are now. The snapshot is today's placement with the
        loads of O(at); its C(taken_at) is O(at) (the planner's cooldowns compare C(last_moved_at)
        with it), and C(sources.at) gives both times (C(loads_at), C(placement_at)).
      - An ISO 8601 time with a zone (V(2026-12-06T10:00:00Z), V(2026-12-06T11:00:00+01:00)), Unix
        seconds (V(1765000000)), V(now), or a duration before now with a unit V(s), V(m), V(h), V(d)
        or V(w) (V(-6h), V(-90m), V(-1.5d)). The minus sign is optional; V(6h) is six hours ago too.
      - A time without a zone, or more than 5 seconds in the future, is an error.
      - Not with V(libvirt) in O(sources), which measures only now.
    type: str
  history:
    description:
      - Also read the load history of every host and instance of the snapshot over a grid of times
        (O(history.start), O(history.start) + O(history.step), and so on up to O(history.end)), with
        one Prometheus range query per metric, in requests of at most 10,000 points each.
      - The series are joined to hosts and instances as the instant queries are (O(prometheus_host_label),
        O(prometheus_host_pattern), O(prometheus_host_map), O(prometheus_instance_label), the units).
        O(staleness) does not apply; a grid point without a sample is null.
      - A point up to 0.5 outside 0..1 (the edges of a short C(rate) window, scrape jitter) is
        clamped into it; further out is a units error, as for the instant queries.
      - Returned as RV(load_history), not in the snapshot; see O(history_dest) for big clouds.
      - Needs V(prometheus) in O(sources). The history spans at most 31 days.
    type: dict
    suboptions:
      start:
        description:
          - The first time of the grid, in the forms of O(at) (V(-24h), V(2026-12-06T00:00:00Z)).
          - Must be before O(history.end) and not in the future.
        type: str
        required: true
      end:
        description:
          - The last time the grid may reach, in the forms of O(at). Defaults to O(at) when it is set,
            else now.
        type: str
      step:
        description:
          - Seconds between two grid points, at least V(1).
        type: int
        default: 300
  history_dest:
    description:
      - Write RV(load_history) as JSON to this file (mode 0600, replaced atomically) and return only
        RV(load_history_dest) and RV(load_history_summary). A thousand instances over a week at
        5-minute steps is too much to carry through Ansible's results.
      - Needs O(history). Written in check mode too, like O(dest).
    type: path
  dest:
    description:
      - Also write the snapshot as JSON to this file (mode 0600, replaced atomically), for
        M(cloudops.leveller.level_plan)'s O(cloudops.leveller.level_plan#module:snapshot_file),
        what-if runs and bug reports.
      - The file is written in check mode too, since writing it changes nothing on the cloud;
        C(changed) is always V(false).
    type: path
extends_documentation_fragment:
  - cloudops.leveller.openstack
  - cloudops.leveller.prometheus
  - cloudops.leveller.attributes
  - cloudops.leveller.attributes.INFO_MODULE
  - cloudops.leveller.attributes.ACTION_GROUP
requirements:
  - openstacksdk (for the V(nova) source)
  - requests (for the V(prometheus) source)
  - libvirt-python (for the V(libvirt) source)
notes:
  - Needs an admin role (or a policy granting the same reads) on the cloud. A member of a
    project gets RV(failure=permission).
  - The OpenStack connection options (O(cloud), O(auth) and the others) are used only when
    O(sources) includes V(nova).
  - 'Seed 000 (openstack_load_leveller) compatibility: E(PROMETHEUS_QUERY_URL) sets O(prometheus_url),
    E(PROMETHEUS_CPU_USED) O(query_cpu), E(PROMETHEUS_MEM_USED) O(query_memory),
    E(PROMETHEUS_METRIC_WEIGHT_CPU) O(weight_cpu), E(PROMETHEUS_METRIC_WEIGHT_MEM) O(weight_memory),
    E(OS_LIMIT_TO_AZ) O(scope.availability_zones). Seed 000 joined series on a C(host) label: set
    O(prometheus_host_label=host) when your queries carry it.'
seealso:
  - module: cloudops.leveller.level_plan
'''

EXAMPLES = r'''
- name: Snapshot of every compute host, load from node-exporter through Prometheus
  cloudops.leveller.hypervisor_load_info:
    cloud: production
    prometheus_url: http://prometheus.example.org:9090
  register: load

- name: Only AZ "az1", series labelled with the FQDN, one host named differently
  cloudops.leveller.hypervisor_load_info:
    cloud: production
    scope:
      availability_zones: [az1]
    prometheus_url: https://monitor.example.org/prometheus
    prometheus_token: "{{ vault_prometheus_token }}"
    prometheus_host_label: fqdn
    prometheus_host_map:
      cmp-old-07.example.org: compute07
    dest: /var/lib/leveller/snapshot.json

- name: Plain Prometheus recording rules that already give ratios per hypervisor
  cloudops.leveller.hypervisor_load_info:
    prometheus_url: http://prometheus:9090
    query_cpu: leveller:node_cpu_utilisation:ratio_rate5m
    query_memory: leveller:node_memory_utilisation:ratio
    prometheus_host_label: hypervisor
    prometheus_host_pattern: ''

- name: Without Prometheus, sampling libvirt on each host for 10 seconds
  cloudops.leveller.hypervisor_load_info:
    sources: [nova, libvirt]
    libvirt_uris:
      compute1: qemu+ssh://nova@compute1/system
      compute2: qemu+ssh://nova@compute2/system
    libvirt_sample_interval: 10

- name: Plain KVM hosts without OpenStack, hosts and instances from libvirt
  cloudops.leveller.hypervisor_load_info:
    sources: [libvirt]
    libvirt_uris:
      kvm1: qemu+ssh://root@kvm1.example.org/system
      kvm2: qemu+ssh://root@kvm2.example.org/system
    libvirt_availability_zone: rack1
    libvirt_allocation_ratio:
      vcpus: 4.0
  register: kvm_load

- name: Plan on it
  cloudops.leveller.level_plan:
    snapshot: "{{ load.snapshot }}"
    strategy: balance

- name: A backtest's start, today's placement with the loads of 24 hours ago, and the day since
  cloudops.leveller.hypervisor_load_info:
    cloud: production
    prometheus_url: http://prometheus.example.org:9090
    query_instance_cpu: sum by (resource) (rate(ceilometer_cpu[5m])) / 1e9
    instance_cpu_unit: cores
    at: -24h
    history:
      start: -24h
      end: now
      step: 300
    history_dest: /var/lib/leveller/history.json
    dest: /var/lib/leveller/snapshot-24h-ago.json
  register: past
'''

RETURN = r'''
snapshot:
  description:
    - The snapshot (version 1). See the collection's design for every field.
  returned: success
  type: dict
  contains:
    version:
      description: Snapshot schema version.
      type: int
      sample: 1
    taken_at:
      description: When the snapshot was taken (UTC, ISO-8601); Prometheus queries are evaluated at this time.
      type: str
      sample: '2026-11-22T22:00:00Z'
    sources:
      description: Where the data came from (URLs, microversions, queries, weights).
      type: dict
    hosts:
      description:
        - Compute hosts in scope, sorted by name, with C(capacity), C(allocation_ratio), C(reserved),
          C(used) (Placement), C(load) (measured, 0..1 of the physical host, or null) and C(load_source).
        - Without V(nova) in O(sources), also C(capacity_unknown), the capacity keys libvirt does not
          give (V([disk_gb])), and C(used) is what the host's domains claim.
      type: list
      elements: dict
    instances:
      description:
        - Instances on hosts in scope, with flavor, measured C(load) (0..1 of their own flavor, or
          null), server groups, C(migratable), C(not_migratable_reason) and C(last_moved_at).
      type: list
      elements: dict
summary:
  description: Short figures about the snapshot and what it cost.
  returned: success
  type: dict
  contains:
    hosts:
      description: Number of hosts in the snapshot.
      type: int
    instances:
      description: Number of instances in the snapshot.
      type: int
    migratable_instances:
      description: Number of instances with C(migratable=true).
      type: int
    instances_on_unknown_hosts:
      description:
        - Number of instances Nova places on a host for which it lists no hypervisor (for example a
          deleted compute service). They are in no host of the snapshot; C(sources.nova.instances_on_unknown_hosts)
          names them by host.
      type: int
    unowned_allocations:
      description:
        - Number of allocations on the hosts' resource providers that no instance Nova lists and no
          migration still under way owns, for example that of a live migration Nova set to C(error) when a
          nova-compute restarted in its middle. Placement, and so Nova's scheduler, counts them as used,
          and so does the snapshot's C(used). C(sources.placement.unowned_allocations) names them by host
          (consumer, resources, the migration if the consumer is one), and the module warns once per
          allocation. C(nova-manage placement audit --delete) removes them.
      type: int
    hosts_with_load:
      description: Number of hosts with a measured load.
      type: int
    hosts_without_load:
      description: Hosts with C(load=null).
      type: list
      elements: str
    missing_load_reasons:
      description: Why each host in RV(summary.hosts_without_load) has no load.
      type: dict
    api_calls:
      description:
        - OpenStack API calls made by the snapshot. C(nova) and C(placement) grow with pages, not
          with hosts or instances; C(placement_per_host) is two per host in scope (inventories and
          allocations, of which Placement has no bulk read). When an allocation looks unowned, the
          servers are read once more, and every migration from its host (in C(nova)). C(http_requests) counts every HTTP request
          of the connection (including version discovery), null without V(nova).
      type: dict
      sample: {nova: 6, placement: 1, placement_per_host: 8, total: 15, http_requests: 17}
    prometheus_queries:
      description:
        - Number of PromQL queries (one per metric, plus one for O(staleness)), and the range requests
          of O(history).
      type: int
      sample: 3
    libvirt_hosts:
      description: Number of hosts measured through libvirt.
      type: int
    seconds:
      description: Time spent per source (C(prometheus), C(nova_placement), C(libvirt) when it gives the hosts) and in total.
      type: dict
dest:
  description: The file the snapshot was written to.
  returned: when O(dest) is set
  type: str
load_history:
  description:
    - The load of every host and instance of the snapshot over the grid of O(history). Point V(k) of
      every list is at C(start + k * step); a point without a sample is null.
  returned: when O(history) is set and O(history_dest) is not
  type: dict
  contains:
    start:
      description: Unix time of the first grid point.
      type: float
      sample: 1765000000.0
    step:
      description: Seconds between two grid points.
      type: int
      sample: 300
    times:
      description: Number of grid points, the length of every list.
      type: int
      sample: 289
    hosts:
      description:
        - Per host of the snapshot (every one, all null without series), C(cpu) and C(memory),
          lists of ratios 0..1 of the host, or null.
      type: dict
      sample: {compute1: {cpu: [0.41, 0.43, null], memory: [0.62, 0.62, 0.63]}}
    instances:
      description:
        - Per instance of the snapshot, by UUID, a list for each metric that has a query
          (O(query_instance_cpu), O(query_instance_memory)), in shares 0..1 of the instance's flavor.
          Empty without instance queries.
      type: dict
      sample: {"6f1d1e6c-0c8e-4d47-9d2b-1f5f2c1f7a10": {cpu: [0.2, 0.25, 0.3]}}
    queries:
      description: Range requests sent to Prometheus.
      type: int
      sample: 4
    missing:
      description:
        - C(hosts), the hosts without any CPU sample; C(instances), how many instances of the snapshot
          have no CPU sample at all (all of them without O(query_instance_cpu)).
      type: dict
      sample: {hosts: [compute7], instances: 3}
load_history_dest:
  description: The file RV(load_history) was written to.
  returned: when O(history_dest) is set
  type: str
load_history_summary:
  description:
    - In place of RV(load_history) when O(history_dest) is set, its C(start), C(step), C(times),
      C(queries), and the number of C(hosts) and C(instances) it has series for.
  returned: when O(history_dest) is set
  type: dict
  sample: {start: 1765000000.0, step: 300, times: 289, hosts: 4, instances: 12, queries: 4}
failure:
  description:
    - On failure, its class. V(configuration) (fix the options or the queries), V(unreachable)
      (a service does not answer), V(permission) (the credentials lack rights), V(inconsistent)
      (the sources disagree, or hosts lack load).
  returned: failure
  type: str
  sample: configuration
'''

import json
import os
import tempfile
import time
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible.module_utils.errors import AnsibleFallbackNotFound

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, LevellerModule, connect, openstack_argument_spec, redact_url,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import gather as gather_mod
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import nova as nova_source

try:
    from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import validate as validate_snapshot
except ImportError:  # the snapshot contract module needs Python 3.7+ (dataclasses)
    validate_snapshot = None


def first_set_env(*names):
    """The first of the environment variables that is set and not empty."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise AnsibleFallbackNotFound


def argument_spec():
    spec = openstack_argument_spec()
    spec.update(
        sources=dict(type='list', elements='str', choices=['nova', 'prometheus', 'libvirt'],
                     default=['nova', 'prometheus']),
        scope=dict(type='dict', default={}, apply_defaults=True, options=dict(
            availability_zones=dict(type='list', elements='str',
                                    fallback=(env_fallback, ['OS_LIMIT_TO_AZ'])),
            aggregates=dict(type='list', elements='str'),
            hosts=dict(type='list', elements='str'),
        )),
        allow_missing_load=dict(type='bool', default=False),
        history_hours=dict(type='int', default=168),
        page_size=dict(type='int', default=1000),
        placement_workers=dict(type='int', default=8),
        libvirt_uris=dict(type='dict'),
        libvirt_availability_zone=dict(type='str'),
        libvirt_allocation_ratio=dict(type='dict', default={}, apply_defaults=True, options=dict(
            vcpus=dict(type='float', default=1.0),
            memory_mb=dict(type='float', default=1.0),
            disk_gb=dict(type='float', default=1.0),
        )),
        libvirt_sample_interval=dict(type='float', default=5.0),
        weight_cpu=dict(type='float', fallback=(env_fallback, ['PROMETHEUS_METRIC_WEIGHT_CPU'])),
        weight_memory=dict(type='float', fallback=(env_fallback, ['PROMETHEUS_METRIC_WEIGHT_MEM'])),
        dest=dict(type='path'),
        at=dict(type='str'),
        history=dict(type='dict', options=dict(
            start=dict(type='str', required=True),
            end=dict(type='str'),
            step=dict(type='int', default=300),
        )),
        history_dest=dict(type='path'),
        prometheus_url=dict(type='str', fallback=(first_set_env, ['LEVELLER_PROMETHEUS_URL',
                                                                  'PROMETHEUS_QUERY_URL'])),
        query_cpu=dict(type='str', default=prom.DEFAULT_QUERY_CPU,
                       fallback=(env_fallback, ['PROMETHEUS_CPU_USED'])),
        query_memory=dict(type='str', default=prom.DEFAULT_QUERY_MEMORY,
                          fallback=(env_fallback, ['PROMETHEUS_MEM_USED'])),
        query_last_sample=dict(type='str'),
        staleness=dict(type='int', default=180),
        prometheus_host_label=dict(type='str', default=prom.DEFAULT_HOST_LABEL),
        prometheus_host_pattern=dict(type='str', default=prom.DEFAULT_HOST_PATTERN),
        prometheus_host_map=dict(type='dict'),
        query_instance_cpu=dict(type='str'),
        query_instance_memory=dict(type='str'),
        instance_cpu_unit=dict(type='str', default='ratio', choices=['ratio', 'cores']),
        instance_memory_unit=dict(type='str', default='ratio', choices=['ratio', 'mb']),
        prometheus_instance_label=dict(type='str', default=prom.DEFAULT_INSTANCE_LABEL),
        prometheus_timeout=dict(type='int', default=10),
        prometheus_validate_certs=dict(type='bool', default=True),
        prometheus_ca_cert=dict(type='path'),
        prometheus_token=dict(type='str', no_log=True),
        prometheus_username=dict(type='str'),
        prometheus_password=dict(type='str', no_log=True),
    )
    return spec


def write_dest(module, path, snapshot, prefix='.snapshot-', indent=1):
    """Write the snapshot (or the load history) atomically, readable by the owner only."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix='.json', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump(snapshot, handle, indent=indent, sort_keys=True)
            handle.write('\n')
        module.atomic_move(tmp, path)
        # atomic_move gives a new file the umask's mode; snapshots name every project's instances.
        os.chmod(path, 0o600)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    module = LevellerModule(argument_spec=argument_spec(), supports_check_mode=True,
                            required_by=dict(prometheus_password=['prometheus_username'],
                                             history_dest=['history']),
                            mutually_exclusive=[('prometheus_token', 'prometheus_username')])
    p = module.params
    if 'prometheus' in p['sources'] and not prom.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=prom.REQUESTS_IMPORT_ERROR,
                         failure=FailureClass.CONFIGURATION)
    if 'libvirt' in p['sources']:
        from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as lv
        if not lv.HAS_LIBVIRT:
            module.fail_json(msg=missing_required_lib('libvirt-python'),
                             exception=lv.LIBVIRT_IMPORT_ERROR, failure=FailureClass.CONFIGURATION)
    for key in ('page_size', 'placement_workers'):
        if p[key] < 1:
            module.fail_json(msg='%s must be at least 1' % key, failure=FailureClass.CONFIGURATION)
    for key in ('weight_cpu', 'weight_memory'):
        if p[key] is not None and not 0 <= p[key] <= 100:  # NaN fails too
            module.fail_json(msg='%s must be from 0 to 100 (got %s); it is the planner\'s default weight'
                                 % (key, p[key]), failure=FailureClass.CONFIGURATION)
    if p['libvirt_sample_interval'] <= 0:
        module.fail_json(msg='libvirt_sample_interval must be > 0', failure=FailureClass.CONFIGURATION)
    for key, value in sorted(p['libvirt_allocation_ratio'].items()):
        if value <= 0:
            module.fail_json(msg='libvirt_allocation_ratio.%s must be > 0' % key, failure=FailureClass.CONFIGURATION)
    if 'nova' not in p['sources'] and 'libvirt' not in p['sources']:
        module.fail_json(msg='sources must include nova (hosts and instances from Nova and Placement) or '
                             'libvirt (from the domains of libvirt_uris, for plain KVM hosts); prometheus '
                             'only adds measured load', failure=FailureClass.CONFIGURATION)
    for key in ('dest', 'history_dest'):
        if p[key] and not os.path.isdir(os.path.dirname(os.path.abspath(p[key]))):
            module.fail_json(msg='%s %s: its directory does not exist' % (key, p[key]),
                             failure=FailureClass.CONFIGURATION)

    try:
        # A wrong at or history fails before any connection; gather checks them again at its own now.
        gather_mod.time_options(p, time.time())
    except LevellerError as exc:
        module.fail_json(msg=str(exc), failure=exc.failure)

    # Plain KVM hosts: no OpenStack connection, so no cloud or credentials are needed.
    conn = connect(module) if 'nova' in p['sources'] else None
    try:
        snapshot, summary, history = gather_mod.gather_all(conn, p, validate=validate_snapshot)
    except LevellerError as exc:
        module.fail_json(msg=str(exc), failure=exc.failure)
    except Exception as exc:  # a bug, or an SDK error not classified: still say what it was
        module.fail_json(msg='Unexpected error while taking the snapshot: %s' % redact_url(str(exc)),
                         exception=traceback.format_exc(), failure=FailureClass.INCONSISTENT)
    for line in nova_source.describe_unowned(
            (snapshot['sources'].get('placement') or {}).get('unowned_allocations') or {}):
        module.warn(line)
    result = dict(changed=False, snapshot=snapshot, summary=summary)
    if p['dest']:
        try:
            write_dest(module, p['dest'], snapshot)
        except (IOError, OSError) as exc:
            module.fail_json(msg='Cannot write the snapshot to dest %s: %s' % (p['dest'], exc),
                             failure=FailureClass.CONFIGURATION)
        result['dest'] = p['dest']
    if history is not None and p['history_dest']:
        try:
            # Compact: a week of a thousand instances is tens of megabytes already.
            write_dest(module, p['history_dest'], history, prefix='.history-', indent=None)
        except (IOError, OSError) as exc:
            module.fail_json(msg='Cannot write the load history to history_dest %s: %s' % (p['history_dest'], exc),
                             failure=FailureClass.CONFIGURATION)
        result['load_history_dest'] = p['history_dest']
        result['load_history_summary'] = dict(
            start=history['start'], step=history['step'], times=history['times'], queries=history['queries'],
            hosts=len(history['hosts']), instances=len(history['instances']))
    elif history is not None:
        result['load_history'] = history
    module.exit_json(**result)


if __name__ == '__main__':
    main()
