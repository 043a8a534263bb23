# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hand-written Nova/Placement answers for unit tests of the snapshot's pure logic.

It answers the raw GETs the nova source sends, honours limit/marker paging and records every
URL, so tests can count calls. It is not a cloud: integration tests use the real one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

try:
    from urllib.parse import parse_qs, urlparse
except ImportError:  # pragma: no cover
    from urlparse import parse_qs, urlparse


class Response(object):
    def __init__(self, status_code, body):
        self.status_code = status_code
        self._body = body
        self.text = json.dumps(body)

    def json(self):
        return self._body


def make_cloud(n_hosts=4, per_host=3, fqdn=False):
    """Services, hypervisors, providers and servers of a small cloud (compute1..N)."""
    services, hypervisors, providers, inventories, allocations, servers = [], [], [], {}, {}, []
    for i in range(1, n_hosts + 1):
        host = 'compute%d' % i
        node = host + '.example.org' if fqdn else host
        uuid = '00000000-0000-0000-0000-%012d' % i
        services.append({'binary': 'nova-compute', 'host': host, 'zone': 'az%d' % (1 + i % 2),
                         'status': 'enabled', 'state': 'up', 'forced_down': False,
                         'disabled_reason': None, 'id': 'svc-%d' % i})
        hypervisors.append({'id': uuid, 'hypervisor_hostname': node,
                            'service': {'host': host, 'id': 'svc-%d' % i}})
        providers.append({'uuid': uuid, 'name': node})
        inventories[uuid] = {'inventories': {
            'VCPU': {'total': 16, 'reserved': 0, 'allocation_ratio': 4.0},
            'MEMORY_MB': {'total': 65536, 'reserved': 512, 'allocation_ratio': 1.0},
            'DISK_GB': {'total': 1000, 'reserved': 0, 'allocation_ratio': 1.0}}}
        allocations[uuid] = {'allocations': dict(
            ('inst-%d-%d' % (i, j), {'resources': {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20}})
            for j in range(per_host))}
        for j in range(per_host):
            servers.append({
                'id': 'inst-%d-%d' % (i, j), 'name': 'vm-%d-%d' % (i, j), 'status': 'ACTIVE',
                'OS-EXT-SRV-ATTR:host': host, 'OS-EXT-SRV-ATTR:hypervisor_hostname': node,
                'OS-EXT-STS:task_state': None, 'OS-EXT-STS:power_state': 1, 'locked': False,
                'tenant_id': 'p1', 'metadata': {}, 'tags': [], 'image': {'id': 'img'},
                'flavor': {'original_name': 'm1.small', 'vcpus': 2, 'ram': 2048, 'disk': 20,
                           'ephemeral': 0, 'swap': 0}})
    return {'services': services, 'hypervisors': hypervisors, 'aggregates': [
        {'name': 'agg-odd', 'hosts': ['compute1', 'compute3'], 'availability_zone': None}],
        'providers': providers, 'inventories': inventories, 'allocations': allocations, 'servers': servers,
        'groups': [], 'migrations': []}


class FakeProxy(object):
    def __init__(self, cloud, service, log, page_cap):
        self.cloud = cloud
        self.service = service
        self.log = log
        self.page_cap = page_cap

    def get(self, url, microversion=None):
        self.log.append((self.service, url, microversion))
        parsed = urlparse(url)
        query = dict((k, v[0]) for k, v in parse_qs(parsed.query).items())
        path = parsed.path
        c = self.cloud
        if 'forbidden' in c:
            return Response(403, {'forbidden': {'message': 'Policy does not allow this'}})
        if self.service == 'placement':
            if path == '/resource_providers':
                return Response(200, {'resource_providers': c['providers']})
            uuid, what = path.split('/')[2], path.split('/')[3]
            return Response(200, c[what][uuid])
        if path == '/os-services':
            return Response(200, {'services': c['services']})
        if path == '/os-aggregates':
            return Response(200, {'aggregates': c['aggregates']})
        if path == '/os-server-groups':
            limit, offset = int(query['limit']), int(query['offset'])
            return Response(200, {'server_groups': c['groups'][offset:offset + limit]})
        key, items, mkey = {
            '/os-hypervisors/detail': ('hypervisors', c['hypervisors'], 'id'),
            '/servers/detail': ('servers', c['servers'], 'id'),
            '/os-migrations': ('migrations', c['migrations'], 'uuid'),
        }[path]
        limit = min(int(query.get('limit', 1000)), self.page_cap)
        start = 0
        if 'marker' in query:
            start = [x[mkey] for x in items].index(query['marker']) + 1
        page = items[start:start + limit]
        body = {key: page}
        if len(page) == limit:
            body[key + '_links'] = [{'rel': 'next', 'href': 'next'}]
        return Response(200, body)


class FakeConn(object):
    """Stands in for an openstacksdk Connection: .compute / .placement with raw GETs."""

    def __init__(self, cloud, page_cap=1000):
        self.log = []
        self.compute = FakeProxy(cloud, 'compute', self.log, page_cap)
        self.placement = FakeProxy(cloud, 'placement', self.log, page_cap)


class FakePrometheus(object):
    """Answers instant queries from a dict {promql: [series]}; counts queries."""

    base = 'http://prometheus.test:9090'

    def __init__(self, answers):
        self.answers = answers
        self.queries = 0

    def query(self, name, promql, at=None):
        self.queries += 1
        return self.answers[promql]
