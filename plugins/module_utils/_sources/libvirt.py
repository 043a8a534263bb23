# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measured load from libvirt, for clouds without Prometheus and for plain KVM hosts.

Each host is read through its own libvirt URI (read-only connection).  CPU is a rate: two
samples of cumulative counters ``interval`` seconds apart; all hosts are sampled in parallel, so
a snapshot takes about one interval whatever the number of hosts.  Domains are matched to Nova
instances by UUID (libvirt's domain UUID is the Nova instance UUID).

Without Nova (plain KVM hosts), ``inventory`` turns the same readings into the snapshot's hosts
and instances: capacity from the node info, instances from the domains.  Two marks written by the
libvirt execution backend stand in for what Nova would keep:

- maintenance: a libvirt secret object with usage type ``tls`` and usage name
  ``MAINTENANCE_USAGE`` (it holds no value); its description is ``MAINTENANCE_PREFIX`` + the
  reason. A host carrying it is ``enabled: false`` with that ``disabled_reason``.
- the last move: an element ``<leveller:move at=... from=... to=.../>`` in the domain's metadata
  under ``MOVE_NS``; ``at`` is the instance's ``last_moved_at`` (cooldown, no ping-pong).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
import traceback

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover
    ThreadPoolExecutor = None

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError:
    libvirt = None
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url,
)
from ansible_collections.cloudops.leveller.plugins.module_utils._sources.nova import not_migratable_reason

VIR_DOMAIN_RUNNING = 1
MAINTENANCE_USAGE = 'cloudops-leveller-maintenance'
MAINTENANCE_PREFIX = 'cloudops.leveller maintenance: '
MOVE_NS = 'urn:cloudops-leveller:move:1'
MOVE_PREFIX = 'leveller'
_VIR_SECRET_USAGE_TYPE_TLS = 4
_VIR_DOMAIN_METADATA_ELEMENT = 2
_VIR_ERR_NO_SUPPORT = 3
_VIR_ERR_NO_DOMAIN = 42
_VIR_ERR_NO_SECRET = 66
_VIR_ERR_NO_DOMAIN_METADATA = 80
# virDomainState -> (power state, Nova-like status, task state) for libvirt-only snapshots.
DOMAIN_STATES = {
    0: ('nostate', 'UNKNOWN', None),
    1: ('running', 'ACTIVE', None),
    2: ('blocked', 'ACTIVE', None),  # running, waiting on a resource
    3: ('paused', 'PAUSED', None),
    4: ('shutdown', 'ACTIVE', 'powering-off'),  # being shut down
    5: ('shutoff', 'SHUTOFF', None),
    6: ('crashed', 'ERROR', None),
    7: ('pmsuspended', 'SUSPENDED', None),
}
# Hypervisor drivers of libvirt URIs (scheme before any '+transport').
KNOWN_DRIVERS = ('qemu', 'test', 'xen', 'libxl', 'lxc', 'ch', 'bhyve', 'vbox', 'vmwareplayer',
                 'vmwarews', 'vmwarefusion', 'vpx', 'esx', 'gsx', 'hyperv', 'openvz', 'vz',
                 'parallels', 'phyp', 'remote')


def _ratio(value):
    if value is None:
        return None
    return round(min(1.0, max(0.0, value)), 6)


def host_cpu_from_counters(before, after):
    """Busy share of the host's CPUs between two ``getCPUStats(ALL_CPUS)`` samples.

    Returns None when the counters did not move (a driver that reports constants).
    """
    keys = set(before) & set(after)
    total = sum(after[k] - before[k] for k in keys)
    if total <= 0 or 'idle' not in keys:
        return None
    idle = (after['idle'] - before['idle']) + (after.get('iowait', 0) - before.get('iowait', 0))
    return _ratio(1.0 - float(idle) / total)


def host_memory_from_stats(stats, total_kib=None, free_bytes=None):
    """Used share of host memory: from ``getMemoryStats`` (KiB) when the driver has it,
    else from the node's total (KiB) and ``getFreeMemory`` (bytes)."""
    if stats and stats.get('total'):
        avail = stats.get('free', 0) + stats.get('buffers', 0) + stats.get('cached', 0)
        return _ratio(1.0 - float(avail) / stats['total'])
    if total_kib and free_bytes is not None:
        return _ratio(1.0 - (free_bytes / 1024.0) / total_kib)
    return None


def domain_cpu(before, after, seconds, vcpus):
    """Share of a domain's own vCPUs used: delta cpu time (ns) / (seconds * vcpus)."""
    if seconds <= 0 or not vcpus or before is None or after is None:
        return None
    return _ratio((after - before) / (seconds * 1e9 * vcpus))


def domain_memory(stats):
    """Share of a domain's own memory used: guest view (balloon 'unused'/'available') when the
    guest reports it, else resident set over the balloon size."""
    stats = stats or {}
    if stats.get('available') and 'unused' in stats:
        return _ratio(1.0 - float(stats['unused']) / stats['available'])
    if stats.get('actual') and 'rss' in stats:
        return _ratio(float(stats['rss']) / stats['actual'])
    return None


def maintenance_mark(conn):
    """The reason of the host's maintenance mark, or None (also on drivers without secrets)."""
    import xml.etree.ElementTree as ET
    try:
        secret = conn.secretLookupByUsage(_VIR_SECRET_USAGE_TYPE_TLS, MAINTENANCE_USAGE)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (_VIR_ERR_NO_SECRET, _VIR_ERR_NO_SUPPORT):
            return None
        raise
    try:
        text = ET.fromstring(secret.XMLDesc(0)).findtext('description') or ''
    except ET.ParseError:
        text = ''
    reason = text[len(MAINTENANCE_PREFIX):] if text.startswith(MAINTENANCE_PREFIX) else text
    return reason.strip() or 'maintenance'


def node_held(conn):
    """(node CPUs, node memory MiB, vCPUs and MiB every domain defined there holds, running or not):
    the figures a host's room is made of, counted as ``inventory`` counts them."""
    info = conn.getInfo()  # [model, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
    vcpus = memory_mb = 0
    for dom in conn.listAllDomains(0):
        try:
            dinfo = dom.info()  # [state, max memory KiB, memory KiB, vcpus, cpu time]
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == _VIR_ERR_NO_DOMAIN:
                continue  # gone since the list (a migration that just ended)
            raise
        vcpus += dinfo[3]
        memory_mb += dinfo[1] // 1024
    return info[2], info[1], vcpus, memory_mb


def move_xml(at, source, destination):
    """The metadata element recording a completed migration (without its namespace prefix)."""
    from xml.sax.saxutils import quoteattr
    return '<move at=%s from=%s to=%s/>' % (quoteattr(at), quoteattr(source or ''), quoteattr(destination or ''))


def last_moved_at(dom):
    """``at`` of the domain's move record (an ISO 8601 UTC time), or None."""
    import xml.etree.ElementTree as ET
    try:
        text = dom.metadata(_VIR_DOMAIN_METADATA_ELEMENT, MOVE_NS, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (_VIR_ERR_NO_DOMAIN_METADATA, _VIR_ERR_NO_SUPPORT):
            return None
        raise
    try:
        at = ET.fromstring(text).get('at')
    except ET.ParseError:
        return None
    try:
        time.strptime(at or '', '%Y-%m-%dT%H:%M:%SZ')
    except ValueError:
        return None  # not ours, or damaged: no cooldown rather than a wrong one
    return at


def _disk_devices(dom):
    import xml.etree.ElementTree as ET
    try:
        root = ET.fromstring(dom.XMLDesc(0))
    except Exception:
        return []
    return [t.get('dev') for t in root.findall('./devices/disk/target') if t.get('dev')]


def _sample_host(conn):
    """One sample of the host and its running domains' cumulative counters."""
    sample = {'at': time.time(), 'domains': {}, 'inventory': []}
    try:
        sample['cpu'] = conn.getCPUStats(-1, 0)
    except libvirt.libvirtError:
        sample['cpu'] = None
    for dom in conn.listAllDomains(0):
        state, max_kib, mem_kib, vcpus, cpu_time = dom.info()
        sample['inventory'].append({'uuid': dom.UUIDString(), 'name': dom.name(), 'state': state,
                                    'vcpus': vcpus, 'max_memory_kib': max_kib,
                                    'last_moved_at': last_moved_at(dom)})
        if state != VIR_DOMAIN_RUNNING:
            continue
        rd = wr = 0
        for dev in _disk_devices(dom):
            try:
                stats = dom.blockStats(dev)
                rd += stats[1]
                wr += stats[3]
            except libvirt.libvirtError:
                pass
        try:
            mstats = dom.memoryStats()
        except libvirt.libvirtError:
            mstats = {}
        sample['domains'][dom.UUIDString()] = {
            'name': dom.name(), 'vcpus': vcpus, 'memory_kib': mem_kib, 'cpu_time': cpu_time,
            'rd_bytes': rd, 'wr_bytes': wr, 'memory_stats': mstats,
        }
    return sample


def _rate(a, b, seconds):
    if seconds <= 0 or a is None or b is None:
        return None
    return round(max(0.0, (b - a) / seconds), 3)


def measure(first, second, cpus, total_kib, mem_stats, free_bytes):
    """Host and domain loads from two samples (pure; the unit tests feed it by hand)."""
    seconds = second['at'] - first['at']
    domains = {}
    dom_cpu_ns = 0.0
    for uuid, d2 in second['domains'].items():
        d1 = first['domains'].get(uuid)
        if d1 is None:
            continue  # started between the samples: no rate yet
        dom_cpu_ns += max(0, d2['cpu_time'] - d1['cpu_time'])
        domains[uuid] = {
            'name': d2['name'],
            'cpu': domain_cpu(d1['cpu_time'], d2['cpu_time'], seconds, d2['vcpus']),
            'memory': domain_memory(d2['memory_stats']),
            'disk_read_bytes_per_s': _rate(d1['rd_bytes'], d2['rd_bytes'], seconds),
            'disk_write_bytes_per_s': _rate(d1['wr_bytes'], d2['wr_bytes'], seconds),
        }
    cpu = None
    cpu_from = 'node counters'
    if first.get('cpu') and second.get('cpu'):
        cpu = host_cpu_from_counters(first['cpu'], second['cpu'])
    if cpu is None and cpus and seconds > 0:
        # Drivers without moving node counters: the domains' own CPU time is a lower bound.
        cpu = _ratio(dom_cpu_ns / (seconds * 1e9 * cpus))
        cpu_from = 'domain cpu time'
    host = {
        'cpu': cpu,
        'memory': host_memory_from_stats(mem_stats, total_kib, free_bytes),
        'disk_read_bytes_per_s': round(sum(d['disk_read_bytes_per_s'] or 0 for d in domains.values()), 3),
        'disk_write_bytes_per_s': round(sum(d['disk_write_bytes_per_s'] or 0 for d in domains.values()), 3),
        'cpu_from': cpu_from,
    }
    return host, domains


def check_uri(name, uri):
    """Fail with a configuration error, before connecting, on a URI no libvirt driver serves."""
    if not isinstance(uri, str) or '://' not in uri:
        raise LevellerError('libvirt_uris: host %s has %r, not a libvirt URI such as '
                            'qemu+ssh://user@%s/system or test:///default' % (name, redact_url(uri), name),
                            FailureClass.CONFIGURATION)
    driver = uri.split(':', 1)[0].split('+', 1)[0].lower()
    if driver not in KNOWN_DRIVERS:
        raise LevellerError('libvirt_uris: host %s has %s, whose driver %r is not a libvirt driver '
                            '(known: %s)' % (name, redact_url(uri), driver, ', '.join(KNOWN_DRIVERS)),
                            FailureClass.CONFIGURATION)


def _open_failure(exc):
    """Failure class of a failed libvirt open: a URI or file the driver rejects is the
    operator's to fix; refused credentials are permission; anything else is unreachable."""
    code, domain = exc.get_error_code(), exc.get_error_domain()
    if code in (libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_ERR_AUTH_CANCELLED,
                libvirt.VIR_ERR_ACCESS_DENIED, libvirt.VIR_ERR_OPERATION_DENIED):
        return FailureClass.PERMISSION
    rejected = (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_INVALID_ARG)
    if domain == libvirt.VIR_FROM_URI or code in rejected:
        return FailureClass.CONFIGURATION
    return FailureClass.UNREACHABLE


def read_host(name, uri, interval):
    """Connect read-only, take two samples ``interval`` s apart; return (host, domains, info)."""
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        failure = _open_failure(exc)
        what = {FailureClass.CONFIGURATION: 'rejects the URI', FailureClass.PERMISSION: 'refuses access',
                FailureClass.UNREACHABLE: 'is unreachable'}[failure]
        raise LevellerError('libvirt of host %s at %s %s: %s'
                            % (name, redact_url(uri), what, redact_url(str(exc))), failure)
    if conn is None:
        raise LevellerError('libvirt of host %s at %s is unreachable' % (name, redact_url(uri)),
                            FailureClass.UNREACHABLE)
    try:
        info = conn.getInfo()  # [model, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
        first = _sample_host(conn)
        time.sleep(interval)
        second = _sample_host(conn)
        try:
            mem_stats = conn.getMemoryStats(-1, 0)
        except libvirt.libvirtError:
            mem_stats = None
        try:
            free = conn.getFreeMemory()
        except libvirt.libvirtError:
            free = None
        host, domains = measure(first, second, info[2], info[1] * 1024, mem_stats, free)
        node = {'cpus': info[2], 'memory_mb': info[1], 'hostname': conn.getHostname(),
                'domains': second['inventory'], 'maintenance': maintenance_mark(conn)}
        return host, domains, node
    except libvirt.libvirtError as exc:
        raise LevellerError('libvirt of host %s at %s failed: %s'
                            % (name, redact_url(uri), redact_url(str(exc))),
                            FailureClass.UNREACHABLE)
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def read_hosts(uris, interval=5.0, max_workers=16):
    """Measure every host of ``uris`` ({host name: libvirt URI}) in parallel.

    Returns {host name: (host load, {uuid: domain load}, node info)}.
    """
    if not uris:
        return {}
    # libvirt prints every error to stderr as well; they are raised and reported instead.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    items = sorted(uris.items())
    for name, uri in items:
        check_uri(name, uri)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        results = list(pool.map(lambda item: (item[0], read_host(item[0], item[1], interval)), items))
    return dict(results)


def _instance(host, dom, host_up=True):
    """A snapshot instance from one domain of the inventory (flavor-like fields from libvirt)."""
    power, status, task = DOMAIN_STATES.get(dom['state'], ('unknown', 'UNKNOWN', None))
    reason = not_migratable_reason(status, task, False, {}, [], host, host_up)
    if reason and dom['state'] != VIR_DOMAIN_RUNNING:
        reason = 'not running (%s)' % power
    return {
        'id': dom['uuid'],
        'name': dom['name'],
        'host': host,
        'project': None,
        'status': status,
        'task_state': task,
        'power_state': power,
        'locked': False,
        # The domain's configured maximum memory, what it may claim on a destination; its disks
        # are not counted (local or shared storage is not known from libvirt's node info).
        'flavor': {'name': None, 'vcpus': int(dom['vcpus']), 'memory_mb': int(dom['max_memory_kib']) // 1024,
                   'disk_gb': 0},
        'load': None,
        'server_groups': [],
        'metadata': {},
        'tags': [],
        'migratable': reason is None,
        'not_migratable_reason': reason,
        'last_moved_at': dom.get('last_moved_at'),
    }


def inventory(measured, availability_zone=None, allocation_ratio=None):
    """Hosts and instances of a snapshot without Nova, from ``read_hosts``' answer.

    Capacity is the node info (CPUs, memory); disk capacity is unknown (0, and disk_gb is named
    in the host's ``capacity_unknown``), so the planner does not limit disk.  Every domain,
    running or not, is an instance, and ``used`` is what their flavor-like fields claim.
    Returns (hosts, instances, loads by host, loads by instance uuid).  Raises LevellerError
    when one domain UUID is on two hosts (two names for the same libvirt).
    """
    ratio = dict((k, float((allocation_ratio or {}).get(k) or 1.0)) for k in ('vcpus', 'memory_mb', 'disk_gb'))
    hosts, instances, seen = [], [], {}
    host_loads, dom_loads = {}, {}
    for name in sorted(measured):
        load, domains, node = measured[name]
        own = []
        for dom in sorted(node.get('domains') or [], key=lambda d: (d['name'] or '', d['uuid'])):
            if dom['uuid'] in seen:
                raise LevellerError('libvirt domain %s (%s) is on host %s and on host %s: do two entries '
                                    'of libvirt_uris point at the same libvirt?'
                                    % (dom['uuid'], dom['name'], seen[dom['uuid']], name),
                                    FailureClass.INCONSISTENT)
            seen[dom['uuid']] = name
            own.append(_instance(name, dom))
        hosts.append({
            'name': name,
            'hypervisor_hostname': node.get('hostname') or name,
            'az': availability_zone,
            'aggregates': [],
            # A drained host (evacuate_host state=drained) carries a maintenance mark.
            'enabled': not node.get('maintenance'),
            'up': True,
            'forced_down': False,
            'disabled_reason': node.get('maintenance') or None,
            'capacity': {'vcpus': int(node['cpus']), 'memory_mb': int(node['memory_mb']), 'disk_gb': 0},
            'capacity_unknown': ['disk_gb'],
            'allocation_ratio': ratio,
            'reserved': {'vcpus': 0, 'memory_mb': 0, 'disk_gb': 0},
            'used': {'vcpus': sum(i['flavor']['vcpus'] for i in own),
                     'memory_mb': sum(i['flavor']['memory_mb'] for i in own), 'disk_gb': 0},
            'load': None,
            'load_source': 'none',
            'instances': len(own),
        })
        instances.extend(own)
        host_loads[name] = load
        dom_loads.update(domains)
    return hosts, instances, host_loads, dom_loads
