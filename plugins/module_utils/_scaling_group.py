# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of a libvirt scaling group: read the members, measure them, decide, act.

``build_config`` checks every option before any host is contacted; ``converge`` then

1. connects read-write to every host of ``libvirt_uris`` (in parallel, each within a deadline;
   an error names the host, the URI is masked);
2. reads the group from the domains themselves: a domain is a member when its metadata in
   ``_scaling.SCALING_NS`` parses as a member of this group. A domain named like a member
   (``<group>-<n>``) without that record is a clash: the run refuses to go on and never
   touches it;
3. checks the template (pool and base volume) on every host, reads each host's room (node
   CPUs and memory times ``allocation_ratio``, less what every domain defined there holds) and
   measures the members, from libvirt (two samples ``sample_interval`` apart: the window is that
   interval) or from Prometheus (a range query over ``window``);
4. calls ``_scaling.decide`` and carries the decision out with ``_scaling_libvirt``: new members
   first (addresses without duplicates across the group, a NoCloud seed each, the member record
   in the domain's metadata, naming the volumes created for it), then removals (only the volumes
   the record names), or the other way round when the decision says ``remove_first``; after any
   action every remaining member gets ``last_action_at`` (the cooldown runs from it).

Nothing in this file needs Ansible; the module is a thin shell around ``run``. Tests feed the
metrics through the ``metrics`` parameter of ``converge`` and the connections through ``opener``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import dataclasses
import hashlib
import json
import math
import re
import threading
import time
import uuid as uuid_mod

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url)
from ansible_collections.cloudops.leveller.plugins.module_utils import _cloudinit as ci
from ansible_collections.cloudops.leveller.plugins.module_utils._lock import CloudLock, LockBusy, NoLock
from ansible_collections.cloudops.leveller.plugins.module_utils._report import UnsafePath
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling as sc
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_libvirt as sl
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as lvsrc
from ansible_collections.cloudops.leveller.plugins.module_utils._sources.libvirt import HAS_LIBVIRT, libvirt

METRICS_SOURCES = ('libvirt', 'prometheus')
EMULATORS = ('kvm', 'qemu')
TEMPLATE_KEYS = ('pool', 'base_volume', 'vcpus', 'memory_mb', 'network', 'machine_type', 'emulator', 'kernel')
CLOUD_INIT_KEYS = ('user_data', 'user_data_file', 'network')
NETWORK_KEYS = ('addresses', 'prefix_length', 'gateway', 'nameservers')
DEFAULT_USER_DATA = '#cloud-config\n'
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_LOCK_TIMEOUT = 600
# The libvirt exporter (kumina's, the Debian package prometheus-libvirt-exporter) labels each
# domain's series with its name (domain) and UUID (uuid); {label} is prometheus_member_label.
DEFAULT_QUERIES = {
    'cpu': ('sum by ({label}) (rate(libvirt_domain_info_cpu_time_seconds_total[2m])) '
            '/ sum by ({label}) (libvirt_domain_info_virtual_cpus)'),
    'memory': ('sum by ({label}) (libvirt_domain_info_memory_usage_bytes) '
               '/ sum by ({label}) (libvirt_domain_info_maximum_memory_bytes)'),
    'disk_io': ('sum by ({label}) (rate(libvirt_domain_block_stats_read_bytes_total[2m]) '
                '+ rate(libvirt_domain_block_stats_write_bytes_total[2m]))'),
}
QUERY_OPTIONS = {'cpu': 'query_cpu', 'memory': 'query_memory', 'disk_io': 'query_disk_io'}
# Values a little outside 0..1 are float noise of rate(); more is a unit error.
EPSILON = 0.02
_VIR_DOMAIN_METADATA_ELEMENT = 2
_VIR_ERR_NO_SUPPORT = 3
_VIR_ERR_NO_DOMAIN = 42
_VIR_ERR_NO_DOMAIN_METADATA = 80
_VIR_DOMAIN_AFFECT_LIVE = 1
_VIR_DOMAIN_AFFECT_CONFIG = 2
_RUNNING = (1, 2)  # running, blocked


class GroupError(LevellerError):
    """A scaling group option or state is wrong; the message starts with the option it names."""

    def __init__(self, option, message, failure=FailureClass.CONFIGURATION):
        super(GroupError, self).__init__('%s: %s' % (option, message), failure)
        self.option = option


class GroupActionError(LevellerError):
    """A step failed after others were done: ``partial`` holds what was created and removed."""

    def __init__(self, message, failure, partial):
        super(GroupActionError, self).__init__(message, failure)
        self.partial = partial


@dataclasses.dataclass
class GroupConfig:
    """Every checked option of one run (build it with build_config)."""
    name: str
    uris: dict
    state: str
    spec: object = None                 # _scaling.GroupSpec, only with state=present
    template: dict = None
    user_data: str = None
    network: dict = None                # prefix_length, gateway, nameservers
    addresses: list = None              # every address of the range, sorted
    metrics_source: str = 'libvirt'
    sample_interval: float = 5.0
    prometheus: dict = None
    allocation_ratio: dict = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT
    lock_dir: str = None


@dataclasses.dataclass
class Found:
    """A member as read from its host: the decision's Member plus what the actuator needs."""
    member: object                      # _scaling.Member
    uuid: str
    volumes: tuple                      # (pool, volume name) pairs from the record
    state: str                          # libvirt's word: running, shutoff, ...


# ---------------------------------------------------------------- options

def _known(option, value, keys):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GroupError(option, 'expected a mapping, got %r' % (value,))
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise GroupError('%s.%s' % (option, unknown[0]), 'unknown key: use %s' % ', '.join(keys))
    return value


def _positive(option, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise GroupError(option, 'expected a number above 0, got %r' % (value,))
    return float(value)


def _text(option, value, required=False):
    if value is None or value == '':
        if required:
            raise GroupError(option, 'required: set %s' % option)
        return None
    if not isinstance(value, str):
        raise GroupError(option, 'expected a text, got %r' % (value,))
    return value


def _read_text(path):
    with open(path, 'rb') as handle:
        return handle.read()


def _check_uris(uris):
    if not isinstance(uris, dict) or not uris:
        raise GroupError('libvirt_uris', 'expected a mapping of host name to libvirt URI (for example kvm1: '
                         'qemu+ssh://root@kvm1/system), got %r' % (redact_url(uris) if isinstance(uris, str) else uris,))
    for host, uri in uris.items():
        if not isinstance(host, str) or not host:
            raise GroupError('libvirt_uris', 'host names must be non-empty texts, got %r' % (host,))
        lvsrc.check_uri(host, uri)
    return dict(uris)


def _check_template(raw):
    template = _known('template', raw, TEMPLATE_KEYS)
    if not template:
        raise GroupError('template', 'required with state=present: give pool, base_volume, vcpus and memory_mb')
    checked = {
        'pool': _text('template.pool', template.get('pool'), True),
        'base_volume': _text('template.base_volume', template.get('base_volume'), True),
        'network': _text('template.network', template.get('network')),
        'machine_type': _text('template.machine_type', template.get('machine_type')),
        'emulator': template.get('emulator') or 'kvm',
        'kernel': _text('template.kernel', template.get('kernel')),
    }
    for key in ('vcpus', 'memory_mb'):
        value = template.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GroupError('template.%s' % key, 'expected a whole number of at least 1, got %r' % (value,))
        checked[key] = value
    if checked['emulator'] not in EMULATORS:
        raise GroupError('template.emulator', 'unknown value %r: use kvm, or qemu (TCG, without KVM)'
                         % (checked['emulator'],))
    if checked['kernel'] is not None and not checked['kernel'].startswith('/'):
        raise GroupError('template.kernel', '%r is not an absolute path: give the kernel\'s path on the hosts'
                         % (checked['kernel'],))
    return checked


def _cloudinit_error(prefix, exc):
    return GroupError('%s.%s' % (prefix, exc.option), exc.message)


def _check_cloud_init(raw, template, read_file):
    cloud_init = _known('cloud_init', raw, CLOUD_INIT_KEYS)
    inline, path = cloud_init.get('user_data'), cloud_init.get('user_data_file')
    if inline is not None and path is not None:
        raise GroupError('cloud_init', 'user_data and user_data_file are mutually exclusive: give one of them')
    if path is not None:
        path = _text('cloud_init.user_data_file', path, True)
        try:
            inline = read_file(path)
        except (IOError, OSError) as exc:
            raise GroupError('cloud_init.user_data_file', 'cannot read %s: %s' % (path, exc.strerror or exc))
        where = 'cloud_init.user_data_file'
    else:
        where = 'cloud_init.user_data'
    if inline is None:
        user_data = DEFAULT_USER_DATA
    else:
        try:
            user_data = ci.check_user_data(inline)
        except ci.CloudInitError as exc:
            raise GroupError(where, exc.message)
    network = _known('cloud_init.network', cloud_init.get('network'), NETWORK_KEYS)
    addresses = None
    settings = None
    if network.get('addresses') not in (None, '', []):
        if template['network'] is None:
            raise GroupError('cloud_init.network.addresses', 'static addresses need a NIC: set template.network '
                             '(the libvirt network the members join)')
        try:
            addresses = ci.parse_address_range(network['addresses'], option='addresses')
        except ci.CloudInitError as exc:
            raise _cloudinit_error('cloud_init.network', exc)
        prefix = network.get('prefix_length')
        if prefix is None:
            raise GroupError('cloud_init.network.prefix_length', 'required with addresses: the prefix length of '
                             'the members\' network (24 for a /24)')
        nameservers = network.get('nameservers') or []
        if isinstance(nameservers, str) or not isinstance(nameservers, (list, tuple)):
            raise GroupError('cloud_init.network.nameservers', 'expected a list of addresses, got %r' % (nameservers,))
        settings = {'prefix_length': prefix, 'gateway': network.get('gateway'), 'nameservers': list(nameservers)}
        # One network-config for the first address checks prefix, gateway and name servers now,
        # before anything is created.
        try:
            ci.network_config(addresses[0], prefix, settings['gateway'], settings['nameservers'])
        except ci.CloudInitError as exc:
            raise _cloudinit_error('cloud_init.network', exc)
    elif any(network.get(key) not in (None, [], '') for key in ('prefix_length', 'gateway', 'nameservers')):
        raise GroupError('cloud_init.network.addresses', 'prefix_length, gateway and nameservers are only used '
                         'with addresses: give the address range (a range, a CIDR or a list)')
    return user_data, settings, addresses


def template_version(template, user_data, network):
    """sha256 (first 16 hex) of the template, the user-data and the network settings.

    The address range is left out: widening it must not replace every member.
    """
    content = {'template': dict((key, template.get(key)) for key in TEMPLATE_KEYS),
               'user_data': user_data, 'network': network}
    text = json.dumps(content, sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def _check_prometheus(params, spec):
    url = _text('prometheus_url', params.get('prometheus_url'))
    if url is None:
        raise GroupError('prometheus_url', 'required with metrics_source=prometheus: the base URL of the '
                         'Prometheus HTTP API')
    if not re.match(r'^https?://', url.strip()):
        raise GroupError('prometheus_url', '%r is not an http(s) URL' % (redact_url(url),))
    label = _text('prometheus_member_label', params.get('prometheus_member_label')) or 'uuid'
    if not re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', label):
        raise GroupError('prometheus_member_label', '%r is not a Prometheus label name' % (label,))
    queries = {}
    for metric in sorted(spec.thresholds):
        option = QUERY_OPTIONS[metric]
        queries[metric] = _text(option, params.get(option)) or DEFAULT_QUERIES[metric].format(label=label)
    step = params.get('prometheus_step')
    if step is None:
        step = max(1, int(math.ceil(spec.window / 30.0)))
    step = _positive('prometheus_step', step)
    if step > spec.window:
        raise GroupError('prometheus_step', '%g s is longer than window %d s: the window would hold one point '
                         'at most; lower prometheus_step' % (step, spec.window))
    timeout = params.get('prometheus_timeout')
    return {
        'url': url, 'label': label, 'queries': queries, 'step': step,
        'timeout': _positive('prometheus_timeout', 10 if timeout is None else timeout),
        'validate_certs': params.get('prometheus_validate_certs') is not False,
        'ca_cert': params.get('prometheus_ca_cert'), 'token': params.get('prometheus_token'),
        'username': params.get('prometheus_username'), 'password': params.get('prometheus_password'),
    }


_SPEC_OPTIONS = {'hosts': 'libvirt_uris', 'vcpus': 'template.vcpus', 'memory_mb': 'template.memory_mb',
                 'addresses': 'cloud_init.network.addresses', 'template_version': 'template'}


def build_config(params, read_file=_read_text):
    """A GroupConfig from the module's parameters; GroupError naming the option otherwise."""
    name = params.get('name')
    if not isinstance(name, str) or not sc.NAME_RE.match(name):
        raise GroupError('name', '%r cannot prefix domain names: use 1 to 56 lowercase letters, digits and -, '
                         'starting and ending with a letter or digit' % (name,))
    uris = _check_uris(params.get('libvirt_uris'))
    state = params.get('state') or 'present'
    if state not in ('present', 'absent'):
        raise GroupError('state', 'unknown value %r: use present or absent' % (state,))
    timeout = params.get('connect_timeout')
    timeout = _positive('connect_timeout', DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout)
    lock_timeout = params.get('lock_timeout')
    lock_timeout = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
    if not isinstance(lock_timeout, int) or isinstance(lock_timeout, bool) or lock_timeout < 0:
        raise GroupError('lock_timeout', '%r is not a whole number of seconds of 0 or more' % (lock_timeout,))
    locking = dict(connect_timeout=timeout, lock_timeout=lock_timeout, lock_dir=params.get('lock_dir'))
    if state == 'absent':
        return GroupConfig(name=name, uris=uris, state=state, **locking)

    template = _check_template(params.get('template'))
    user_data, network, addresses = _check_cloud_init(params.get('cloud_init'), template, read_file)
    source = params.get('metrics_source') or 'libvirt'
    if source not in METRICS_SOURCES:
        raise GroupError('metrics_source', 'unknown value %r: use libvirt or prometheus' % (source,))
    interval = params.get('sample_interval')
    interval = _positive('sample_interval', 5.0 if interval is None else interval)
    window = params.get('window')
    if source == 'libvirt':
        # libvirt keeps no history: the judged window is the sampling interval.
        window = max(1, int(math.ceil(interval)))
    ratio = {}
    raw_ratio = _known('allocation_ratio', params.get('allocation_ratio'), ('vcpus', 'memory_mb'))
    for key in ('vcpus', 'memory_mb'):
        value = raw_ratio.get(key)
        ratio[key] = _positive('allocation_ratio.%s' % key, 1.0 if value is None else value)
    raw = {
        'name': name, 'hosts': list(uris), 'min_size': params.get('min_size'), 'max_size': params.get('max_size'),
        'increment': params.get('increment'), 'cooldown': params.get('cooldown'), 'window': window,
        'thresholds': params.get('thresholds'), 'placement': params.get('placement'),
        'scale_in_order': params.get('scale_in_order'), 'max_unavailable': params.get('max_unavailable'),
        'template_version': template_version(template, user_data, network),
        'addresses': len(addresses) if addresses is not None else None,
        'vcpus': template['vcpus'], 'memory_mb': template['memory_mb'],
    }
    try:
        spec = sc.validate_spec(raw)
    except sc.ScalingConfigError as exc:
        option = _SPEC_OPTIONS.get(exc.option, exc.option)
        raise GroupError(option, exc.message)
    config = GroupConfig(name=name, uris=uris, state=state, spec=spec, template=template, user_data=user_data,
                         network=network, addresses=addresses, metrics_source=source, sample_interval=interval,
                         allocation_ratio=ratio, **locking)
    if source == 'prometheus':
        config.prometheus = _check_prometheus(params, spec)
    return config


# ---------------------------------------------------------------- connections

def _open_one(host, uri, opener):
    try:
        conn = opener(uri)
    except libvirt.libvirtError as exc:
        failure = lvsrc._open_failure(exc)
        raise LevellerError('libvirt of host %s at %s: %s' % (host, redact_url(uri), redact_url(str(exc))), failure)
    if conn is None:
        raise LevellerError('libvirt of host %s at %s did not open' % (host, redact_url(uri)), FailureClass.UNREACHABLE)
    try:
        conn.setKeepAlive(5, 3)  # a host that stops answering fails the next call instead of hanging it
    except libvirt.libvirtError:
        pass  # drivers without keepalive (test:///)
    return conn


def open_hosts(uris, timeout, opener=None):
    """{host: read-write connection} for every host, opened in parallel, each within ``timeout`` s."""
    if not HAS_LIBVIRT:
        raise LevellerError("scaling groups need libvirt-python on the host that runs the module: pip install "
                            "'libvirt-python>=9.0' (or the distribution's python3-libvirt)", FailureClass.CONFIGURATION)
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    if opener is None:
        from ansible_collections.cloudops.leveller.plugins.module_utils._libvirt_backend import start_event_loop
        start_event_loop()  # keepalive needs libvirt's event loop
        opener = libvirt.open
    results = {}

    def work(host, uri):
        try:
            results[host] = ('ok', _open_one(host, uri, opener))
        except Exception as exc:  # handed to the caller below
            results[host] = ('error', exc)

    threads = []
    for host, uri in uris.items():
        thread = threading.Thread(target=work, args=(host, uri), name='leveller-scaling-%s' % host)
        thread.daemon = True  # a host that never answers must not keep the module alive
        thread.start()
        threads.append((host, thread))
    deadline = time.monotonic() + timeout
    for host, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    conns, errors = {}, []
    for host, thread in threads:
        outcome = results.get(host)
        if outcome is None:
            errors.append(LevellerError('libvirt of host %s at %s did not answer within %g s' % (
                host, redact_url(uris[host]), timeout), FailureClass.UNREACHABLE))
        elif outcome[0] == 'error':
            errors.append(outcome[1] if isinstance(outcome[1], LevellerError) else LevellerError(
                'libvirt of host %s at %s: %s' % (host, redact_url(uris[host]), redact_url(str(outcome[1]))),
                FailureClass.UNREACHABLE))
        else:
            conns[host] = outcome[1]
    if errors:
        close_hosts(conns)
        # Members on a host that does not answer are unknown: acting would double or lose them.
        raise LevellerError('; '.join(str(exc) for exc in errors) + ': nothing was changed; every host of '
                            'libvirt_uris must answer, since members may be on any of them', errors[0].failure)
    return conns


def close_hosts(conns):
    for conn in conns.values():
        try:
            conn.close()
        except Exception:
            pass


# ---------------------------------------------------------------- reading the group

def _code(exc):
    return exc.get_error_code() if isinstance(exc, libvirt.libvirtError) else None


def _metadata(dom):
    try:
        return dom.metadata(_VIR_DOMAIN_METADATA_ELEMENT, sc.SCALING_NS, 0)
    except libvirt.libvirtError as exc:
        if _code(exc) in (_VIR_ERR_NO_DOMAIN_METADATA, _VIR_ERR_NO_SUPPORT):
            return None
        raise


def read_members(conns, group):
    """({member name: Found}, [(host, domain name) of clashes]) from every host's domains."""
    pattern = re.compile(r'^%s-[0-9]+$' % re.escape(group))
    found, clashes, where = {}, [], {}
    for host, conn in conns.items():
        try:
            domains = conn.listAllDomains(0)
        except libvirt.libvirtError as exc:
            raise LevellerError('libvirt of host %s at %s: listing domains failed: %s' % (
                host, redact_url(conn.getURI()), redact_url(str(exc))), FailureClass.UNREACHABLE)
        for dom in domains:
            try:
                name = dom.name()
                if not pattern.match(name):
                    continue
                state = dom.state()[0]
                text = _metadata(dom)
                uuid = dom.UUIDString()
            except libvirt.libvirtError as exc:
                if _code(exc) == _VIR_ERR_NO_DOMAIN:
                    continue  # removed while we looked
                raise LevellerError('libvirt of host %s: reading domain %s failed: %s' % (
                    host, dom.name(), redact_url(str(exc))), FailureClass.UNREACHABLE)
            member = sc.parse_member_xml(text, name, host, state in _RUNNING, group)
            if member is None:
                clashes.append((host, name))
                continue
            if name in found:
                raise LevellerError('member %s of group %s is defined on host %s and on host %s: a migration in '
                                    'progress or a copy; run again when only one is left' % (
                                        name, group, where[name], host), FailureClass.INCONSISTENT)
            where[name] = host
            found[name] = Found(member=member, uuid=uuid, volumes=sc.member_volumes(text),
                                state=lvsrc.DOMAIN_STATES.get(state, ('unknown',))[0])
    return found, sorted(clashes)


def _clash_error(group, clashes):
    named = ', '.join('%s on %s' % (name, host) for host, name in clashes)
    return GroupError('name', 'domain(s) %s are named like members of group %s but carry no member record of it: '
                      'nothing was changed and they are left alone; rename or remove them, or give the group '
                      'another name' % (named, group), FailureClass.INCONSISTENT)


def check_templates(conns, template):
    """{host: (pool, base volume)} for every host; fails naming the option, host and pool."""
    found = {}
    for host, conn in conns.items():
        pool = sl.find_pool(conn, template['pool'])
        found[host] = (pool, sl.find_base_volume(conn, pool, template['base_volume']))
    return found


def host_room(conn, ratio):
    """What decide needs of one host: up (no maintenance mark), free vCPUs and MiB after every domain."""
    cpus, memory, vcpus, memory_mb = lvsrc.node_held(conn)
    mark = lvsrc.maintenance_mark(conn)
    return {'up': mark is None, 'maintenance': mark,
            'free_vcpus': int(cpus * ratio['vcpus']) - vcpus,
            'free_memory_mb': int(memory * ratio['memory_mb']) - memory_mb}


# ---------------------------------------------------------------- metrics

def _sample_member(conn, uuid):
    dom = conn.lookupByUUIDString(uuid)
    state, _max_kib, _mem_kib, vcpus, cpu_time = dom.info()
    if state not in _RUNNING:
        return None
    io_bytes = 0
    for dev in lvsrc._disk_devices(dom):
        try:
            stats = dom.blockStats(dev)
            io_bytes += stats[1] + stats[3]
        except libvirt.libvirtError:
            pass  # an empty CD-ROM tray has no statistics
    try:
        memory = dom.memoryStats()
    except libvirt.libvirtError:
        memory = {}
    return {'at': time.time(), 'cpu_time': cpu_time, 'vcpus': vcpus, 'io': io_bytes, 'memory': memory}


def measure_libvirt(conns, found, interval, sleep=time.sleep):
    """{member name: [(t, cpu, memory, disk_io)]} from two samples ``interval`` s apart of each running member."""
    def sample_all():
        samples = {}
        for name, item in sorted(found.items()):
            if not item.member.running:
                continue
            try:
                sample = _sample_member(conns[item.member.host], item.uuid)
            except libvirt.libvirtError:
                continue  # stopped or removed between the samples: no rate
            if sample is not None:
                samples[name] = sample
        return samples

    first = sample_all()
    if not first:
        return {}
    sleep(interval)
    second = sample_all()
    metrics = {}
    for name, after in second.items():
        before = first.get(name)
        if before is None:
            continue
        seconds = after['at'] - before['at']
        cpu = lvsrc.domain_cpu(before['cpu_time'], after['cpu_time'], seconds, after['vcpus'])
        io_rate = max(0.0, (after['io'] - before['io']) / seconds) if seconds > 0 else None
        metrics[name] = [(after['at'], cpu, lvsrc.domain_memory(after['memory']), io_rate)]
    return metrics


def prometheus_client(settings):
    from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom
    if not prom.HAS_REQUESTS:
        raise LevellerError("metrics_source=prometheus needs the Python library requests: pip install requests",
                            FailureClass.CONFIGURATION)
    return prom.PrometheusClient(settings['url'], timeout=settings['timeout'],
                                 validate_certs=settings['validate_certs'], ca_cert=settings['ca_cert'],
                                 token=settings['token'], username=settings['username'],
                                 password=settings['password'])


def query_range(client, metric, promql, start, end, step):
    """The series of one range query: [(labels, [(t, value)])]; errors name the query option."""
    from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom
    client.queries += 1
    params = {'query': promql, 'start': '%.3f' % start, 'end': '%.3f' % end, 'step': '%g' % step}
    try:
        resp = client.session.post(client.base + '/api/v1/query_range', data=params, headers=client.headers,
                                   auth=client.auth, timeout=client.timeout, verify=client.verify)
    except prom.requests.exceptions.RequestException as exc:
        raise LevellerError('Prometheus at %s is unreachable: %s' % (client.base, redact_url(str(exc))),
                            FailureClass.UNREACHABLE)
    try:
        body = json.loads(resp.text)
    except ValueError:
        body = None
    name = '%s (%s)' % (metric, QUERY_OPTIONS[metric])
    if resp.status_code in (401, 403) or not isinstance(body, dict) or body.get('status') != 'success':
        prom.parse_response(name, promql, resp.status_code, resp.text, client.base)  # raises, worded as elsewhere
        raise LevellerError('Prometheus at %s answered the %s query with HTTP %s' % (
            client.base, name, resp.status_code), FailureClass.UNREACHABLE)
    data = body.get('data') or {}
    if data.get('resultType') != 'matrix':
        raise GroupError(QUERY_OPTIONS[metric], 'the query %r returns a %s, not a range vector: write it so that it '
                         'returns one series per member' % (promql, data.get('resultType')))
    series = []
    for item in data.get('result') or []:
        points = []
        for pair in item.get('values') or []:
            try:
                points.append((float(pair[0]), float(pair[1])))
            except (TypeError, ValueError, IndexError):
                raise GroupError(QUERY_OPTIONS[metric], 'the query %r returned %r, not a number' % (promql, pair))
        series.append((item.get('metric') or {}, points))
    return series


def measure_prometheus(settings, found, window, now, client=None):
    """{member name: [(t, cpu, memory, disk_io)]} from one range query per judged metric over the window."""
    client = client or prometheus_client(settings)
    label = settings['label']
    by_label = {}
    for name, item in found.items():
        by_label[item.uuid] = name
        by_label[name] = name
    position = dict((metric, index) for index, metric in enumerate(sc.METRICS, 1))
    metrics = {}
    for metric in sorted(settings['queries']):
        promql = settings['queries'][metric]
        option = QUERY_OPTIONS[metric]
        seen = {}
        for labels, points in query_range(client, metric, promql, now - window, now, settings['step']):
            if label not in labels:
                raise GroupError(option, 'the query %r returns series without the label %r (labels: %s): keep it in '
                                 'the query ("... by (%s)") or set prometheus_member_label'
                                 % (promql, label, ', '.join(sorted(labels)) or 'none', label))
            name = by_label.get(labels[label])
            if name is None:
                continue  # a domain outside the group
            if name in seen:
                raise GroupError(option, 'the query %r returns two series for member %s (%s=%s and %s=%s): '
                                 'aggregate it by (%s)' % (promql, name, label, seen[name], label, labels[label], label))
            seen[name] = labels[label]
            for at, value in points:
                if math.isnan(value):
                    continue
                if metric != 'disk_io' and not -EPSILON <= value <= 1 + EPSILON:
                    raise GroupError(option, 'the query %r returned %s for member %s, outside 0..1: it must return a '
                                     'ratio of the member\'s own vCPUs or memory' % (promql, value, name))
                if metric == 'disk_io' and value < 0:
                    raise GroupError(option, 'the query %r returned %s for member %s: bytes per second cannot be '
                                     'negative' % (promql, value, name))
                value = min(1.0, max(0.0, value)) if metric != 'disk_io' else value
                sample = [at, None, None, None]
                sample[position[metric]] = value
                metrics.setdefault(name, []).append(tuple(sample))
    return metrics


# ---------------------------------------------------------------- carrying it out

def _mac(domain_uuid):
    # A locally administered address in QEMU's range, fixed by the domain UUID: the same on every
    # read, so the network-config's match and the NIC agree.
    raw = uuid_mod.UUID(domain_uuid).bytes
    return '52:54:00:%02x:%02x:%02x' % (raw[0], raw[1], raw[2])


def _iso(epoch):
    return time.strftime(sc.ISO_FORMAT, time.gmtime(epoch)) if epoch is not None else None


def member_view(item):
    member = item.member
    return {'name': member.name, 'host': member.host, 'index': member.index, 'uuid': item.uuid,
            'address': member.address, 'template_version': member.template_version,
            'created_at': _iso(member.created_at), 'last_action_at': _iso(member.last_action_at),
            'running': member.running, 'state': item.state, 'volumes': [name for _pool, name in item.volumes]}


def _diff_line(item):
    member = item.member
    return '%s on %s, template %s, %s' % (member.name, member.host, member.template_version, item.state)


class Actuator(object):
    """Carries one decision out on the hosts; keeps what it did for the result and for failures."""

    def __init__(self, config, conns, templates, found, now):
        self.config = config
        self.conns = conns
        self.templates = templates
        self.found = dict(found)
        self.now = now
        self.created = []
        self.removed = []

    def plan_creates(self, decision, taken):
        """The new members with their addresses (allocated without duplicates across the group)."""
        addresses = [None] * len(decision.create)
        if self.config.addresses is not None:
            addresses = [str(a) for a in ci.allocate_addresses(self.config.addresses, taken, len(decision.create))]
        plans = []
        for item, address in zip(decision.create, addresses):
            pool_name = self.config.template['pool']
            plans.append(dict(item, address=address, pool=pool_name,
                              volumes=list(sl.member_volume_names(item['name']))))
        return plans

    def create(self, plan):
        config, spec = self.config, self.config.spec
        template = config.template
        domain_uuid = str(uuid_mod.uuid4())
        mac = _mac(domain_uuid) if template['network'] is not None else None
        network_text = None
        if plan['address'] is not None:
            network_text = ci.network_config(plan['address'], config.network['prefix_length'],
                                             config.network['gateway'], config.network['nameservers'], mac=mac)
        seed = ci.seed_iso(config.user_data, ci.meta_data(domain_uuid, plan['name']), network_text)
        member = sc.Member(name=plan['name'], host=plan['host'], index=plan['index'], created_at=self.now,
                           template_version=spec.template_version, address=plan['address'], running=True,
                           last_action_at=self.now)
        volumes = tuple((plan['pool'], name) for name in plan['volumes'])
        pool, base = self.templates[plan['host']]
        sl.create_member(self.conns[plan['host']], pool, base, plan['name'], seed, template['vcpus'],
                         template['memory_mb'], template['network'], sc.member_xml(spec.name, member, volumes),
                         sc.SCALING_NS, uuid=domain_uuid, machine_type=template['machine_type'],
                         emulator_type=template['emulator'], mac=mac, kernel=template['kernel'])
        self.found[plan['name']] = Found(member=member, uuid=domain_uuid, volumes=volumes, state='running')
        self.created.append({'name': plan['name'], 'host': plan['host'], 'index': plan['index'], 'uuid': domain_uuid,
                             'address': plan['address'], 'volumes': list(plan['volumes'])})

    def remove(self, name):
        item = self.found[name]
        host = item.member.host
        conn = self.conns[host]
        pools = []
        for pool, _volume in item.volumes:
            if pool not in pools:
                pools.append(pool)
        deleted, domain = [], None
        # A record without volumes (written by hand) still names the domain: only the domain goes
        # (remove_member tolerates a pool that does not exist when it has no volume to delete).
        for pool in pools or [self.config.template['pool'] if self.config.template else 'default']:
            removed = sl.remove_member(conn, name, [volume for owner, volume in item.volumes if owner == pool], pool)
            domain = domain or removed['domain']
            deleted.extend(removed['volumes'])
        del self.found[name]
        self.removed.append({'name': name, 'host': host, 'domain_removed': domain is not None, 'volumes': deleted})

    def stamp(self, skip=()):
        """last_action_at = now on every member left (their cooldown), live and in the persistent definition."""
        group = self.config.name
        notes = []
        for name, item in sorted(self.found.items()):
            if name in skip:
                continue
            member = dataclasses.replace(item.member, last_action_at=self.now)
            conn = self.conns[member.host]
            try:
                dom = conn.lookupByUUIDString(item.uuid)
                flags = _VIR_DOMAIN_AFFECT_CONFIG | (_VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0)
                dom.setMetadata(_VIR_DOMAIN_METADATA_ELEMENT, sc.member_xml(group, member, item.volumes),
                                sc.SCALING_PREFIX, sc.SCALING_NS, flags)
            except libvirt.libvirtError as exc:
                notes.append('stamping last_action_at on %s (host %s) failed: %s' % (
                    name, member.host, redact_url(str(exc))))
                continue
            self.found[name] = dataclasses.replace(item, member=member)
        return notes


# ---------------------------------------------------------------- one run

def _measured(config, count):
    if config.metrics_source == 'libvirt':
        return {'source': 'libvirt', 'window': config.spec.window, 'members': count,
                'note': 'libvirt keeps no history: the values are rates over the sampling interval '
                        '(sample_interval %g s), not over window' % config.sample_interval}
    return {'source': 'prometheus', 'window': config.spec.window, 'step': config.prometheus['step'],
            'members': count, 'queries': dict(config.prometheus['queries'])}


def _absent(config, conns, found, clashes, check_mode, diff):
    names = sorted(found, key=lambda n: (found[n].member.index, n))
    result = {'changed': bool(names), 'action': 'absent' if names else 'none',
              'reason': ('state=absent: removing %d member(s): %s' % (len(names), ', '.join(names))) if names
              else 'state=absent: the group has no member', 'metrics': {}, 'size_before': len(names),
              'size_after': 0, 'created': [], 'removed': [], 'members': [], 'waiting': None}
    if clashes:
        result['warnings'] = [str(_clash_error(config.name, clashes))]
    if diff:
        result['diff'] = {'before': {'members': [_diff_line(found[n]) for n in names]}, 'after': {'members': []}}
    if check_mode:
        result['removed'] = [{'name': n, 'host': found[n].member.host, 'domain_removed': True,
                              'volumes': [v for _p, v in found[n].volumes]} for n in names]
        return result
    actuator = Actuator(config, conns, {}, found, time.time())
    try:
        for name in names:
            actuator.remove(name)
    except LevellerError as exc:
        raise GroupActionError(str(exc), exc.failure, {'created': [], 'removed': actuator.removed})
    result['removed'] = actuator.removed
    return result


def converge(config, check_mode=False, diff=False, now=None, metrics=None, opener=None, sleep=time.sleep,
             clock=time.time, prometheus=None):
    """One run of the group; returns the module's result (without Ansible's own keys).

    ``metrics(found, now)``, when given, replaces the measurement (tests); ``opener(uri)`` replaces
    ``libvirt.open``; ``prometheus`` is a ready PrometheusClient.

    A run that may change the group holds the group's lock (see :func:`group_lock`) from before it
    reads the members until its last change: a second run waits, then reads what the first one
    did (its cooldown stamp included) and decides on that.
    """
    lock = NoLock() if check_mode else group_lock(config)
    try:
        with lock:
            conns = open_hosts(config.uris, config.connect_timeout, opener)
            try:
                result = _converge(config, conns, check_mode, diff, now, metrics, sleep, clock, prometheus)
            finally:
                close_hosts(conns)
    except LockBusy as exc:
        raise LevellerError('scaling group %s: %s' % (config.name, exc), FailureClass.INCONSISTENT)
    except UnsafePath as exc:
        raise GroupError('lock_dir', str(exc))
    result['lock_waited'] = round(lock.waited, 1)
    return result


def group_lock(config):
    """The lock of one group on one set of hosts: an flock on the controller (see _lock).

    The key is a digest of the group's name and its sorted host URIs, so two schedules of the
    same group exclude each other whatever their playbooks are called.
    """
    raw = '%s|%s' % (config.name, '|'.join(sorted(config.uris.values())))
    key = 'group-' + hashlib.sha256(raw.encode('utf-8')).hexdigest()[:24]
    return CloudLock(key, lock_dir=config.lock_dir, timeout=config.lock_timeout,
                     purpose='libvirt_scaling_group %s (%s)' % (config.name, config.state))


def _converge(config, conns, check_mode, diff, now, metrics, sleep, clock, prometheus):
    found, clashes = read_members(conns, config.name)
    if config.state == 'absent':
        return _absent(config, conns, found, clashes, check_mode, diff)
    if clashes:
        raise _clash_error(config.name, clashes)
    spec = config.spec
    templates = check_templates(conns, config.template)
    hosts = {}
    for host, conn in conns.items():
        try:
            hosts[host] = host_room(conn, config.allocation_ratio)
        except libvirt.libvirtError as exc:
            raise LevellerError('libvirt of host %s: reading its room failed: %s' % (host, redact_url(str(exc))),
                                FailureClass.UNREACHABLE)
    if metrics is not None:
        now = clock() if now is None else now
        samples = metrics(found, now)
    elif config.metrics_source == 'libvirt':
        samples = measure_libvirt(conns, found, config.sample_interval, sleep=sleep)
        now = clock() if now is None else now
    else:
        now = clock() if now is None else now
        samples = measure_prometheus(config.prometheus, found, spec.window, now, client=prometheus)
    members = [item.member for item in found.values()]
    decision = sc.decide(spec, members, samples, hosts, now)
    measured_members = sum(1 for name in found if samples.get(name))

    actuator = Actuator(config, conns, templates, found, now)
    leaving = set(decision.remove)
    taken = [item.member.address for name, item in found.items() if item.member.address
             and not (decision.remove_first and name in leaving)]
    plans = actuator.plan_creates(decision, taken)
    result = {
        'changed': decision.action != 'none', 'action': decision.action, 'reason': decision.reason,
        'metrics': decision.metrics, 'measured': _measured(config, measured_members),
        'size_before': decision.size_before, 'size_after': decision.size_after, 'waiting': decision.waiting,
        'template_version': spec.template_version, 'remove_first': decision.remove_first,
        'hosts': dict((host, {'up': info['up'], 'free_vcpus': info['free_vcpus'],
                              'free_memory_mb': info['free_memory_mb']}) for host, info in hosts.items()),
    }
    before = [_diff_line(found[n]) for n in sorted(found, key=lambda n: (found[n].member.index, n))]
    if check_mode or decision.action == 'none':
        result['created'] = [{'name': p['name'], 'host': p['host'], 'index': p['index'], 'uuid': None,
                              'address': p['address'], 'volumes': p['volumes']} for p in plans]
        result['removed'] = [{'name': n, 'host': found[n].member.host, 'domain_removed': True,
                              'volumes': [v for _p, v in found[n].volumes]} for n in decision.remove]
        result['members'] = [member_view(found[n]) for n in sorted(found, key=lambda n: (found[n].member.index, n))]
        if diff:
            after = [line for n, line in zip(sorted(found, key=lambda n: (found[n].member.index, n)), before)
                     if n not in leaving]
            after += ['%s on %s, template %s, new' % (p['name'], p['host'], spec.template_version) for p in plans]
            result['diff'] = {'before': {'members': before}, 'after': {'members': after}}
        return result

    try:
        if decision.remove_first:
            for name in decision.remove:
                actuator.remove(name)
        for plan in plans:
            actuator.create(plan)
        if not decision.remove_first:
            for name in decision.remove:
                actuator.remove(name)
    except LevellerError as exc:
        notes = actuator.stamp(skip=[c['name'] for c in actuator.created]) if (actuator.created or actuator.removed) else []
        raise GroupActionError('%s%s' % (exc, ''.join('; ' + note for note in notes)), exc.failure,
                               {'created': actuator.created, 'removed': actuator.removed})
    notes = actuator.stamp(skip=[c['name'] for c in actuator.created])
    result['created'] = actuator.created
    result['removed'] = actuator.removed
    order = sorted(actuator.found, key=lambda n: (actuator.found[n].member.index, n))
    result['members'] = [member_view(actuator.found[n]) for n in order]
    if notes:
        result['warnings'] = notes
    if diff:
        after = [_diff_line(actuator.found[n]) for n in order]
        result['diff'] = {'before': {'members': before}, 'after': {'members': after}}
    return result


def run(params, check_mode=False, diff=False, **seams):
    """build_config + converge: the module's whole work."""
    return converge(build_config(params), check_mode=check_mode, diff=diff, **seams)
