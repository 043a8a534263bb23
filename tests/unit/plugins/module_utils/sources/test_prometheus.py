# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus answers: parsing, units, series -> host mapping, staleness."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom

HOSTS = [{'name': 'compute1', 'hypervisor_hostname': 'compute1'},
         {'name': 'compute10', 'hypervisor_hostname': 'compute10.example.org'},
         {'name': 'compute2', 'hypervisor_hostname': 'node-b'}]


def vector(*series, **kw):
    """A Prometheus instant-vector answer (the JSON text of /api/v1/query)."""
    ts = kw.get('ts', 1795386213.23)
    return json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': labels, 'value': [ts, value]} for labels, value in series]}})


@pytest.mark.parametrize('url, base', [
    ('http://p:9090', 'http://p:9090'),
    ('http://p:9090/', 'http://p:9090'),
    ('http://p:9090/api/v1/query', 'http://p:9090'),
    ('https://mon.example.org/prometheus/', 'https://mon.example.org/prometheus'),
    ('https://mon.example.org/prometheus/api/v1', 'https://mon.example.org/prometheus'),
])
def test_api_base_accepts_base_prefix_and_seed_query_url(url, base):
    assert prom.api_base(url) == base


def test_api_base_rejects_non_http():
    with pytest.raises(LevellerError) as err:
        prom.api_base('prometheus:9090')
    assert err.value.failure == 'configuration'


def test_parse_success():
    text = vector(({'instance': 'compute1:9100'}, '0.25'))
    result = prom.parse_response('cpu', 'q', 200, text)
    assert result[0]['metric']['instance'] == 'compute1:9100'


def test_bad_promql_is_a_configuration_error_with_prometheus_text():
    text = json.dumps({'status': 'error', 'errorType': 'bad_data',
                       'error': '1:9: parse error: unexpected character'})
    with pytest.raises(LevellerError) as err:
        prom.parse_response('cpu', 'rate(foo[5m', 400, text)
    assert err.value.failure == 'configuration'
    assert 'cpu' in str(err.value) and 'rate(foo[5m' in str(err.value)
    assert 'parse error: unexpected character' in str(err.value)


@pytest.mark.parametrize('code, text, failure', [
    (401, 'Unauthorized', 'permission'),
    (403, '', 'permission'),
    (404, '404 page not found', 'configuration'),
    (502, '<html>Bad gateway</html>', 'unreachable'),
    (503, json.dumps({'status': 'error', 'errorType': 'unavailable', 'error': 'x'}), 'unreachable'),
    (422, json.dumps({'status': 'error', 'errorType': 'execution', 'error': 'many-to-many'}),
     'configuration'),
])
def test_http_answers_map_to_failure_classes(code, text, failure):
    with pytest.raises(LevellerError) as err:
        prom.parse_response('memory', 'q', code, text)
    assert err.value.failure == failure


def test_range_vector_answer_is_rejected():
    text = json.dumps({'status': 'success', 'data': {'resultType': 'matrix', 'result': []}})
    with pytest.raises(LevellerError) as err:
        prom.parse_response('cpu', 'up[5m]', 200, text)
    assert 'instant vector' in str(err.value)


def series(value, **labels):
    return {'metric': labels, 'value': [1.0, value]}


def test_values_outside_0_1_are_a_units_error():
    with pytest.raises(LevellerError) as err:
        prom.samples('memory', 'mem_used_percent', [series('57.3', instance='c1:9100')], 'instance')
    assert 'outside 0..1' in str(err.value) and 'percentages' in str(err.value)
    assert err.value.failure == 'configuration'


def test_float_noise_at_the_edges_is_clamped_and_nan_skipped():
    result = [series('1.0000001', instance='a'), series('-0.000001', instance='b'),
              series('NaN', instance='c')]
    out = prom.samples('cpu', 'q', result, 'instance')
    assert [(k, v) for k, v, _labels in out] == [('a', 1.0), ('b', 0.0)]


def test_missing_host_label_names_the_labels_it_has():
    with pytest.raises(LevellerError) as err:
        prom.samples('cpu', 'avg(x)', [series('0.5', job='node')], 'instance')
    assert "'instance'" in str(err.value) and 'job' in str(err.value)


@pytest.mark.parametrize('value, host', [
    ('compute1:9100', 'compute1'),
    ('compute10.example.org:9100', 'compute10'),
    ('compute1.example.org', 'compute1'),
    ('[fd00::1]:9100', '[fd00::1]'),
    ('compute1', 'compute1'),
])
def test_default_pattern(value, host):
    assert prom.host_key(value, prom.compile_pattern(prom.DEFAULT_HOST_PATTERN), None) == host


def test_join_is_exact_never_substring():
    pairs = [('compute1:9100', 0.1, {}), ('compute10.example.org:9100', 0.2, {}),
             ('compute100:9100', 0.3, {})]
    joined = prom.join_to_hosts('cpu', 'q', pairs, HOSTS, 'instance', prom.DEFAULT_HOST_PATTERN, None)
    assert joined == {'compute1': 0.1, 'compute10': 0.2}


def test_join_by_hypervisor_hostname_and_explicit_map():
    pairs = [('node-b', 0.4, {}), ('legacy-7:9100', 0.6, {})]
    hosts = HOSTS + [{'name': 'compute7', 'hypervisor_hostname': 'compute7'}]
    joined = prom.join_to_hosts('cpu', 'q', pairs, hosts, 'instance', '', {'legacy-7:9100': 'compute7'})
    assert joined == {'compute2': 0.4, 'compute7': 0.6}


def test_two_series_for_one_host_is_an_error_naming_both():
    pairs = [('compute1:9100', 0.1, {}), ('compute1:9101', 0.2, {})]
    with pytest.raises(LevellerError) as err:
        prom.join_to_hosts('cpu', 'q', pairs, HOSTS, 'instance', prom.DEFAULT_HOST_PATTERN, None)
    assert 'compute1:9100' in str(err.value) and 'compute1:9101' in str(err.value)


def test_pattern_with_two_groups_is_rejected():
    with pytest.raises(LevellerError):
        prom.compile_pattern(r'(a)(b)')
    with pytest.raises(LevellerError):
        prom.compile_pattern(r'(unclosed')


class Client(object):
    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def query(self, name, promql, at=None):
        self.asked.append((promql, at))
        return self.answers[promql]


def test_one_query_per_metric_for_all_hosts_and_staleness():
    now = 1000000.0
    answers = {
        'CPU': [series('0.5', instance='compute1:9100'), series('0.25', instance='compute10:9100'),
                series('0.3', instance='node-b:9100')],
        'MEM': [series('0.6', instance='compute1:9100'), series('0.7', instance='compute10:9100')],
        'LAST': [series(str(now - 10), instance='compute1:9100'),
                 series(str(now - 900), instance='compute10:9100'),
                 series(str(now - 5), instance='node-b:9100')],
    }
    client = Client(answers)
    fetched = prom.fetch(client, {'cpu': 'CPU', 'memory': 'MEM'}, 'instance', last_sample='LAST', now=now)
    assert len(client.asked) == 3 and all(at == now for _q, at in client.asked)
    loads, why = prom.host_loads(fetched, HOSTS, staleness=180, now=now)
    assert loads['compute1'] == {'cpu': 0.5, 'memory': 0.6}
    assert loads['compute10'] == {} and 'newest sample is 900 s old' in why['compute10']
    assert loads['compute2'] == {} and why['compute2'] == 'no memory series'
    assert 'compute1' not in why


def test_instance_loads_keep_only_known_instances():
    fetched = {'cpu': ('q', [('u1', 0.5, {}), ('u9', 0.1, {})]), 'memory': ('m', [('u1', 0.2, {})])}
    assert prom.instance_loads(fetched, [{'id': 'u1'}, {'id': 'u2'}]) == {'u1': {'cpu': 0.5, 'memory': 0.2}}


class Session(object):
    def __init__(self, status=200, text=None, exc=None):
        self.status, self.text, self.exc = status, text, exc
        self.calls = []

    def post(self, url, **kw):
        self.calls.append((url, kw))
        if self.exc:
            raise self.exc

        class R(object):
            pass
        r = R()
        r.status_code, r.text = self.status, self.text
        return r


def test_client_sends_auth_tls_and_time_and_counts():
    sess = Session(text=vector(({'instance': 'c1'}, '0.1')))
    client = prom.PrometheusClient('https://p/prefix/', timeout=3, ca_cert='/ca.pem', token='sekret',
                                   session=sess)
    client.query('cpu', 'up', at=12.5)
    url, kw = sess.calls[0]
    assert url == 'https://p/prefix/api/v1/query'
    assert kw['headers']['Authorization'] == 'Bearer sekret'
    assert kw['verify'] == '/ca.pem' and kw['timeout'] == 3
    assert kw['data'] == {'query': 'up', 'time': '12.500'}
    assert client.queries == 1
    basic = prom.PrometheusClient('http://p', validate_certs=False, username='u', password='pw',
                                  session=Session(text=vector()))
    basic.query('cpu', 'up')
    assert basic.session.calls[0][1]['auth'] == ('u', 'pw') and basic.session.calls[0][1]['verify'] is False


def test_client_unreachable():
    import requests
    client = prom.PrometheusClient('http://127.0.0.1:1', session=Session(
        exc=requests.exceptions.ConnectionError('refused')))
    with pytest.raises(LevellerError) as err:
        client.query('cpu', 'up')
    assert err.value.failure == 'unreachable' and '127.0.0.1:1' in str(err.value)


@given(st.lists(st.tuples(st.integers(1, 50), st.floats(0, 1)), min_size=1, max_size=30,
                unique_by=lambda t: t[0]))
def test_join_maps_each_series_to_its_own_host(items):
    hosts = [{'name': 'compute%d' % n, 'hypervisor_hostname': 'compute%d' % n} for n, _v in items]
    pairs = [('compute%d.dc1.example.org:9100' % n, v, {}) for n, v in items]
    joined = prom.join_to_hosts('cpu', 'q', pairs, hosts, 'instance', prom.DEFAULT_HOST_PATTERN, None)
    assert joined == dict(('compute%d' % n, v) for n, v in items)


def test_instance_loads_in_cores_and_mb_are_divided_by_the_flavor():
    instances = [{'id': 'u1', 'name': 'a', 'flavor': {'vcpus': 4, 'memory_mb': 2048}},
                 {'id': 'u2', 'name': 'b', 'flavor': {'vcpus': 1, 'memory_mb': 512}}]
    fetched = {'cpu': ('c', [('u1', 1.0, {}), ('u2', 0.25, {})]),
               'memory': ('m', [('u1', 512.0, {}), ('u2', 512.0, {})])}
    loads = prom.instance_loads(fetched, instances, {'cpu': 'cores', 'memory': 'mb'})
    assert loads == {'u1': {'cpu': 0.25, 'memory': 0.25}, 'u2': {'cpu': 0.25, 'memory': 1.0}}


def test_instance_load_above_its_flavor_is_a_units_error():
    instances = [{'id': 'u1', 'name': 'a', 'flavor': {'vcpus': 1, 'memory_mb': 512}}]
    with pytest.raises(LevellerError) as err:
        prom.instance_loads({'memory': ('m', [('u1', 512.0 * 1024 * 1024, {})])}, instances,
                            {'memory': 'mb'})
    assert 'instance_memory_unit' in str(err.value) and err.value.failure == 'configuration'
