#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Test-only helper of the integration suite (not part of the collection's plugins): boots and
# deletes servers on the local cloud through the real Nova API, placed on a chosen host.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: leveller_test_server
short_description: Boot or delete test servers on the local cloud (integration tests only)
description:
  - Boots servers with no network, optionally on a chosen host (microversion 2.74), with
    metadata, tags and a server group, and waits until they are ACTIVE; or deletes them.
options:
  names:
    description: Names of the servers.
    type: list
    elements: str
    required: true
  state:
    description: Whether the servers should exist.
    type: str
    choices: [present, absent]
    default: present
  host:
    description: Compute host to boot on (admin only). Omit to let the scheduler choose.
    type: str
  flavor:
    description: Flavor name.
    type: str
    default: leveller.tiny
  image:
    description: Image name.
    type: str
    default: leveller-image
  metadata:
    description: Server metadata.
    type: dict
    default: {}
  tags:
    description: Server tags.
    type: list
    elements: str
    default: []
  server_group:
    description:
      - Name of a server group to create (if missing) and boot into.
      - With O(state=absent), the group is deleted too once it has no member.
    type: str
  server_group_policy:
    description: Policy of O(server_group) when it is created.
    type: str
    default: anti-affinity
  timeout:
    description: Seconds to wait for ACTIVE or deletion.
    type: int
    default: 120
extends_documentation_fragment:
  - cloudops.leveller.openstack
author: cloudops.leveller contributors
'''

EXAMPLES = r'''
- leveller_test_server:
    cloud: leveller
    names: [t-1, t-2]
    host: compute1
'''

RETURN = r'''
servers:
  description: The servers after the call, with id, name, host and status.
  returned: always
  type: list
  elements: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    connect, openstack_argument_spec)


def server_view(s):
    return dict(id=s.id, name=s.name, host=s.compute_host, status=s.status,
                task_state=s.task_state, metadata=dict(s.metadata or {}))


def find_group(conn, name, policy):
    for g in conn.compute.server_groups(all_projects=False):
        if g.name == name:
            return g
    return conn.compute.create_server_group(name=name, policy=policy)


def main():
    spec = openstack_argument_spec()
    spec.update(
        names=dict(type='list', elements='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        host=dict(type='str'),
        flavor=dict(type='str', default='leveller.tiny'),
        image=dict(type='str', default='leveller-image'),
        metadata=dict(type='dict', default={}),
        tags=dict(type='list', elements='str', default=[]),
        server_group=dict(type='str'),
        server_group_policy=dict(type='str', default='anti-affinity'),
        timeout=dict(type='int', default=120),
    )
    module = AnsibleModule(argument_spec=spec)
    p = module.params
    conn = connect(module)
    existing = {}
    for s in conn.compute.servers(details=True, all_projects=True):
        if s.name in p['names']:
            existing.setdefault(s.name, []).append(s)
    deadline = time.time() + p['timeout']

    if p['state'] == 'absent':
        ids = [s.id for group in existing.values() for s in group]
        for sid in ids:
            conn.compute.delete_server(sid, force=False)
        while ids and time.time() < deadline:
            ids = [sid for sid in ids if conn.compute.find_server(sid, ignore_missing=True, all_projects=True)]
            if ids:
                time.sleep(0.5)
        if ids:
            module.fail_json(msg='servers not deleted within %s s: %s' % (p['timeout'], ids))
        gone = []
        if p['server_group']:  # the test's own group goes with its servers, once it is empty
            for g in conn.compute.server_groups(all_projects=False):
                if g.name == p['server_group'] and not g.member_ids:
                    conn.compute.delete_server_group(g, ignore_missing=True)
                    gone.append(g.name)
        module.exit_json(changed=bool(existing) or bool(gone), servers=[])

    flavor = conn.compute.find_flavor(p['flavor'], ignore_missing=False)
    image = conn.image.find_image(p['image'], ignore_missing=False)
    hints = {}
    if p['server_group']:
        group = find_group(conn, p['server_group'], p['server_group_policy'])
        hints['group'] = group.id
    created = []
    for name in p['names']:
        if name in existing:
            continue
        body = dict(name=name, flavorRef=flavor.id, imageRef=image.id, networks='none',
                    metadata=p['metadata'])
        if p['tags']:
            body['tags'] = p['tags']
        if p['host']:
            body['host'] = p['host']
        req = {'server': body}
        if hints:
            req['os:scheduler_hints'] = hints
        resp = conn.compute.post('/servers', json=req, microversion='2.74')
        if resp.status_code >= 400:
            module.fail_json(msg='boot of %s failed: HTTP %s %s' % (name, resp.status_code, resp.text))
        created.append(resp.json()['server']['id'])
        # The scheduler's view lags behind a burst of boots: one at a time keeps placement exact.
        conn.compute.wait_for_server(conn.compute.get_server(created[-1]), status='ACTIVE',
                                     failures=['ERROR'], interval=0.5, wait=p['timeout'])
    servers = []
    for name in p['names']:
        found = existing.get(name) or [conn.compute.find_server(name, ignore_missing=False)]
        for s in found:
            servers.append(server_view(conn.compute.get_server(s.id)))
    module.exit_json(changed=bool(created), servers=servers)


if __name__ == '__main__':
    main()
