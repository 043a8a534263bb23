# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loads at a past time (at) and the load history (range queries): grid, chunks, joins, checks."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import gather
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import validate
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.sources.fake_cloud import (
    FakeConn, make_cloud)

NOW = 1795386000.0  # 2026-11-22T22:20:00Z
LAST = 'max by (instance) (timestamp(node_memory_MemAvailable_bytes))'


class RangePrometheus(object):
    """Answers instant and range queries from functions of time, as Prometheus would.

    ``series`` maps a query to [(labels, f)], f(t) giving the value at t or None (no sample).
    Range answers hold the points start + k * step up to end, with millisecond timestamps;
    more than 11,000 points per series is refused, as Prometheus refuses it.
    """

    base = 'http://prometheus.test:9090'

    def __init__(self, series):
        self.series = series
        self.queries = 0
        self.instant = []
        self.ranges = []

    def query(self, name, promql, at=None):
        self.queries += 1
        self.instant.append((promql, at))
        out = []
        for labels, f in self.series.get(promql, []):
            value = f(at)
            if value is not None:
                out.append({'metric': labels, 'value': [at, str(value)]})
        return out

    def query_range(self, name, promql, start, end, step):
        self.queries += 1
        points = int((end - start) // step) + 1
        assert points <= 11000, 'exceeded maximum resolution of 11,000 points per timeseries'
        self.ranges.append((promql, start, end, step, points))
        out = []
        for labels, f in self.series.get(promql, []):
            values = []
            for k in range(points):
                t = round(start + k * step, 3)
                value = f(t)
                if value is not None:
                    values.append([t, str(value)])
            if values:
                out.append({'metric': labels, 'values': values})
        return out


def const(value):
    return lambda t: value


def host_series(n_hosts, skip=()):
    hosts = ['compute%d' % i for i in range(1, n_hosts + 1) if i not in skip]
    return {
        prom.DEFAULT_QUERY_CPU: [({'instance': '%s:9100' % h}, const(0.1 * i + 0.05)) for i, h in enumerate(hosts)],
        prom.DEFAULT_QUERY_MEMORY: [({'instance': '%s:9100' % h}, const(0.5)) for h in hosts],
        LAST: [({'instance': '%s:9100' % h}, lambda t: t - 5) for h in hosts],
    }


def params(**kw):
    p = {'sources': ['nova', 'prometheus'], 'scope': {}, 'prometheus_url': 'http://x',
         'staleness': 180, 'allow_missing_load': False, 'history_hours': 168}
    p.update(kw)
    return p


def run(series=None, n_hosts=3, per_host=2, **kw):
    client = RangePrometheus(series if series is not None else host_series(n_hosts))
    conn = FakeConn(make_cloud(n_hosts, per_host))
    snap, summary, history = gather.gather_all(conn, params(**kw), now=NOW, validate=validate,
                                               prometheus_client=client)
    return snap, summary, history, client, conn


# ---------------------------------------------------------------- at

def test_at_is_sent_as_time_on_every_instant_query_and_is_taken_at():
    series = host_series(3)
    series['ICPU'] = [({'resource': 'inst-1-0'}, const(0.5))]
    series['IMEM'] = [({'resource': 'inst-1-0'}, const(1024))]
    snap, summary, history, client, conn = run(series, at='-6h', query_instance_cpu='ICPU',
                                               query_instance_memory='IMEM', instance_memory_unit='mb')
    at = NOW - 6 * 3600
    assert history is None
    assert [q for q, _t in client.instant] == [prom.DEFAULT_QUERY_CPU, prom.DEFAULT_QUERY_MEMORY, LAST, 'ICPU', 'IMEM']
    assert all(t == at for _q, t in client.instant)
    assert snap['taken_at'] == '2026-11-22T16:20:00Z'
    assert snap['sources']['prometheus']['time'] == at
    assert snap['sources']['at'] == {'loads_at': '2026-11-22T16:20:00Z', 'placement_at': '2026-11-22T22:20:00Z'}
    assert summary['prometheus_queries'] == 5
    # Nova and Placement are read now, as without at.
    assert conn.log
    inst = dict((i['id'], i) for i in snap['instances'])
    assert inst['inst-1-0']['load'] == {'cpu': 0.5, 'memory': 0.5}


def test_loads_at_a_past_time_get_the_history_tolerance_and_now_does_not():
    # a ratio of 1.06 at one past instant is jitter (clamped); 4.0 is a unit error; now, 1.06 is an error
    series = host_series(3)
    series['ICPU'] = [({'resource': 'inst-1-0'}, const(1.06))]
    snap = run(series, at='-1h', query_instance_cpu='ICPU')[0]
    inst = dict((i['id'], i) for i in snap['instances'])
    assert inst['inst-1-0']['load']['cpu'] == 1.0
    with pytest.raises(LevellerError) as err:
        run(series, query_instance_cpu='ICPU')
    assert 'outside 0..1' in str(err.value)
    series['ICPU'] = [({'resource': 'inst-1-0'}, const(4.0))]
    with pytest.raises(LevellerError):
        run(series, at='-1h', query_instance_cpu='ICPU')


def test_without_at_the_snapshot_has_no_sources_at():
    snap, _summary, _history, client, _conn = run()
    assert 'at' not in snap['sources'] and all(t == NOW for _q, t in client.instant)


def test_staleness_is_measured_against_at():
    series = host_series(2)
    at = NOW - 3600
    # The newest sample of compute2 is 10 minutes older than at; compute1's is 5 s older.
    series[LAST] = [({'instance': 'compute1:9100'}, lambda t: t - 5),
                    ({'instance': 'compute2:9100'}, lambda t: t - 600)]
    snap, summary, _history, client, _conn = run(series, n_hosts=2, at=str(int(at)), allow_missing_load=True)
    assert [t for q, t in client.instant if q == LAST] == [at]
    assert summary['hosts_without_load'] == ['compute2']
    assert 'newest sample is 600 s old' in summary['missing_load_reasons']['compute2']


def test_at_with_libvirt_is_refused_before_anything_is_asked():
    client = RangePrometheus(host_series(1))
    conn = FakeConn(make_cloud(1, 1))
    with pytest.raises(LevellerError) as err:
        gather.gather_all(conn, params(sources=['nova', 'prometheus', 'libvirt'], at='-1h',
                                       libvirt_uris={'compute1': 'test:///default'}),
                          now=NOW, prometheus_client=client)
    assert err.value.failure == 'configuration'
    assert 'at' in str(err.value) and 'sources' in str(err.value) and 'libvirt' in str(err.value)
    assert client.queries == 0 and conn.log == []


@pytest.mark.parametrize('kw, words', [
    ({'at': '2026-11-22T22:21:00Z'}, 'at is 2026-11-22T22:21:00Z, 60 s in the future'),
    ({'at': '2026-11-22T10:00:00'}, 'add Z (UTC) or an offset'),
    ({'at': 'yesterday'}, 'at: '),
    ({'history': {'start': '-1h', 'end': '-2h'}}, 'history.start (2026-11-22T21:20:00Z) must be before history.end'),
    ({'history': {'start': '-1h'}, 'at': '-1h'}, 'defaults to at; set history.end to now'),
    ({'history': {'start': '2026-11-23T00:00:00Z'}}, 'history.start is'),
    ({'history': {'start': '-1h', 'end': '+1h'}}, 'history.end: '),
    ({'history': {'start': '-1h', 'end': '2026-11-23T00:00:00Z'}}, 'history.end is'),
    ({'history': {'start': '-32d'}}, 'more than 31: move history.start later'),
    ({'history': {'start': '-1h', 'step': 0}}, 'history.step'),
    ({'history': {'start': '-1h', 'step': 1.5}}, 'history.step'),
    ({'history': {'end': '-1h'}}, 'history.start is required'),
    ({'history': {'start': '-1h'}, 'sources': ['nova']}, 'add prometheus to sources'),
])
def test_bad_times_fail_naming_the_field_before_anything_is_asked(kw, words):
    client = RangePrometheus(host_series(1))
    conn = FakeConn(make_cloud(1, 1))
    with pytest.raises(LevellerError) as err:
        gather.gather_all(conn, params(**kw), now=NOW, prometheus_client=client)
    assert err.value.failure == 'configuration'
    assert words in str(err.value)
    assert client.queries == 0 and conn.log == []


def test_a_few_seconds_ahead_is_now():
    snap, _summary, _history, client, _conn = run(at=str(NOW + 3))
    assert snap['sources']['at']['loads_at'] == snap['sources']['at']['placement_at']
    assert all(t == NOW for _q, t in client.instant)


def test_31_days_exactly_is_allowed():
    grid = gather.history_grid({'start': '-31d', 'step': 3600}, ['nova', 'prometheus'], None, NOW)
    assert grid['times'] == 31 * 24 + 1 and grid['end'] == NOW


# ---------------------------------------------------------------- the grid and its chunks

def test_30_days_at_60_s_in_several_requests_every_point_once():
    start = NOW - 30 * 86400
    times = 30 * 1440 + 1
    seen = []
    series = {'Q': [({'instance': 'compute1:9100'}, lambda t: seen.append(t) or ((t - start) / 60 % 1000) / 1000.0)]}
    client = RangePrometheus(series)
    fetched, requests_sent = prom.fetch_range(client, {'cpu': 'Q'}, 'instance', start, 60, times)
    assert requests_sent == len(client.ranges) == 5  # 43,201 points, 10,000 a request
    assert all(points <= prom.MAX_POINTS for _q, _s, _e, _st, points in client.ranges)
    assert sum(points for _q, _s, _e, _st, points in client.ranges) == times
    # Each request starts one step after the previous one ended: no point twice, none lost.
    for before, after in zip(client.ranges, client.ranges[1:]):
        assert after[1] == before[2] + 60
    assert client.ranges[0][1] == start and client.ranges[-1][2] == start + (times - 1) * 60
    assert sorted(seen) == [round(start + k * 60, 3) for k in range(times)]
    _promql, [(key, points, _labels)] = fetched['cpu']
    assert key == 'compute1:9100' and sorted(points) == list(range(times))
    assert all(points[k] == pytest.approx((k % 1000) / 1000.0) for k in points)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.integers(1, 3600), st.integers(1, 50), st.integers(0, 999))
def test_chunks_cover_the_grid_exactly(times, step, max_points, millis):
    start = NOW - 86400 * 40 + millis / 1000.0
    chunks = prom.range_chunks(start, step, times, max_points)
    covered = []
    for first, chunk_start, chunk_end in chunks:
        assert chunk_start == start + first * step
        n = int(round((chunk_end - chunk_start) / step)) + 1
        assert 1 <= n <= max_points
        covered.extend(range(first, first + n))
    assert covered == list(range(times))


def test_grid_points_and_the_end_that_is_not_on_the_grid():
    grid = gather.history_grid({'start': '-60s', 'step': 7}, ['nova', 'prometheus'], None, NOW)
    assert grid == {'start': NOW - 60, 'end': NOW, 'step': 7, 'times': 9}  # 0, 7, ..., 56
    grid = gather.history_grid({'start': '-60s', 'step': 5}, ['nova', 'prometheus'], None, NOW)
    assert grid['times'] == 13  # both ends on the grid


# ---------------------------------------------------------------- joins, units, nulls

HOSTS = [{'name': 'compute1', 'hypervisor_hostname': 'compute1'},
         {'name': 'compute2', 'hypervisor_hostname': 'node-b.example.org'},
         {'name': 'compute3', 'hypervisor_hostname': 'compute3'}]


def matrix(series, times):
    """fetch_range's shape from {label value: {k: value}}."""
    return [(key, points, {'instance': key}) for key, points in sorted(series.items())]


def test_hosts_are_joined_like_the_instant_path_and_gaps_are_null():
    fetched = {'cpu': ('C', matrix({'compute1.example.org:9100': {0: 0.1, 2: 0.3},
                                    'legacy:9100': {1: 0.2},
                                    'compute99:9100': {0: 0.9}}, 3)),
               'memory': ('M', matrix({'compute1:9100': {0: 0.5, 1: 0.5, 2: 0.5}}, 3))}
    out = prom.host_history(fetched, HOSTS, 3, host_map={'legacy:9100': 'compute2'})
    assert out == {'compute1': {'cpu': [0.1, None, 0.3], 'memory': [0.5, 0.5, 0.5]},
                   'compute2': {'cpu': [None, 0.2, None], 'memory': [None, None, None]},
                   'compute3': {'cpu': [None, None, None], 'memory': [None, None, None]}}


def test_two_series_of_one_host_at_the_same_point_is_the_instant_error():
    fetched = {'cpu': ('C', matrix({'compute1:9100': {0: 0.1, 1: 0.1}, 'compute1:9200': {1: 0.2}}, 2))}
    with pytest.raises(LevellerError) as err:
        prom.host_history(fetched, HOSTS, 2)
    assert 'two series for host compute1' in str(err.value)
    assert 'compute1:9100' in str(err.value) and 'compute1:9200' in str(err.value)
    # One after the other (an exporter moved to another port) is what an instant query would see.
    fetched = {'cpu': ('C', matrix({'compute1:9100': {0: 0.1}, 'compute1:9200': {1: 0.2}}, 2))}
    assert prom.host_history(fetched, HOSTS, 2)['compute1']['cpu'] == [0.1, 0.2]


def test_range_samples_are_checked_like_instant_ones():
    client = RangePrometheus({'Q': [({'instance': 'compute1:9100'}, lambda t: 'NaN' if t == NOW else 1.00001)],
                              'P': [({'instance': 'compute1:9100'}, const(57.0))],
                              'L': [({'job': 'node'}, const(0.5))]})
    fetched, _n = prom.fetch_range(client, {'cpu': 'Q'}, 'instance', NOW - 10, 5, 3)
    assert fetched['cpu'][1][0][1] == {0: 1.0, 1: 1.0}  # clamped; NaN is no sample
    with pytest.raises(LevellerError) as err:
        prom.fetch_range(client, {'memory': 'P'}, 'instance', NOW - 10, 5, 3)
    assert 'outside 0..1' in str(err.value)
    with pytest.raises(LevellerError) as err:
        prom.fetch_range(client, {'cpu': 'L'}, 'instance', NOW - 10, 5, 3)
    assert "without the label 'instance'" in str(err.value)


def test_instance_history_units_flavors_and_unknown_instances():
    instances = [{'id': 'u1', 'name': 'a', 'flavor': {'vcpus': 4, 'memory_mb': 2048}},
                 {'id': 'u2', 'name': 'b', 'flavor': {'vcpus': 1, 'memory_mb': 512}}]
    fetched = {'cpu': ('c', [('u1', {0: 1.0, 1: 4.02}, {}), ('u9', {0: 1.0}, {})]),
               'memory': ('m', [('u2', {1: 256.0}, {})])}
    out = prom.instance_history(fetched, instances, 2, {'cpu': 'cores', 'memory': 'mb'})
    assert out == {'u1': {'cpu': [0.25, 1.0], 'memory': [None, None]},
                   'u2': {'cpu': [None, None], 'memory': [None, 0.5]}}
    assert prom.instance_history({}, instances, 2) == {}
    with pytest.raises(LevellerError) as err:
        prom.instance_history({'cpu': ('c', [('u2', {0: 3.0}, {})])}, instances, 1, {'cpu': 'cores'})
    assert 'instance_cpu_unit' in str(err.value)
    ratio = prom.instance_history({'cpu': ('c', [('u2', {0: 0.1234567}, {})])}, instances, 1)
    assert ratio['u2']['cpu'] == [0.123457]


# ---------------------------------------------------------------- the whole gather

def test_load_history_of_the_snapshot_hosts_and_instances():
    start = NOW - 3600
    series = host_series(3, skip=(3,))
    # compute2's exporter started half-way through the hour.
    series[prom.DEFAULT_QUERY_CPU][1] = ({'instance': 'compute2:9100'}, lambda t: 0.4 if t >= start + 1800 else None)
    series['ICPU'] = [({'resource': 'inst-1-0'}, const(1.0)), ({'resource': 'gone'}, const(1.0))]
    snap, summary, history, client, _conn = run(series, allow_missing_load=True, query_instance_cpu='ICPU',
                                                instance_cpu_unit='cores', history={'start': '-1h', 'step': 300})
    assert sorted(history) == ['hosts', 'instances', 'missing', 'queries', 'start', 'step', 'times']
    assert (history['start'], history['step'], history['times']) == (start, 300, 13)
    assert sorted(history['hosts']) == ['compute1', 'compute2', 'compute3']
    assert history['hosts']['compute1'] == {'cpu': [0.05] * 13, 'memory': [0.5] * 13}
    assert history['hosts']['compute2']['cpu'] == [None] * 6 + [0.4] * 7
    assert history['hosts']['compute3'] == {'cpu': [None] * 13, 'memory': [None] * 13}
    # Only the snapshot's instances, each flavor (2 vCPUs) dividing the cores; only metrics with a query.
    assert sorted(history['instances']) == sorted(i['id'] for i in snap['instances'])
    assert history['instances']['inst-1-0'] == {'cpu': [0.5] * 13}
    assert history['instances']['inst-2-0'] == {'cpu': [None] * 13}
    assert history['missing'] == {'hosts': ['compute3'], 'instances': 5}
    # cpu, memory, instance cpu: one request each; plus the four instant queries.
    assert history['queries'] == 3 and len(client.ranges) == 3
    assert summary['prometheus_queries'] == 4 + 3
    assert all(r[1] == start and r[2] == NOW and r[3] == 300 for r in client.ranges)
    assert 'load_history' not in snap and 'history' not in json.dumps(snap['sources'])
    json.dumps(history)  # plain JSON, nulls included


def test_history_without_instance_queries_has_no_instances_and_ends_at_at():
    _snap, _summary, history, client, _conn = run(at='-30m', history={'start': '-1h', 'step': 60})
    assert history['instances'] == {} and history['missing']['instances'] == 6
    assert history['times'] == 31 and history['start'] + 30 * 60 == NOW - 1800
    assert [r[0] for r in client.ranges] == [prom.DEFAULT_QUERY_CPU, prom.DEFAULT_QUERY_MEMORY]
    assert all(r[2] == NOW - 1800 for r in client.ranges)


def test_gather_keeps_returning_two_values():
    result = gather.gather(FakeConn(make_cloud(1, 1)), params(history={'start': '-1h'}), now=NOW,
                           prometheus_client=RangePrometheus(host_series(1)))
    assert len(result) == 2


# ---------------------------------------------------------------- the HTTP client

class Session(object):
    def __init__(self, text):
        self.text = text
        self.calls = []

    def post(self, url, **kw):
        self.calls.append((url, kw))

        class R(object):
            status_code = 200
        r = R()
        r.text = self.text
        return r


def test_client_range_query_sends_start_end_step_and_wants_a_matrix():
    body = json.dumps({'status': 'success', 'data': {'resultType': 'matrix', 'result': [
        {'metric': {'instance': 'c1'}, 'values': [[10, '0.1'], [15, '0.2']]}]}})
    sess = Session(body)
    client = prom.PrometheusClient('http://p:9090', session=sess)
    result = client.query_range('cpu', 'up', 10.0, 15.0, 5)
    url, kw = sess.calls[0]
    assert url == 'http://p:9090/api/v1/query_range'
    assert kw['data'] == {'query': 'up', 'start': '10.000', 'end': '15.000', 'step': '5'}
    assert result[0]['values'][1] == [15, '0.2'] and client.queries == 1
    vector = json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': []}})
    with pytest.raises(LevellerError):
        prom.PrometheusClient('http://p:9090', session=Session(vector)).query_range('cpu', 'up', 10.0, 15.0, 5)
    with pytest.raises(LevellerError) as err:
        prom.parse_response('cpu', 'up', 404, '404 page not found', 'http://p', kind='matrix')
    assert '/api/v1/query_range' in str(err.value)


def test_history_clamps_points_a_little_out_and_still_refuses_a_wrong_unit():
    # a short rate() window over jittered scrapes: 2.11 cores of a 2-vCPU instance at one point
    instances = [{'id': 'u1', 'name': 'a', 'flavor': {'vcpus': 2, 'memory_mb': 2048}}]
    out = prom.instance_history({'cpu': ('c', [('u1', {0: 2.11, 1: 1.0}, {})])}, instances, 2, {'cpu': 'cores'})
    assert out['u1']['cpu'] == [1.0, 0.5]
    with pytest.raises(LevellerError) as err:  # an instant query allows only EPSILON
        prom.instance_share('cpu', 'c', 'cores', 2.11, instances[0])
    assert 'instance_cpu_unit' in str(err.value)
    with pytest.raises(LevellerError):  # 4 cores of 2: the unit is wrong, not the jitter
        prom.instance_history({'cpu': ('c', [('u1', {0: 4.0}, {})])}, instances, 1, {'cpu': 'cores'})
    client = RangePrometheus({'Q': [({'instance': 'compute1:9100'}, const(1.3))]})
    fetched, _n = prom.fetch_range(client, {'cpu': 'Q'}, 'instance', NOW - 10, 5, 3)
    assert fetched['cpu'][1][0][1] == {0: 1.0, 1: 1.0, 2: 1.0}
