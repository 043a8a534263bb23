# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measured load from Prometheus: one instant query per metric for all hosts (or instances).

The queries must return a ratio 0..1 per series.  Series are joined to hypervisors through a
label (``instance`` by default), a regular expression with one group that extracts the host name
from it (by default it strips ``:port`` and the domain), and an explicit map that wins over both.

The load history runs the same queries as range queries over a grid of times and joins each
grid point exactly as an instant query at that time would be joined.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re
import traceback

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url,
)

try:
    from urllib.parse import unquote, urlsplit
except ImportError:  # pragma: no cover - Python 2
    from urllib import unquote
    from urlparse import urlsplit

DEFAULT_QUERY_CPU = '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))'
DEFAULT_QUERY_MEMORY = '1 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)'
DEFAULT_QUERY_LAST_SAMPLE = 'max by (instance) (timestamp(node_memory_MemAvailable_bytes))'
DEFAULT_HOST_LABEL = 'instance'
# "compute1.example.org:9100" -> "compute1"; "[fd00::1]:9100" -> "[fd00::1]" (then use the map).
DEFAULT_HOST_PATTERN = r'^(\[[^\]]+\]|[^.:]+)'
DEFAULT_INSTANCE_LABEL = 'resource'
# Tolerance for float noise at the edges of 0..1 (rate() can give 1.0000000002).
EPSILON = 0.02
# Over a history the edges of a short rate() window and scrape jitter give points a little
# further out (a 20 s window read 1.06 of an instance's vCPUs); they are clamped. A query in the
# wrong unit (percent, bytes, cores read as ratio) is far out at once, and still an error.
HISTORY_TOLERANCE = 0.5
# Points per series in one range request; Prometheus refuses more than 11,000.
MAX_POINTS = 10000


def api_base(url):
    """The Prometheus base URL from what operators give: base, route prefix or full query URL.

    ``http://p:9090``, ``http://p/prometheus/`` and seed 000's ``http://p:9090/api/v1/query``
    all work.
    """
    url = (url or '').strip()
    if not re.match(r'^https?://', url):
        raise LevellerError('prometheus_url %r is not an http(s) URL' % redact_url(url),
                            FailureClass.CONFIGURATION)
    url = redact_url(url).rstrip('/')
    for tail in ('/api/v1/query', '/api/v1'):
        if url.endswith(tail):
            url = url[:-len(tail)]
            break
    return url


def url_credentials(url):
    """(user, password) from the userinfo of ``url``, percent-decoded; (None, None) without."""
    parts = urlsplit((url or '').strip())
    if parts.username is None:
        return None, None
    return unquote(parts.username), unquote(parts.password or '')


class PrometheusClient(object):
    """Instant queries over the HTTP API, counted."""

    def __init__(self, url, timeout=10, validate_certs=True, ca_cert=None, token=None,
                 username=None, password=None, session=None):
        # The base is echoed in messages and stored in the snapshot, so it never carries the
        # userinfo; credentials given as https://user:pass@host are sent as basic auth.
        self.base = api_base(url)
        if not username and not token:
            username, password = url_credentials(url)
        self.timeout = timeout
        self.verify = ca_cert if (validate_certs and ca_cert) else bool(validate_certs)
        self.headers = {'Accept': 'application/json'}
        if token:
            self.headers['Authorization'] = 'Bearer %s' % token
        self.auth = (username, password or '') if username else None
        self.session = session or requests.Session()
        self.queries = 0

    def query(self, name, promql, at=None):
        """Run one instant query; return the list of result series (vector) or raise."""
        params = {'query': promql}
        if at is not None:
            params['time'] = '%.3f' % at
        return self._post(name, promql, '/api/v1/query', params, 'vector')

    def query_range(self, name, promql, start, end, step):
        """Run one range query (points start, start + step, ... up to end); return its series (matrix)."""
        params = {'query': promql, 'start': '%.3f' % start, 'end': '%.3f' % end, 'step': '%d' % step}
        return self._post(name, promql, '/api/v1/query_range', params, 'matrix')

    def _post(self, name, promql, path, params, kind):
        self.queries += 1
        url = self.base + path
        try:
            resp = self.session.post(url, data=params, headers=self.headers, auth=self.auth,
                                     timeout=self.timeout, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise LevellerError('Prometheus at %s: TLS verification failed (%s); set ca_cert or '
                                'prometheus_validate_certs' % (self.base, redact_url(str(exc))),
                                FailureClass.CONFIGURATION)
        except requests.exceptions.RequestException as exc:
            raise LevellerError('Prometheus at %s is unreachable: %s' % (self.base, redact_url(str(exc))),
                                FailureClass.UNREACHABLE)
        return parse_response(name, promql, resp.status_code, resp.text, self.base, kind=kind)


def parse_response(name, promql, status_code, text, base='Prometheus', kind='vector'):
    """Check a query answer and return its result list (``kind``: vector, or matrix for a range query)."""
    if status_code in (401, 403):
        raise LevellerError('Prometheus at %s refused the %s query (HTTP %s): check '
                            'prometheus_token / prometheus_username / prometheus_password'
                            % (base, name, status_code), FailureClass.PERMISSION)
    try:
        import json
        body = json.loads(text)
    except ValueError:
        if status_code == 404:
            raise LevellerError('%s does not answer /api/v1/%s (HTTP 404): is prometheus_url the '
                                'Prometheus base URL (with its route prefix, if any)?'
                                % (base, 'query' if kind == 'vector' else 'query_range'),
                                FailureClass.CONFIGURATION)
        raise LevellerError('Prometheus at %s answered the %s query with HTTP %s and no JSON: %s'
                            % (base, name, status_code, redact_url((text or '')[:200])),
                            FailureClass.UNREACHABLE if status_code >= 500 else FailureClass.CONFIGURATION)
    if body.get('status') != 'success':
        kind = body.get('errorType') or 'error'
        failure = FailureClass.CONFIGURATION
        if kind in ('timeout', 'canceled', 'internal', 'unavailable') or status_code >= 500 and kind != 'bad_data':
            failure = FailureClass.UNREACHABLE
        raise LevellerError('Prometheus rejected the %s query %r: %s: %s' % (
            name, promql, kind, body.get('error')), failure)
    data = body.get('data') or {}
    if data.get('resultType') != kind:
        raise LevellerError('the %s query %r returns a %s, not %s: write it so that it returns one '
                            'number per host (or instance)'
                            % (name, promql, data.get('resultType'),
                               'an instant vector' if kind == 'vector' else 'a series per host (or instance) over time'),
                            FailureClass.CONFIGURATION)
    return data.get('result') or []


def series_label(name, promql, labels, label):
    """The value of ``label`` in a series' labels; a series without it is an error."""
    if label not in labels:
        raise LevellerError(
            'the %s query %r returns series without the label %r (labels: %s): keep the label '
            'in the query (for example "avg by (%s) (...)") or set the label option'
            % (name, promql, label, ', '.join(sorted(labels)) or 'none', label),
            FailureClass.CONFIGURATION)
    return labels[label]


def sample_value(name, promql, raw, label, key, ratio=True, tolerance=EPSILON):
    """One sample as a float, None for NaN; with ``ratio`` checked to 0..1 (``tolerance``
    outside it is clamped, further out is an error)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise LevellerError('the %s query %r returned %r for %s, not a number'
                            % (name, promql, raw, key), FailureClass.CONFIGURATION)
    if math.isnan(value):  # e.g. 0/0 on an idle counter
        return None
    if ratio:
        if value < -tolerance or value > 1 + tolerance:
            raise LevellerError(
                'the %s query %r returned %s for %s=%s, outside 0..1: the query must return a '
                'ratio (divide percentages by 100, bytes by the total)'
                % (name, promql, raw, label, key), FailureClass.CONFIGURATION)
        value = min(1.0, max(0.0, value))
    return value


def samples(name, promql, result, label, ratio=True, tolerance=EPSILON):
    """Turn series into (label value, value, labels) triples and check their units.

    Series without the label are an error (the query aggregated it away); NaN samples are
    skipped (no data, e.g. 0/0); with ``ratio`` values outside 0..1 are an error (units).
    """
    out = []
    for series in result:
        labels = series.get('metric') or {}
        key = series_label(name, promql, labels, label)
        raw = (series.get('value') or (None, None))[1]
        value = sample_value(name, promql, raw, label, key, ratio, tolerance)
        if value is not None:
            out.append((key, value, labels))
    return out


def host_key(value, pattern, host_map):
    """The hypervisor name a label value stands for."""
    if host_map and value in host_map:
        return host_map[value]
    if pattern:
        m = re.search(pattern, value)
        if not m:
            return None
        return m.group(1) if m.groups() else m.group(0)
    return value


def compile_pattern(pattern):
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise LevellerError('prometheus_host_pattern %r is not a valid regular expression: %s'
                            % (pattern, exc), FailureClass.CONFIGURATION)
    if rx.groups > 1:
        raise LevellerError('prometheus_host_pattern %r must have at most one group'
                            % pattern, FailureClass.CONFIGURATION)
    return rx


def host_resolver(hosts, pattern, host_map):
    """A function from a label value to the name of the host in ``hosts`` it stands for, or None.

    Exact match on the host name or the hypervisor host name, after the map and the pattern.
    """
    rx = compile_pattern(pattern)
    names = {}
    for h in hosts:
        names[h['name']] = h['name']
        if h.get('hypervisor_hostname'):
            names.setdefault(h['hypervisor_hostname'], h['name'])

    def resolve(value_label):
        key = host_key(value_label, rx, host_map)
        host = names.get(key) if key is not None else None
        if host is None and value_label in names:
            host = names[value_label]
        return host
    return resolve


def two_series_error(name, promql, host, label, first, second):
    """The error for two series of one query that stand for the same host."""
    return LevellerError(
        'the %s query %r returns two series for host %s (%s=%s and %s=%s): aggregate it '
        '"by (%s)", narrow it (for example job="node") or set prometheus_host_map'
        % (name, promql, host, label, first, label, second, label),
        FailureClass.CONFIGURATION)


def join_to_hosts(name, promql, pairs, hosts, label, pattern, host_map):
    """Map (label value, value) pairs to host names; exact match on the name or node name.

    Returns {host name: value}.  Two series for the same host are an error: the query or the
    mapping is ambiguous (e.g. two jobs scrape the same host).
    """
    resolve = host_resolver(hosts, pattern, host_map)
    out = {}
    origin = {}
    for value_label, value, _labels in pairs:
        host = resolve(value_label)
        if host is None:
            continue  # a series for a host out of scope or not a hypervisor
        if host in out:
            raise two_series_error(name, promql, host, label, origin[host], value_label)
        out[host] = value
        origin[host] = value_label
    return out


def fetch(client, queries, label, last_sample=None, now=None, raw=(), tolerance=EPSILON):
    """Run each query once (for all hosts or instances), evaluated at the same time ``now``.

    Returns {metric: (promql, [(label value, value, labels)])}; metrics in ``raw`` are not
    ratios (they are normalised later); the last-sample query, when given, is stored under
    ``_last_sample`` (its values are Unix times).
    """
    fetched = {}
    for metric in sorted(queries):
        promql = queries[metric]
        fetched[metric] = (promql, samples(metric, promql, client.query(metric, promql, at=now), label,
                                           ratio=metric not in raw, tolerance=tolerance))
    if last_sample:
        fetched['_last_sample'] = (last_sample, samples(
            'last sample', last_sample, client.query('last sample', last_sample, at=now), label,
            ratio=False))
    return fetched


def host_loads(fetched, hosts, label=DEFAULT_HOST_LABEL, pattern=DEFAULT_HOST_PATTERN,
               host_map=None, staleness=None, now=None):
    """Join fetched series to hosts.

    With ``staleness`` (seconds) and a ``_last_sample`` series (per host, the Unix time of its
    newest raw sample), hosts whose data is older count as without load.
    Returns ({host: {metric: value}}, {host: reason why its load is missing}).
    """
    loads = dict((h['name'], {}) for h in hosts)
    why = {}
    for metric in sorted(m for m in fetched if not m.startswith('_')):
        promql, pairs = fetched[metric]
        joined = join_to_hosts(metric, promql, pairs, hosts, label, pattern, host_map)
        for name in loads:
            if name in joined:
                loads[name][metric] = joined[name]
            else:
                why.setdefault(name, 'no %s series' % metric)
    if staleness and '_last_sample' in fetched:
        promql, pairs = fetched['_last_sample']
        last = join_to_hosts('last sample', promql, pairs, hosts, label, pattern, host_map)
        for name in loads:
            if name in why:
                continue
            if name not in last:
                why[name] = 'no series for the last-sample query'
            elif now is not None and now - last[name] > staleness:
                why[name] = 'newest sample is %d s old (staleness %d s)' % (now - last[name], staleness)
    for name in why:
        loads[name] = {}
    return loads, why


# Units of per-instance queries, and the flavor field each is divided by.
INSTANCE_UNITS = {'ratio': None, 'cores': 'vcpus', 'mb': 'memory_mb'}


def instance_share(metric, promql, unit, value, inst, tolerance=EPSILON):
    """An instance's value as a share 0..1 of its flavor (``cores`` / ``mb``), as is for ``ratio``.

    None when the flavor lacks the size to divide by; more than the flavor is a units error.
    """
    field = INSTANCE_UNITS[unit]
    if not field:
        return round(value, 6)
    size = (inst.get('flavor') or {}).get(field)
    if not size:
        return None
    share = value / float(size)
    if share < -tolerance or share > 1 + tolerance:
        raise LevellerError(
            'the instance %s query %r returned %s %s for instance %s (%s), more than its '
            'flavor has (%s): check the query and its unit (instance_%s_unit)'
            % (metric, promql, value, unit, inst.get('id'), inst.get('name'), size, metric),
            FailureClass.CONFIGURATION)
    return round(min(1.0, max(0.0, share)), 6)


def two_instance_series_error(metric, promql, uuid):
    return LevellerError('the instance %s query %r returns two series for instance %s: '
                         'aggregate it by the instance label' % (metric, promql, uuid),
                         FailureClass.CONFIGURATION)


def instance_loads(fetched, instances, units=None, tolerance=EPSILON):
    """Per-instance loads, 0..1 of each instance's own flavor: {uuid: {metric: value}}.

    Series are labelled with the instance UUID.  ``units`` says, per metric, what the query
    returns: ``ratio`` (0..1 already), ``cores`` (CPU seconds per second, divided by the
    flavor's vCPUs) or ``mb`` (memory used, divided by the flavor's RAM).
    """
    units = units or {}
    by_id = dict((i['id'], i) for i in instances)
    loads = {}
    for metric in sorted(fetched):
        promql, pairs = fetched[metric]
        unit = units.get(metric, 'ratio')
        for uuid, value, _labels in pairs:
            inst = by_id.get(uuid)
            if inst is None:
                continue
            if metric in loads.get(uuid, {}):
                raise two_instance_series_error(metric, promql, uuid)
            value = instance_share(metric, promql, unit, value, inst, tolerance)
            if value is None:
                continue
            loads.setdefault(uuid, {})[metric] = value
    return loads


# ---------------------------------------------------------------- load history (range queries)

def range_chunks(start, step, times, max_points=MAX_POINTS):
    """Split the grid start + k * step (k < times) into requests of at most ``max_points`` points.

    Returns [(first k, request start, request end)]; each request ends on its last grid point,
    so consecutive requests neither overlap nor leave a point out.
    """
    chunks = []
    first = 0
    while first < times:
        last = min(times, first + max_points) - 1
        chunks.append((first, start + first * step, start + last * step))
        first = last + 1
    return chunks


def fetch_range(client, queries, label, start, step, times, raw=(), max_points=MAX_POINTS):
    """Run each query over the grid, in as many range requests as ``max_points`` needs.

    Returns ({metric: (promql, [(label value, {k: value}, labels)])}, number of requests). The
    pieces of one series (same labels) from consecutive requests are put back together; samples
    are checked as the instant path checks them (``raw`` metrics are not ratios).
    """
    fetched = {}
    requests_sent = 0
    chunks = range_chunks(start, step, times, max_points)
    for metric in sorted(queries):
        promql = queries[metric]
        by_labels = {}
        for first, chunk_start, chunk_end in chunks:
            result = client.query_range(metric, promql, chunk_start, chunk_end, step)
            requests_sent += 1
            for series in result:
                labels = series.get('metric') or {}
                key = series_label(metric, promql, labels, label)
                points = by_labels.setdefault(tuple(sorted(labels.items())), (key, {}, labels))[1]
                for t, value in series.get('values') or ():
                    k = int(round((float(t) - start) / step))
                    if k < first or k >= times:
                        continue  # not a point of this request's part of the grid
                    value = sample_value(metric, promql, value, label, key, ratio=metric not in raw,
                                         tolerance=HISTORY_TOLERANCE)
                    if value is not None:
                        points[k] = value
        fetched[metric] = (promql, [by_labels[labels] for labels in sorted(by_labels)])
    return fetched, requests_sent


def host_history(fetched, hosts, times, label=DEFAULT_HOST_LABEL, pattern=DEFAULT_HOST_PATTERN,
                 host_map=None):
    """Every host's series over the grid: {host: {metric: [value or None] * times}}.

    Series are joined as join_to_hosts joins an instant answer; two series with a sample for the
    same host at the same grid point are the same error.
    """
    resolve = host_resolver(hosts, pattern, host_map)
    out = dict((h['name'], dict((m, [None] * times) for m in sorted(fetched))) for h in hosts)
    for metric in sorted(fetched):
        promql, series = fetched[metric]
        origin = {}
        for key, points, _labels in series:
            host = resolve(key)
            if host is None:
                continue
            line = out[host][metric]
            seen = origin.setdefault(host, {})
            for k, value in points.items():
                if line[k] is not None:
                    raise two_series_error(metric, promql, host, label, seen[k], key)
                line[k] = value
                seen[k] = key
    return out


def instance_history(fetched, instances, times, units=None):
    """Every instance's series over the grid, 0..1 of its flavor: {uuid: {metric: [value or None]}}."""
    units = units or {}
    if not fetched:
        return {}
    out = dict((i['id'], dict((m, [None] * times) for m in sorted(fetched))) for i in instances)
    by_id = dict((i['id'], i) for i in instances)
    for metric in sorted(fetched):
        promql, series = fetched[metric]
        unit = units.get(metric, 'ratio')
        for uuid, points, _labels in series:
            inst = by_id.get(uuid)
            if inst is None:
                continue
            line = out[uuid][metric]
            for k, value in points.items():
                if line[k] is not None:
                    raise two_instance_series_error(metric, promql, uuid)
                line[k] = instance_share(metric, promql, unit, value, inst, tolerance=HISTORY_TOLERANCE)
    return out
