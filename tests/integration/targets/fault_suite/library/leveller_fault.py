#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Test-only helper of the fault suite (not part of the collection's plugins): changes and reads
# the live cloud the way an operator or a failure would, through the real Nova API.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: leveller_fault
short_description: Break and restore the local cloud for the fault suite (integration tests only)
description:
  - C(service) sets a compute service's status and/or forced_down flag.
  - C(wait_service) waits until a compute service is up (with a heartbeat newer than the call)
    or down. Down also waits until its last report is O(min_age) seconds old by the measure
    C(evacuate_host) uses (the younger of its age on this clock and against the newest report of
    the other hosts): Nova reads a host down as soon as its own age passes service_down_time,
    while the other hosts' reports may be up to report_interval behind.
  - C(stop) stops servers and waits until they are SHUTOFF.
  - C(wait_task_state) waits until a server has the given task_state (or none, with C(null)).
  - C(servers) reads servers by name (all projects) without creating any; each name may match 0..n.
  - C(allocations) reads, straight from Placement and Nova, the consumers of the allocations on
    a host's resource provider, each with whether it is a server Nova has and the status of the
    migration it is, if it is one (the oracle for the snapshot's unowned allocations).
  - C(mark) changes servers the way an operator does between planning and execution, or the
    way Nova does on a fault; C(lock), C(metadata) and C(reset_state) (C(os-resetState), admin).
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [service, wait_service, stop, wait_task_state, servers, mark, allocations]
  lock:
    description: Lock (true) or unlock (false) the servers (mark).
    type: bool
  metadata:
    description: Metadata items to set on the servers (mark).
    type: dict
  reset_state:
    description: Reset the servers' state (mark); error is what Nova sets on a failure.
    type: str
    choices: [active, error]
  host:
    description: Compute host (service actions).
    type: str
  enabled:
    description: Enable (true) or disable (false) the service.
    type: bool
  reason:
    description: Disabled reason.
    type: str
  forced_down:
    description: Set or clear forced_down.
    type: bool
  state:
    description:
      - Service state to wait for. C(reporting) waits for a heartbeat newer than the call whatever
        Nova reads (a forced-down service reports but reads down).
    type: str
    choices: [up, down, reporting]
  names:
    description: Server names (stop, wait_task_state).
    type: list
    elements: str
  task_state:
    description: Task state to wait for (wait_task_state); omit to wait for none.
    type: str
  timeout:
    description: Seconds to wait.
    type: int
    default: 90
  min_age:
    description: With O(state=down), the age in seconds the host's last report must reach as well.
    type: int
    default: 0
extends_documentation_fragment:
  - cloudops.leveller.openstack
author: cloudops.leveller contributors
'''

EXAMPLES = r'''
- leveller_fault:
    cloud: leveller
    action: service
    host: compute3
    enabled: false
    reason: fault suite
'''

RETURN = r'''
service:
  description: The compute service after the action (service actions).
  returned: when a service action ran
  type: dict
servers:
  description: The servers after the action (server actions).
  returned: when a server action ran
  type: list
  elements: dict
'''

import datetime
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    connect, openstack_argument_spec)
from ansible_collections.cloudops.leveller.plugins.module_utils._recovery import heartbeat_age


def _services(conn):
    resp = conn.compute.get('/os-services?binary=nova-compute', microversion='2.53')
    return dict((s['host'], s) for s in resp.json()['services'])


def _find(conn, name):
    resp = conn.compute.get('/servers/detail?all_tenants=1&name=^%s$' % name, microversion='2.60')
    return [dict(id=s['id'], name=s['name'], host=s.get('OS-EXT-SRV-ATTR:host'), status=s['status'],
                 task_state=s.get('OS-EXT-STS:task_state'))
            for s in resp.json()['servers'] if s['name'] == name]


def _server(conn, name):
    found = _find(conn, name)
    if len(found) != 1:
        raise ValueError('expected one server named %s, found %d' % (name, len(found)))
    return found[0]


def _utc(text):
    return datetime.datetime.strptime(text[:19], '%Y-%m-%dT%H:%M:%S')


def main():
    spec = openstack_argument_spec()
    spec.update(
        action=dict(type='str', required=True,
                    choices=['service', 'wait_service', 'stop', 'wait_task_state', 'servers', 'mark',
                             'allocations']),
        lock=dict(type='bool'),
        metadata=dict(type='dict'),
        reset_state=dict(type='str', choices=['active', 'error']),
        host=dict(type='str'),
        enabled=dict(type='bool'),
        reason=dict(type='str'),
        forced_down=dict(type='bool'),
        state=dict(type='str', choices=['up', 'down', 'reporting']),
        names=dict(type='list', elements='str'),
        task_state=dict(type='str'),
        timeout=dict(type='int', default=90),
        min_age=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=spec)
    p = module.params
    conn = connect(module)
    deadline = time.time() + p['timeout']
    if p['action'] == 'service':
        svc = _services(conn)[p['host']]
        changed = False
        if p['forced_down'] is not None and bool(svc['forced_down']) != p['forced_down']:
            resp = conn.compute.put('/os-services/%s' % svc['id'], json={'forced_down': p['forced_down']},
                                    microversion='2.53', raise_exc=False)
            if resp.status_code >= 400:
                module.fail_json(msg='forced_down=%s on %s: HTTP %s %s' % (p['forced_down'], p['host'],
                                                                           resp.status_code, resp.text))
            changed = True
        if p['enabled'] is not None and (svc['status'] == 'enabled') != p['enabled']:
            body = {'status': 'enabled' if p['enabled'] else 'disabled'}
            if not p['enabled'] and p['reason']:
                body['disabled_reason'] = p['reason']
            conn.compute.put('/os-services/%s' % svc['id'], json=body, microversion='2.53')
            changed = True
        module.exit_json(changed=changed, service=_services(conn)[p['host']])
    if p['action'] == 'wait_service':
        since = datetime.datetime.utcnow()
        while True:
            services = _services(conn)
            svc = services[p['host']]
            fresh = svc.get('updated_at') and _utc(svc['updated_at']) > since
            if p['state'] == 'down' and svc['state'] == 'down':
                low = heartbeat_age(p['host'], services, time.time())[0]
                if low is None or low >= p['min_age']:
                    module.exit_json(changed=False, service=svc, age=low)
            elif (p['state'] == 'reporting' and fresh) or (svc['state'] == p['state'] == 'up' and fresh):
                module.exit_json(changed=False, service=svc)
            if time.time() > deadline:
                module.fail_json(msg='%s did not become %s within %ss' % (p['host'], p['state'], p['timeout']),
                                 service=svc)
            time.sleep(1)
    if p['action'] == 'stop':
        for name in p['names']:
            s = _server(conn, name)
            if s['status'] != 'SHUTOFF':
                conn.compute.post('/servers/%s/action' % s['id'], json={'os-stop': None}, microversion='2.60')
        while True:
            servers = [_server(conn, n) for n in p['names']]
            if all(s['status'] == 'SHUTOFF' and not s['task_state'] for s in servers):
                module.exit_json(changed=True, servers=servers)
            if time.time() > deadline:
                module.fail_json(msg='servers not SHUTOFF within %ss' % p['timeout'], servers=servers)
            time.sleep(0.5)
    if p['action'] == 'mark':
        for name in p['names']:
            s = _server(conn, name)
            calls = []
            if p['metadata']:
                calls.append(('post', '/servers/%s/metadata' % s['id'], {'metadata': p['metadata']}))
            if p['lock'] is not None:
                calls.append(('post', '/servers/%s/action' % s['id'], {'lock': None} if p['lock'] else {'unlock': None}))
            if p['reset_state']:
                calls.append(('post', '/servers/%s/action' % s['id'], {'os-resetState': {'state': p['reset_state']}}))
            for method, url, body in calls:
                resp = getattr(conn.compute, method)(url, json=body, microversion='2.60', raise_exc=False)
                if resp.status_code >= 400:
                    module.fail_json(msg='%s %s %s: HTTP %s %s' % (method.upper(), url, body, resp.status_code, resp.text))
        module.exit_json(changed=True, servers=[_server(conn, n) for n in p['names']])
    if p['action'] == 'allocations':
        rps = conn.placement.get('/resource_providers?name=%s' % p['host']).json()['resource_providers']
        if len(rps) != 1:
            module.fail_json(msg='expected one resource provider named %s, found %d' % (p['host'], len(rps)))
        allocs = conn.placement.get('/resource_providers/%s/allocations' % rps[0]['uuid']).json()['allocations']
        migrations = conn.compute.get('/os-migrations', microversion='2.59').json()['migrations']
        status = dict((m['uuid'], m['status']) for m in migrations)
        consumers = []
        for consumer in sorted(allocs):
            resp = conn.compute.get('/servers/%s' % consumer, microversion='2.60', raise_exc=False)
            consumers.append({'consumer': consumer, 'resources': allocs[consumer]['resources'],
                              'server': resp.status_code == 200, 'migration_status': status.get(consumer)})
        module.exit_json(changed=False, consumers=consumers)
    if p['action'] == 'servers':
        module.exit_json(changed=False, servers=[s for n in p['names'] for s in _find(conn, n)])
    if p['action'] == 'wait_task_state':
        while True:
            servers = [_server(conn, n) for n in p['names']]
            if all(s['task_state'] == p['task_state'] for s in servers):
                module.exit_json(changed=False, servers=servers)
            if time.time() > deadline:
                module.fail_json(msg='task_state %s not reached within %ss' % (p['task_state'], p['timeout']),
                                 servers=servers)
            time.sleep(0.5)


if __name__ == '__main__':
    main()
