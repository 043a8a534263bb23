# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assembling the snapshot: loads joined to hosts, the no-half-truth rule, counts."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import gather
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import validate
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.sources.fake_cloud import (
    FakeConn, FakePrometheus, make_cloud)

NOW = 1795386000.0
LAST = 'max by (instance) (timestamp(node_memory_MemAvailable_bytes))'


def s(value, **labels):
    return {'metric': labels, 'value': [NOW, str(value)]}


def answers(n_hosts, skip=(), last_age=5):
    hosts = ['compute%d' % i for i in range(1, n_hosts + 1) if i not in skip]
    return {
        prom.DEFAULT_QUERY_CPU: [s(0.1 * (i % 9) + 0.05, instance='%s:9100' % h, job='node')
                                 for i, h in enumerate(hosts)],
        prom.DEFAULT_QUERY_MEMORY: [s(0.5, instance='%s:9100' % h, job='node') for h in hosts],
        LAST: [s(NOW - last_age, instance='%s:9100' % h) for h in hosts],
        'ICPU': [s(0.75, resource='inst-1-0'), s(0.2, resource='not-in-scope')],
    }


def params(**kw):
    p = {'sources': ['nova', 'prometheus'], 'scope': {}, 'prometheus_url': 'http://x',
         'staleness': 180, 'allow_missing_load': False, 'history_hours': 168}
    p.update(kw)
    return p


def run(n_hosts=4, per_host=2, skip=(), cloud=None, **kw):
    client = FakePrometheus(answers(n_hosts, skip))
    conn = FakeConn(cloud or make_cloud(n_hosts, per_host))
    snap, summary = gather.gather(conn, params(**kw), now=NOW, validate=validate,
                                  prometheus_client=client)
    return snap, summary


def test_full_snapshot_is_valid_and_loaded():
    snap, summary = run(query_instance_cpu='ICPU')
    assert snap['taken_at'] == '2026-11-22T22:20:00Z'
    assert all(h['load_source'] == 'prometheus' for h in snap['hosts'])
    assert snap['hosts'][0]['load'] == {'cpu': pytest.approx(0.05), 'memory': 0.5}
    inst = dict((i['id'], i) for i in snap['instances'])
    assert inst['inst-1-0']['load'] == {'cpu': 0.75, 'memory': None}
    assert inst['inst-1-1']['load'] is None
    assert summary['hosts'] == 4 and summary['instances'] == 8 and summary['hosts_with_load'] == 4
    assert summary['prometheus_queries'] == 4  # cpu, memory, last sample, instance cpu
    assert snap['sources']['prometheus']['window'] == '5m'


def test_query_and_call_counts_are_the_same_for_one_host_and_four():
    _s1, one = run(scope={'hosts': ['compute3']})
    _s4, four = run()
    assert one['prometheus_queries'] == four['prometheus_queries'] == 3
    assert one['api_calls']['nova'] == four['api_calls']['nova']
    assert one['api_calls']['placement'] == four['api_calls']['placement']
    assert one['api_calls']['placement_per_host'] == 2
    assert four['api_calls']['placement_per_host'] == 8


def test_queries_and_nova_calls_are_the_same_for_4_hosts_and_40():
    _s4, four = run(n_hosts=4, per_host=2)
    _s40, forty = run(n_hosts=40, per_host=10)
    assert four['prometheus_queries'] == forty['prometheus_queries'] == 3
    assert four['api_calls']['nova'] == forty['api_calls']['nova'] == 6
    assert four['api_calls']['placement'] == forty['api_calls']['placement'] == 1
    # Only Placement's inventories and allocations grow, two per host, and are reported apart.
    assert (four['api_calls']['placement_per_host'], forty['api_calls']['placement_per_host']) == (8, 80)
    assert forty['api_calls']['total'] - four['api_calls']['total'] == 2 * (40 - 4)


def test_host_without_metrics_fails_by_default_naming_it_and_the_label():
    with pytest.raises(LevellerError) as err:
        run(skip=(3,))
    msg = str(err.value)
    assert err.value.failure == 'inconsistent'
    assert 'compute3' in msg and 'compute1' not in msg.split('(', maxsplit=1)[0]
    assert 'prometheus_host_label' in msg and 'allow_missing_load' in msg


def test_no_host_with_metrics_is_a_configuration_error():
    with pytest.raises(LevellerError) as err:
        run(skip=(1, 2, 3, 4))
    assert err.value.failure == 'configuration'


def test_allow_missing_load_marks_the_host():
    snap, summary = run(skip=(3,), allow_missing_load=True)
    h3 = [h for h in snap['hosts'] if h['name'] == 'compute3'][0]
    assert h3['load'] is None and h3['load_source'] == 'none'
    assert summary['hosts_without_load'] == ['compute3']
    assert summary['missing_load_reasons'] == {'compute3': 'no cpu series'}


def test_a_down_host_without_metrics_does_not_fail():
    cloud = make_cloud(4, 1)
    cloud['services'][1]['state'] = 'down'
    snap, _summary = run(skip=(2,), cloud=cloud)
    h2 = [h for h in snap['hosts'] if h['name'] == 'compute2'][0]
    assert h2['up'] is False and h2['load'] is None
    assert [i['not_migratable_reason'] for i in snap['instances'] if i['host'] == 'compute2'] == \
        ['host compute2 is down']


def test_prometheus_is_asked_before_nova():
    class Broken(FakePrometheus):
        def query(self, name, promql, at=None):
            raise LevellerError('Prometheus at http://x is unreachable', 'unreachable')
    conn = FakeConn(make_cloud(1, 1))
    with pytest.raises(LevellerError) as err:
        gather.gather(conn, params(), now=NOW, prometheus_client=Broken({}))
    assert err.value.failure == 'unreachable'
    assert conn.log == []


def test_nova_is_required_and_prometheus_needs_a_url():
    with pytest.raises(LevellerError):
        gather.gather(FakeConn(make_cloud(1, 1)), params(sources=['prometheus']), now=NOW)
    with pytest.raises(LevellerError) as err:
        gather.gather(FakeConn(make_cloud(1, 1)), params(prometheus_url=None), now=NOW)
    assert 'prometheus_url' in str(err.value)


def test_nova_only_snapshot_with_weights():
    snap, summary = gather.gather(FakeConn(make_cloud(2, 1)),
                                  params(sources=['nova'], allow_missing_load=True,
                                         weight_cpu=0.4, weight_memory=2.0), now=NOW, validate=validate)
    assert snap['sources']['weights'] == {'cpu': 0.4, 'memory': 2.0}
    assert summary['prometheus_queries'] == 0 and summary['hosts_with_load'] == 0


def test_nova_only_needs_no_measured_load():
    # Nothing was asked to measure load: the planner works on allocations, so no failure.
    snap, summary = gather.gather(FakeConn(make_cloud(2, 1)), params(sources=['nova']),
                                  now=NOW, validate=validate)
    assert [h['load'] for h in snap['hosts']] == [None] * len(snap['hosts'])
    assert set(h['load_source'] for h in snap['hosts']) == set(['none'])
    assert summary['hosts_with_load'] == 0


def test_a_snapshot_breaking_the_contract_is_inconsistent():
    cloud = make_cloud(1, 1)
    cloud['groups'] = [{'id': 'g', 'policy': 'nonsense', 'members': ['inst-1-0']}]
    with pytest.raises(LevellerError) as err:
        run(n_hosts=1, per_host=1, cloud=cloud)
    assert err.value.failure == 'inconsistent' and 'policy' in str(err.value)


def test_http_counter_counts_every_request_of_the_session():
    class Session(object):
        def __init__(self):
            self.sent = []

        def request(self, url, method, **kwargs):
            self.sent.append((method, url))
            return 'response'

    class Conn(object):
        session = Session()

    conn = Conn()
    counter = gather.HttpCounter(conn)
    assert conn.session.request('/a', 'GET') == 'response'
    conn.session.request('/b', 'GET')
    assert counter.count == 2 and len(conn.session.sent) == 2
    assert gather.HttpCounter(object()).count is None
