# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One snapshot from Nova/Placement, Prometheus and libvirt, or an error: never a half-truth."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import math
import re
import threading
import time

from ansible_collections.cloudops.leveller.plugins.module_utils import _timespec as timespec
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import nova as nova_source
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom

METRICS = ('cpu', 'memory')
# Clocks differ a little: a time this far ahead of ours still counts as now.
FUTURE_SLACK = 5
MAX_HISTORY_DAYS = 31
DEFAULT_HISTORY_STEP = 300


def utc_datetime(ts):
    """A naive UTC datetime from a Unix time."""
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).replace(tzinfo=None)


def utc_iso(ts):
    return utc_datetime(int(ts)).strftime('%Y-%m-%dT%H:%M:%SZ')


class HttpCounter(object):
    """Counts every HTTP request an openstacksdk connection sends (auth, discovery included)."""

    def __init__(self, conn):
        self.count = 0
        self._lock = threading.Lock()
        session = getattr(conn, 'session', None)
        if session is None or not hasattr(session, 'request'):
            self.count = None
            return
        original = session.request

        def counted(*args, **kwargs):
            with self._lock:
                self.count += 1
            return original(*args, **kwargs)

        session.request = counted


def window_of(promql):
    """The range of the first range selector in a query ('5m'), for the record."""
    m = re.search(r'\[(\d+[smhdwy])(?::[^\]]*)?\]', promql or '')
    return m.group(1) if m else None


def apply_host_loads(hosts, loads, source):
    """Set load/load_source on hosts that have every metric; return the names without."""
    missing = []
    for h in hosts:
        values = loads.get(h['name']) or {}
        if h['load'] is None and all(values.get(m) is not None for m in METRICS):
            h['load'] = dict((m, values[m]) for m in METRICS)
            h['load_source'] = source
        if h['load'] is None:
            missing.append(h['name'])
    return missing


def apply_instance_loads(instances, loads):
    """Merge per-instance loads ({uuid: {metric: value}}); null stays null."""
    for inst in instances:
        values = loads.get(inst['id']) or {}
        known = dict((m, values.get(m)) for m in METRICS)
        if all(v is None for v in known.values()):
            continue
        if inst['load'] is None:
            inst['load'] = known
        else:
            for m in METRICS:
                if inst['load'].get(m) is None:
                    inst['load'][m] = known[m]


def check_missing(hosts, why, allow_missing, label):
    """Fail (before returning anything) when a host in scope has no load.

    Hosts Nova reports down are exempt: a snapshot is most needed when a host has failed, and
    a failed host has no metrics.
    """
    lacking = [h for h in hosts if h['load'] is None and h['up'] and not h['forced_down']]
    if not lacking or allow_missing:
        return
    names = [h['name'] for h in lacking]
    detail = '; '.join('%s: %s' % (h['name'], why.get(h['name'], 'no load from any source'))
                       for h in lacking)
    failure = FailureClass.CONFIGURATION if len(lacking) == len([h for h in hosts if h['up']]) \
        else FailureClass.INCONSISTENT
    raise LevellerError(
        'no measured load for host%s %s in scope (%s). Check that the exporters of these hosts '
        'report, and the host label mapping (prometheus_host_label=%r, prometheus_host_pattern, '
        'prometheus_host_map); or set allow_missing_load=true to mark them with load null'
        % ('s' if len(names) > 1 else '', ', '.join(names), detail, label), failure)


def libvirt_hosts_in_scope(lv, p):
    """{host name: URI} of the libvirt_uris in scope, for snapshots without Nova.

    Raises LevellerError (configuration) on a missing or bad URI, an unknown host in
    scope.hosts, or a scope no host matches; nothing has been asked yet.
    """
    uris = p.get('libvirt_uris') or {}
    if not uris:
        raise LevellerError('sources without nova takes its hosts from libvirt_uris, which is empty: '
                            'give each host name its libvirt URI (qemu+ssh://user@host/system)',
                            FailureClass.CONFIGURATION)
    for name in sorted(uris):
        lv.check_uri(name, uris[name])
    scope = p.get('scope') or {}
    unknown = sorted(set(scope.get('hosts') or []) - set(uris))
    if unknown:
        raise LevellerError('scope.hosts names hosts that are not in libvirt_uris: %s'
                            % ', '.join(unknown), FailureClass.CONFIGURATION)
    az = p.get('libvirt_availability_zone')
    wanted = dict((n, u) for n, u in uris.items() if nova_source.in_scope(
        {'name': n, 'hypervisor_hostname': n, 'az': az, 'aggregates': []}, scope))
    if not wanted:
        raise LevellerError('no host of libvirt_uris matches the scope %r (libvirt hosts are in '
                            'availability zone %r, from libvirt_availability_zone, and in no aggregate)'
                            % (scope, az), FailureClass.CONFIGURATION)
    return wanted


def past_instant(name, value, now):
    """The Unix time (ms precision) of option ``name``, which must not be in the future."""
    try:
        ts = timespec.parse_instant(value, now)
    except ValueError as exc:
        raise LevellerError('%s: %s' % (name, exc), FailureClass.CONFIGURATION)
    if ts > now + FUTURE_SLACK:
        raise LevellerError('%s is %s, %d s in the future: loads can only be read up to now; give a '
                            'past time (an ISO 8601 time with a zone, Unix seconds, now, or a duration '
                            'before now such as -6h)' % (name, utc_iso(ts), ts - now),
                            FailureClass.CONFIGURATION)
    return round(min(ts, now), 3)


def history_grid(history, sources, at, now):
    """Check the history option; return its grid {start, end, step, times}, or None without it.

    Raises LevellerError (configuration), naming the field, before anything is asked.
    """
    if not history:
        return None
    if 'prometheus' not in sources:
        raise LevellerError('history reads past loads from Prometheus, and sources (%s) does not '
                            'include prometheus: add prometheus to sources, or unset history'
                            % ', '.join(sources), FailureClass.CONFIGURATION)
    if history.get('start') is None:
        raise LevellerError('history.start is required: the first time of the history (for example -24h)',
                            FailureClass.CONFIGURATION)
    start = past_instant('history.start', history['start'], now)
    if history.get('end') is not None:
        end = past_instant('history.end', history['end'], now)
    else:
        end = at if at is not None else now
    step = history.get('step')
    if step is None:
        step = DEFAULT_HISTORY_STEP
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise LevellerError('history.step must be a whole number of seconds, at least 1 (got %r)' % (step,),
                            FailureClass.CONFIGURATION)
    if start >= end:
        if history.get('end') is not None:
            default = ''
        elif at is not None:
            default = ', which defaults to at; set history.end to now for the loads since at'
        else:
            default = ', which defaults to now'
        raise LevellerError('history.start (%s) must be before history.end (%s%s): move history.start '
                            'earlier' % (utc_iso(start), utc_iso(end), default), FailureClass.CONFIGURATION)
    if end - start > MAX_HISTORY_DAYS * 86400:
        raise LevellerError('history covers %.1f days (history.start %s to history.end %s), more than %d: '
                            'move history.start later or history.end earlier'
                            % ((end - start) / 86400.0, utc_iso(start), utc_iso(end), MAX_HISTORY_DAYS),
                            FailureClass.CONFIGURATION)
    # The millisecond slack keeps a span of exactly n steps from losing its last point to rounding.
    times = int(math.floor((end - start) / step + 1e-6)) + 1
    return {'start': start, 'end': end, 'step': step, 'times': times}


def time_options(p, now):
    """Check ``at`` and ``history`` against ``now``: (at as a Unix time or None, history grid or None).

    Raises LevellerError (configuration) naming the option; nothing is asked.
    """
    sources = p.get('sources') or ['nova', 'prometheus']
    at = None
    if p.get('at') is not None:
        if 'libvirt' in sources:
            raise LevellerError('at reads loads at a past time, and libvirt measures only now: remove '
                                'libvirt from sources (%s) or unset at' % ', '.join(sources),
                                FailureClass.CONFIGURATION)
        at = past_instant('at', p['at'], now)
    return at, history_grid(p.get('history'), sources, at, now)


def load_history(grid, host_fetched, inst_fetched, hosts, instances, p, label, pattern, inst_units, requests_sent):
    """The load history result: every host's and instance's series over the grid, and what is missing."""
    host_series = prom.host_history(host_fetched, hosts, grid['times'], label=label, pattern=pattern,
                                    host_map=p.get('prometheus_host_map'))
    inst_series = prom.instance_history(inst_fetched or {}, instances, grid['times'], inst_units)

    def has_cpu(series):
        return any(v is not None for v in (series or {}).get('cpu') or ())
    return {
        'start': grid['start'],
        'step': grid['step'],
        'times': grid['times'],
        'hosts': host_series,
        'instances': inst_series,
        'queries': requests_sent,
        'missing': {
            'hosts': sorted(n for n, series in host_series.items() if not has_cpu(series)),
            'instances': sum(1 for i in instances if not has_cpu(inst_series.get(i['id']))),
        },
    }


def gather(conn, p, now=None, validate=None, prometheus_client=None):
    """Build the snapshot from the module's parameters ``p`` (a dict).

    Returns (snapshot dict, summary dict).  Raises LevellerError.  See gather_all for the load
    history.
    """
    snapshot, summary, _history = gather_all(conn, p, now=now, validate=validate,
                                             prometheus_client=prometheus_client)
    return snapshot, summary


def gather_all(conn, p, now=None, validate=None, prometheus_client=None):
    """Build the snapshot, and with ``p['history']`` the load history, from the module's parameters.

    With ``p['at']`` the loads (every instant query) are read at that past time, and Nova and
    Placement as they are now. Returns (snapshot dict, summary dict, load history dict or None).
    Raises LevellerError.
    """
    started = time.time()
    # Nova and Placement are read now; every query is evaluated at ``when`` (now, or at), sent
    # with millisecond precision.
    now = round(now or started, 3)
    sources = p.get('sources') or ['nova', 'prometheus']
    if 'nova' not in sources and 'libvirt' not in sources:
        raise LevellerError('sources must include nova (hosts and instances from Nova and Placement) '
                            'or libvirt (hosts and instances from the domains of libvirt_uris, for plain '
                            'KVM hosts without OpenStack); prometheus only adds measured load',
                            FailureClass.CONFIGURATION)
    at, grid = time_options(p, now)
    when = at if at is not None else now
    libvirt_only = 'nova' not in sources
    lv = None
    if 'libvirt' in sources:
        from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as lv
        if not lv.HAS_LIBVIRT:
            raise LevellerError('the libvirt source needs libvirt-python', FailureClass.CONFIGURATION)
    wanted = None
    if libvirt_only:
        # Bad URIs and scopes fail here, before Prometheus or any libvirt is asked.
        wanted = libvirt_hosts_in_scope(lv, p)
    http = HttpCounter(conn)
    counter = nova_source.ApiCounter()
    prom_client = prometheus_client
    if 'prometheus' in sources and prom_client is None:
        if not p.get('prometheus_url'):
            raise LevellerError('sources includes prometheus but prometheus_url is not set (nor '
                                'PROMETHEUS_QUERY_URL / LEVELLER_PROMETHEUS_URL)',
                                FailureClass.CONFIGURATION)
        if not prom.HAS_REQUESTS:
            raise LevellerError('the prometheus source needs the python requests library',
                                FailureClass.CONFIGURATION)
        prom_client = prom.PrometheusClient(
            p['prometheus_url'], timeout=p.get('prometheus_timeout') or 10,
            validate_certs=p.get('prometheus_validate_certs', True), ca_cert=p.get('prometheus_ca_cert'),
            token=p.get('prometheus_token'), username=p.get('prometheus_username'),
            password=p.get('prometheus_password'))
    label = p.get('prometheus_host_label') or prom.DEFAULT_HOST_LABEL
    pattern = p.get('prometheus_host_pattern')
    if pattern is None:
        pattern = prom.DEFAULT_HOST_PATTERN
    queries = {'cpu': p.get('query_cpu') or prom.DEFAULT_QUERY_CPU,
               'memory': p.get('query_memory') or prom.DEFAULT_QUERY_MEMORY}
    last_sample = p.get('query_last_sample')
    if last_sample is None:
        last_sample = 'max by (%s) (timestamp(node_memory_MemAvailable_bytes))' % label
    fetched = inst_fetched = hist_fetched = hist_inst_fetched = None
    hist_requests = 0
    instance_queries = {}
    inst_units = {}
    if prom_client is not None:
        # Prometheus first: an unreachable server or a wrong query fails before the Nova reads.
        prom.compile_pattern(pattern)
        if not p.get('staleness'):
            last_sample = None
        # Loads read at a past time start a history: they get the history's tolerance.
        tolerance = prom.EPSILON if at is None else prom.HISTORY_TOLERANCE
        fetched = prom.fetch(prom_client, queries, label, last_sample=last_sample, now=when, tolerance=tolerance)
        for metric in METRICS:
            if p.get('query_instance_%s' % metric):
                instance_queries[metric] = p['query_instance_%s' % metric]
        inst_label = p.get('prometheus_instance_label') or prom.DEFAULT_INSTANCE_LABEL
        raw = []
        if instance_queries:
            inst_units = dict((m, p.get('instance_%s_unit' % m) or 'ratio') for m in instance_queries)
            raw = [m for m, u in inst_units.items() if u != 'ratio']
            inst_fetched = prom.fetch(prom_client, instance_queries, inst_label, now=when, raw=raw,
                                      tolerance=tolerance)
        if grid:
            hist_fetched, hist_requests = prom.fetch_range(
                prom_client, queries, label, grid['start'], grid['step'], grid['times'])
            if instance_queries:
                hist_inst_fetched, more = prom.fetch_range(
                    prom_client, instance_queries, inst_label, grid['start'], grid['step'], grid['times'],
                    raw=raw)
                hist_requests += more
    prom_done = time.time()

    measured = None
    if libvirt_only:
        measured = lv.read_hosts(wanted, interval=p.get('libvirt_sample_interval') or 5.0)
        hosts, instances, _host_loads, _dom_loads = lv.inventory(
            measured, availability_zone=p.get('libvirt_availability_zone'),
            allocation_ratio=p.get('libvirt_allocation_ratio'))
        source_info = {}
    else:
        hosts, instances, source_info, counter = nova_source.collect(
            conn, scope=p.get('scope'), history_hours=p.get('history_hours'),
            page_size=p.get('page_size') or 1000, max_workers=p.get('placement_workers') or 8,
            now=utc_datetime(now), counter=counter)
    nova_done = time.time()

    why = {}
    if prom_client is not None:
        loads, why = prom.host_loads(fetched, hosts, label=label, pattern=pattern,
                                     host_map=p.get('prometheus_host_map'),
                                     staleness=p.get('staleness'), now=when)
        apply_host_loads(hosts, loads, 'prometheus')
        if inst_fetched:
            apply_instance_loads(instances, prom.instance_loads(inst_fetched, instances, inst_units,
                                                                tolerance=tolerance))
        source_info['prometheus'] = {
            'url': redact_url(prom_client.base),
            'queries': dict(queries, **dict(('instance_%s' % k, v) for k, v in instance_queries.items())),
            'last_sample_query': last_sample,
            'window': window_of(queries['cpu']),
            'time': when,
            'instance_units': inst_units,
            'host_label': label,
            'staleness': p.get('staleness'),
        }

    libvirt_hosts = 0
    if 'libvirt' in sources:
        if measured is None:
            uris = p.get('libvirt_uris') or {}
            names = set(h['name'] for h in hosts)
            unknown = sorted(set(uris) - names)
            wanted = dict((n, u) for n, u in uris.items() if n in names)
            if not wanted:
                raise LevellerError('sources includes libvirt but libvirt_uris names no host in scope '
                                    '(hosts in scope: %s; unknown: %s)' % (', '.join(sorted(names)),
                                                                           ', '.join(unknown) or 'none'),
                                    FailureClass.CONFIGURATION)
            measured = lv.read_hosts(wanted, interval=p.get('libvirt_sample_interval') or 5.0)
        libvirt_hosts = len(measured)
        host_loads = dict((n, {'cpu': m[0]['cpu'], 'memory': m[0]['memory']}) for n, m in measured.items())
        apply_host_loads(hosts, host_loads, 'libvirt')
        for h in hosts:
            if h['name'] in measured and h['load_source'] == 'libvirt':
                h['load'].update((k, v) for k, v in measured[h['name']][0].items()
                                 if k.startswith('disk_'))
                why.pop(h['name'], None)
            elif h['load'] is None and h['name'] not in wanted:
                why.setdefault(h['name'], 'no libvirt URI')
        dom_loads = {}
        for n, m in measured.items():
            dom_loads.update(m[1])
        apply_instance_loads(instances, dom_loads)
        # The snapshot is stored and shared: no password of a URI goes into it.
        source_info['libvirt'] = {'uris': dict((n, redact_url(u)) for n, u in sorted(wanted.items())),
                                  'interval': p.get('libvirt_sample_interval') or 5.0}
        if libvirt_only:
            # Say what a snapshot without Nova does not know, for whoever reads it later.
            source_info['libvirt'].update(
                inventory=True,
                availability_zone=p.get('libvirt_availability_zone'),
                capacity='node info: CPUs and memory; disk capacity unknown (disk_gb 0, not limited)',
                flavors='domain vCPUs and maximum memory; disks not counted',
                server_groups='none (libvirt has no server groups)')
    if 'prometheus' in sources or 'libvirt' in sources:
        check_missing(hosts, why, p.get('allow_missing_load'), label)
    # With Nova alone nothing was asked to measure load: hosts carry load null and
    # load_source none, and the planner works on allocations.

    weights = {}
    if p.get('weight_cpu') is not None:
        weights['cpu'] = p['weight_cpu']
    if p.get('weight_memory') is not None:
        weights['memory'] = p['weight_memory']
    if weights:
        source_info['weights'] = weights
    if at is not None:
        # Loads of the past on today's placement: say both times, for whoever reads it later.
        source_info['at'] = {'loads_at': utc_iso(at), 'placement_at': utc_iso(now)}

    snapshot = {
        'version': 1,
        # The planner's cooldowns compare last_moved_at with it: the time of the loads.
        'taken_at': utc_iso(when),
        'sources': source_info,
        'hosts': hosts,
        'instances': instances,
    }
    if validate is not None:
        try:
            validate(snapshot)
        except ValueError as exc:
            raise LevellerError('the snapshot built from the cloud breaks the snapshot contract: '
                                '%s' % exc, FailureClass.INCONSISTENT)
    counts = dict(counter.counts)
    summary = {
        'hosts': len(hosts),
        'instances': len(instances),
        'migratable_instances': sum(1 for i in instances if i['migratable']),
        'instances_on_unknown_hosts': sum(len(ids) for ids in (source_info.get('nova') or {}).get(
            'instances_on_unknown_hosts', {}).values()),
        'unowned_allocations': sum(len(items) for items in (source_info.get('placement') or {}).get(
            'unowned_allocations', {}).values()),
        'hosts_with_load': sum(1 for h in hosts if h['load'] is not None),
        'hosts_without_load': sorted(h['name'] for h in hosts if h['load'] is None),
        'missing_load_reasons': dict((n, why[n]) for n in sorted(why)
                                     if n in set(h['name'] for h in hosts if h['load'] is None)),
        'api_calls': {
            'nova': counts.get('nova', 0),
            'placement': counts.get('placement', 0),
            'placement_per_host': counts.get('placement_per_host', 0),
            'total': counter.total(),
            'http_requests': http.count,
        },
        'prometheus_queries': prom_client.queries if prom_client is not None else 0,
        'libvirt_hosts': libvirt_hosts,
        'seconds': {
            'prometheus': round(prom_done - started, 3),
            'nova_placement': 0.0 if libvirt_only else round(nova_done - prom_done, 3),
            'libvirt': round(nova_done - prom_done, 3) if libvirt_only else None,
            'total': round(time.time() - started, 3),
        },
    }
    history = None
    if grid:
        history = load_history(grid, hist_fetched, hist_inst_fetched, hosts, instances, p, label, pattern,
                               inst_units, hist_requests)
    return snapshot, summary, history
