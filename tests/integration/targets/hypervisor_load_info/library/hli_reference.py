#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Test-only helper of the hypervisor_load_info integration target: reads the same facts the
# module reports, through openstacksdk's own resource calls (not the module's raw list calls),
# so the test compares the snapshot with an independent reading of Nova and Placement.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: hli_reference
short_description: Independent reading of Nova and Placement (integration tests only)
description:
  - Returns, per compute host, its service state, zone, aggregates and Placement inventory and
    usages, and per instance its host, status, flavor, metadata and tags.
options:
  cloud:
    description: Cloud name in clouds.yaml.
    type: str
    required: true
'''

from ansible.module_utils.basic import AnsibleModule

try:
    import openstack
except ImportError:
    openstack = None

RC = (('VCPU', 'vcpus'), ('MEMORY_MB', 'memory_mb'), ('DISK_GB', 'disk_gb'))


def main():
    module = AnsibleModule(argument_spec=dict(cloud=dict(type='str', required=True)),
                           supports_check_mode=True)
    conn = openstack.connect(cloud=module.params['cloud'])
    hosts = {}
    for svc in conn.compute.services(binary='nova-compute'):
        hosts[svc.host] = {'az': svc.availability_zone, 'enabled': svc.status == 'enabled',
                           'up': svc.state == 'up', 'aggregates': []}
    for agg in conn.compute.aggregates():
        for h in agg.hosts or []:
            if h in hosts:
                hosts[h]['aggregates'].append(agg.name)
    node_of = {}
    for hv in conn.compute.hypervisors(details=True):
        node_of[hv.id] = hv.name
        svc_host = (hv.service_details or {}).get('host')
        if svc_host in hosts:
            hosts[svc_host]['hypervisor_hostname'] = hv.name
            hosts[svc_host]['provider'] = hv.id
    for name, h in hosts.items():
        h['aggregates'] = sorted(h['aggregates'])
        rp = h.pop('provider', None)
        if rp is None:
            continue
        inv = dict((i.resource_class, i) for i in conn.placement.resource_provider_inventories(rp))
        usages = conn.placement.get('/resource_providers/%s/usages' % rp).json()['usages']
        h['capacity'] = dict((k, inv[rc].total) for rc, k in RC if rc in inv)
        h['reserved'] = dict((k, inv[rc].reserved) for rc, k in RC if rc in inv)
        h['allocation_ratio'] = dict((k, float(inv[rc].allocation_ratio)) for rc, k in RC if rc in inv)
        h['used'] = dict((k, usages.get(rc, 0)) for rc, k in RC)
    instances = {}
    for s in conn.compute.servers(details=True, all_projects=True):
        instances[s.id] = {'name': s.name, 'host': s.compute_host, 'status': s.status,
                           'task_state': s.task_state, 'locked': bool(s.is_locked),
                           'metadata': s.metadata or {}, 'tags': sorted(s.tags or []),
                           'flavor_vcpus': s.flavor.vcpus, 'flavor_ram': s.flavor.ram,
                           'project': s.project_id}
    module.exit_json(changed=False, hosts=hosts, instances=instances)


if __name__ == '__main__':
    main()
