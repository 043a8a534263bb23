# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The requests the executor sends (microversions, bodies) and how answers are read."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._nova import (
    Nova, NovaError, server_view, _regex_exact)


class Resp(object):
    def __init__(self, status, body=None):
        self.status_code = status
        self._body = body
        self.content = b'' if body is None else json.dumps(body).encode()
        self.text = self.content.decode()

    def json(self):
        if self._body is None:
            raise ValueError('no body')
        return self._body


class Proxy(object):
    """Records each call; answers from a dict keyed by (method, url)."""

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def _do(self, method, url, **kw):
        self.sent.append((method, url, kw.get('microversion'), kw.get('json')))
        return self.answers.get((method, url), Resp(202))

    def get(self, url, **kw):
        return self._do('get', url, **kw)

    def post(self, url, **kw):
        return self._do('post', url, **kw)

    def put(self, url, **kw):
        return self._do('put', url, **kw)

    def delete(self, url, **kw):
        return self._do('delete', url, **kw)


class Conn(object):
    def __init__(self, answers=None):
        self.compute = Proxy(answers or {})
        self.placement = Proxy(answers or {})


def test_live_migration_is_never_forced_and_pins_2_30():
    conn = Conn()
    Nova(conn).live_migrate('u1', 'compute3')
    assert conn.compute.sent == [('post', '/servers/u1/action', '2.30',
                                  {'os-migrateLive': {'host': 'compute3', 'block_migration': 'auto'}})]
    Nova(conn).live_migrate('u1')
    assert conn.compute.sent[-1][3] == {'os-migrateLive': {'host': None, 'block_migration': 'auto'}}


def test_abort_uses_2_65_when_offered_else_2_24():
    new = Conn({('get', '/'): Resp(200, {'version': {'version': '2.96'}})})
    Nova(new).abort_migration('u1', 7)
    assert new.compute.sent[-1][:3] == ('delete', '/servers/u1/migrations/7', '2.65')
    old = Conn({('get', '/'): Resp(200, {'version': {'version': '2.60'}})})
    Nova(old).abort_migration('u1', 7)
    assert old.compute.sent[-1][2] == '2.24'


def test_evacuation_microversion_follows_the_cloud():
    assert Nova(Conn({('get', '/'): Resp(200, {'version': {'version': '2.100'}})})).evacuate_microversion() == '2.95'
    assert Nova(Conn({('get', '/'): Resp(200, {'version': {'version': '2.79'}})})).evacuate_microversion() == '2.29'


def test_error_carries_novas_message_and_status():
    refusal = {'badRequest': {'message': 'No valid host was found.', 'code': 400}}
    conn = Conn({('post', '/servers/u1/action'): Resp(400, refusal)})
    with pytest.raises(NovaError) as err:
        Nova(conn).live_migrate('u1', 'compute3')
    assert err.value.status == 400 and 'No valid host was found.' in str(err.value)


def test_missing_server_is_none():
    conn = Conn({('get', '/servers/u9'): Resp(404, {'itemNotFound': {'message': 'not found'}})})
    assert Nova(conn).get_server('u9') is None


def test_server_view_compares_the_service_host_not_the_hypervisor_name():
    view = server_view({'id': 'u1', 'name': 'web-1', 'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                        'OS-EXT-SRV-ATTR:host': 'cmp3', 'OS-EXT-SRV-ATTR:hypervisor_hostname': 'cmp3.example.org',
                        'flavor': {'vcpus': 2, 'ram': 4096, 'disk': 20}})
    assert view['host'] == 'cmp3'
    assert view['flavor'] == {'vcpus': 2, 'memory_mb': 4096, 'disk_gb': 20}


def test_room_applies_reserved_and_allocation_ratio():
    inv = {'inventories': {'VCPU': {'total': 8, 'reserved': 0, 'allocation_ratio': 4.0, 'max_unit': 8},
                           'MEMORY_MB': {'total': 8192, 'reserved': 512, 'allocation_ratio': 1.0, 'max_unit': 8192}}}
    hypervisors = {'hypervisors': [{'id': 'rp-3', 'service': {'host': 'cmp3'}}]}
    usages = {'usages': {'VCPU': 30, 'MEMORY_MB': 7000}}
    conn = Conn({('get', '/os-hypervisors/detail'): Resp(200, hypervisors),
                 ('get', '/resource_providers/rp-3/inventories'): Resp(200, inv),
                 ('get', '/resource_providers/rp-3/usages'): Resp(200, usages)})
    room = Nova(conn).host_room('cmp3')
    assert room['VCPU'] == {'free': 2.0, 'max_unit': 8}
    assert room['MEMORY_MB'] == {'free': 680.0, 'max_unit': 8192}


def test_name_filter_is_an_anchored_escaped_regex():
    assert _regex_exact('web.1') == '%5Eweb%5C.1%24'


def test_evacuations_from_a_host_follow_pages_and_keep_only_that_source():
    first = '/os-migrations?source_compute=c1&migration_type=evacuation&limit=1000'
    second = first + '&marker=u2'
    page1 = {'migrations': [
        {'id': 1, 'uuid': 'u1', 'instance_uuid': 'i1', 'status': 'done', 'source_compute': 'c1', 'dest_compute': 'c2',
         'created_at': '2026-12-06T10:00:00.000000', 'updated_at': '2026-12-06T10:01:00.000000'},
        {'id': 2, 'uuid': 'u2', 'instance_uuid': 'i2', 'status': 'completed', 'source_compute': 'c1',
         'dest_compute': 'c3', 'created_at': '2026-12-06T09:00:00.000000', 'updated_at': None}],
        'migrations_links': [{'rel': 'next', 'href': 'x'}]}
    page2 = {'migrations': [{'id': 3, 'uuid': 'u3', 'instance_uuid': 'i3', 'status': 'done',
                             'source_compute': 'c10', 'dest_compute': 'c3', 'created_at': None}]}
    conn = Conn({('get', first): Resp(200, page1), ('get', second): Resp(200, page2)})
    found = Nova(conn).evacuations_from('c1')
    assert [m['instance'] for m in found] == ['i2', 'i1']  # oldest first; c10 is not c1
    assert found[1] == {'id': 1, 'uuid': 'u1', 'instance': 'i1', 'status': 'done', 'source': 'c1',
                        'destination': 'c2', 'created_at': '2026-12-06T10:00:00.000000',
                        'updated_at': '2026-12-06T10:01:00.000000'}
    assert [s[1] for s in conn.compute.sent] == [first, second]
    assert all(s[2] == '2.59' for s in conn.compute.sent)


def test_server_metadata_is_merged_not_replaced():
    conn = Conn({('post', '/servers/s1/metadata'): Resp(200, {'metadata': {}})})
    Nova(conn).set_server_metadata('s1', {'leveller:home': 'c1'})
    assert conn.compute.sent == [('post', '/servers/s1/metadata', '2.60', {'metadata': {'leveller:home': 'c1'}})]
