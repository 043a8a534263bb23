#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Test-only helper of the hypervisor_load_info integration target: writes, through the real
# Placement API, an allocation that no instance or migration owns (as Nova leaves one when a
# nova-compute restarts in the middle of a live migration), and deletes it again.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: hli_allocation
short_description: An allocation nothing owns, in the real Placement (integration tests only)
description:
  - With O(state=present), allocates O(resources) on the resource provider named O(host) for a
    new consumer that is no instance or migration, and returns that consumer.
  - With O(state=absent), deletes the allocations of O(consumer).
options:
  cloud:
    description: Cloud name in clouds.yaml.
    type: str
    required: true
  state:
    description: present or absent.
    type: str
    choices: [present, absent]
    default: present
  host:
    description: The resource provider's name (the compute host).
    type: str
  resources:
    description: Resource class -> amount.
    type: dict
  consumer:
    description: The consumer to delete (absent).
    type: str
'''

import uuid

from ansible.module_utils.basic import AnsibleModule

try:
    import openstack
except ImportError:
    openstack = None


def main():
    module = AnsibleModule(argument_spec=dict(
        cloud=dict(type='str', required=True), state=dict(type='str', choices=['present', 'absent'], default='present'),
        host=dict(type='str'), resources=dict(type='dict'), consumer=dict(type='str')))
    p = module.params
    conn = openstack.connect(cloud=p['cloud'])
    if p['state'] == 'absent':
        resp = conn.placement.delete('/allocations/%s' % p['consumer'], raise_exc=False)
        module.exit_json(changed=resp.status_code == 204, consumer=p['consumer'])
    rps = conn.placement.get('/resource_providers?name=%s' % p['host']).json()['resource_providers']
    if len(rps) != 1:
        module.fail_json(msg='expected one resource provider named %s, found %d' % (p['host'], len(rps)))
    consumer = str(uuid.uuid4())
    body = {'allocations': {rps[0]['uuid']: {'resources': dict((k, int(v)) for k, v in p['resources'].items())}},
            'project_id': conn.current_project_id, 'user_id': conn.current_user_id}
    resp = conn.placement.put('/allocations/%s' % consumer, json=body, microversion='1.12', raise_exc=False)
    if resp.status_code != 204:
        module.fail_json(msg='PUT /allocations/%s: HTTP %s %s' % (consumer, resp.status_code, resp.text))
    module.exit_json(changed=True, consumer=consumer, provider=rps[0]['uuid'])


if __name__ == '__main__':
    main()
