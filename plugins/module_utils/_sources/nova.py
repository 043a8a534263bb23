# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts and instances from Nova and Placement, with a bounded number of API calls.

Nova is read with list calls only (services, hypervisors, aggregates, servers, server groups,
migrations), each once and paged, so the number of Nova calls grows with pages, not with hosts or
instances.  Placement has no call that returns the inventories or usages of many providers at
once, so those are read per resource provider (two calls each, inventories and allocations), only
for hosts in scope, in a thread pool of bounded size.  The calls are counted and reported.

A provider's usage is the sum of its allocations (what Placement's usages call returns); reading
the allocations instead also names each consumer, so an allocation that no instance and no
migration still under way owns (a migration Nova set to error when a nova-compute restarted in the
middle of it keeps its allocation on the source) is named for the operator: Placement, and so
Nova's scheduler, counts it as used.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover - Python 2 controllers are not supported anyway
    ThreadPoolExecutor = None

try:
    from urllib.parse import urlencode
except ImportError:  # pragma: no cover
    from urllib import urlencode

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, classify_sdk_error,
)

# One microversion for every Nova call: 2.64 gives the embedded flavor (2.47), tags (2.26),
# locked (2.9), hypervisor and service UUIDs (2.53), paged hypervisors and migrations (2.33,
# 2.59) and server groups with policy and rules (2.64).  Nova releases from Rocky on accept it.
NOVA_MICROVERSION = '2.64'
PLACEMENT_MICROVERSION = '1.14'

RESOURCE_CLASSES = (('VCPU', 'vcpus'), ('MEMORY_MB', 'memory_mb'), ('DISK_GB', 'disk_gb'))
PIN_METADATA_KEY = 'leveller:pin'
PIN_METADATA_VALUES = ('true', 'yes', '1')
PIN_TAG = 'leveller-pin'
MIGRATABLE_STATUSES = ('ACTIVE',)
# Migration statuses after which the instance really runs on the destination.
MOVED_STATUSES = ('completed', 'confirmed', 'finished', 'done')
POWER_STATES = {0: 'nostate', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed',
                7: 'suspended'}
# Nova live-migrates only these power states (conductor's check; others get HTTP 409).
LIVE_MIGRATABLE_POWER_STATES = (1, 3)


class ApiCounter(object):
    """Thread-safe count of API calls by kind."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = {}

    def add(self, kind, n=1):
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def total(self):
        return sum(self.counts.values())


class Api(object):
    """Raw GETs through openstacksdk proxies, raising LevellerError with a failure class."""

    def __init__(self, conn, counter=None):
        self.conn = conn
        self.counter = counter or ApiCounter()

    def get(self, service, url, kind):
        proxy = self.conn.compute if service == 'compute' else self.conn.placement
        microversion = NOVA_MICROVERSION if service == 'compute' else PLACEMENT_MICROVERSION
        self.counter.add(kind)
        try:
            resp = proxy.get(url, microversion=microversion)
        except Exception as exc:  # keystoneauth connection errors and the like
            raise LevellerError('%s GET %s failed: %s' % (_service_name(service), url, exc),
                                classify_sdk_error(exc))
        if resp.status_code >= 400:
            raise _http_error(service, url, resp)
        try:
            return resp.json()
        except ValueError:
            raise LevellerError('%s GET %s returned no JSON (HTTP %s)' % (
                _service_name(service), url, resp.status_code), FailureClass.UNREACHABLE)


def _service_name(service):
    return 'Nova' if service == 'compute' else 'Placement'


def _http_error(service, url, resp):
    text = (resp.text or '')[:300]
    name = _service_name(service)
    if resp.status_code in (401, 403):
        return LevellerError(
            '%s GET %s: permission denied (HTTP %s): reading hypervisors, all projects\' instances '
            'and Placement needs an admin role (or a policy that allows it) on this cloud: %s'
            % (name, url, resp.status_code, text), FailureClass.PERMISSION)
    if resp.status_code in (400, 404, 406):
        return LevellerError('%s GET %s rejected (HTTP %s): %s. Nova must accept microversion %s '
                             'and Placement %s' % (name, url, resp.status_code, text,
                                                   NOVA_MICROVERSION, PLACEMENT_MICROVERSION),
                             FailureClass.CONFIGURATION)
    return LevellerError('%s GET %s failed (HTTP %s): %s' % (name, url, resp.status_code, text),
                         FailureClass.UNREACHABLE)


def _paged(api, path, key, params, kind, page_size, marker_key='id'):
    """All items of a Nova list call paged with limit/marker; one call per page."""
    items = []
    marker = None
    while True:
        query = dict(params)
        query['limit'] = page_size
        if marker:
            query['marker'] = marker
        body = api.get('compute', '%s?%s' % (path, urlencode(sorted(query.items()))), kind)
        page = body.get(key) or []
        items.extend(page)
        links = body.get(key + '_links') or []
        if not page or not any(link.get('rel') == 'next' for link in links):
            return items
        marker = page[-1][marker_key]


def _offset_paged(api, path, key, params, kind, page_size):
    """All items of a Nova list call paged with limit/offset (server groups)."""
    items = []
    offset = 0
    while True:
        query = dict(params)
        query.update(limit=page_size, offset=offset)
        body = api.get('compute', '%s?%s' % (path, urlencode(sorted(query.items()))), kind)
        page = body.get(key) or []
        items.extend(page)
        if len(page) < page_size:
            return items
        offset += len(page)


def is_pinned(metadata, tags):
    """Return the pin reason, or None."""
    value = (metadata or {}).get(PIN_METADATA_KEY)
    if value is not None and str(value).strip().lower() in PIN_METADATA_VALUES:
        return 'pinned by metadata %s' % PIN_METADATA_KEY
    if PIN_TAG in (tags or []):
        return 'pinned by tag %s' % PIN_TAG
    return None


def power_state_reason(power_state):
    """Why Nova would refuse to live-migrate an instance in this power state, or None.

    ``power_state`` is Nova's number (``OS-EXT-STS:power_state``); None (not shown to this
    user) is not held against the instance.
    """
    if power_state is None or power_state in LIVE_MIGRATABLE_POWER_STATES:
        return None
    return 'power state %s (Nova live-migrates only running or paused instances)' % POWER_STATES.get(
        power_state, power_state)


def not_migratable_reason(status, task_state, locked, metadata, tags, host, host_up=True, power_state=None):
    """Why an instance cannot be live-migrated now, or None when it can.

    Transient states come first (they explain most refusals and go away by themselves), then
    the operator's own choices (lock, pins).
    """
    if not host:
        return 'no host (%s)' % (status or 'unknown status')
    if task_state:
        return 'task in progress (%s)' % task_state
    if status not in MIGRATABLE_STATUSES:
        return 'not ACTIVE (%s)' % status
    if power_state_reason(power_state):
        return power_state_reason(power_state)
    if not host_up:
        return 'host %s is down' % host
    if locked:
        return 'locked'
    return is_pinned(metadata, tags)


def flavor_of(server):
    """The embedded flavor (microversion 2.47+) in the snapshot's resource keys.

    disk_gb counts what Placement allocates on the host: root disk unless the instance boots
    from a volume, plus ephemeral disk and swap.
    """
    flavor = server.get('flavor') or {}
    boot_from_volume = not server.get('image')
    root = 0 if boot_from_volume else int(flavor.get('disk') or 0)
    swap_mb = int(flavor.get('swap') or 0)
    disk_gb = root + int(flavor.get('ephemeral') or 0) + (swap_mb + 1023) // 1024
    return {
        'name': flavor.get('original_name'),
        'vcpus': int(flavor.get('vcpus') or 0),
        'memory_mb': int(flavor.get('ram') or 0),
        'disk_gb': disk_gb,
    }


def last_moves(migrations):
    """Map instance uuid -> ISO time of its last completed move (source != destination)."""
    last = {}
    for mig in migrations:
        if (mig.get('status') or '').lower() not in MOVED_STATUSES:
            continue
        if mig.get('source_compute') and mig.get('source_compute') == mig.get('dest_compute'):
            continue  # a resize on the same host is not a move
        uuid = mig.get('instance_uuid')
        when = _iso(mig.get('updated_at') or mig.get('created_at'))
        if uuid and when and (uuid not in last or when > last[uuid]):
            last[uuid] = when
    return last


def _iso(value):
    """Nova's timestamps ('2026-11-22T21:00:00.000000' or with Z/offset) to 'YYYY-MM-DDTHH:MM:SSZ'."""
    if not value:
        return None
    value = str(value).replace(' ', 'T')
    base = value[:19]
    if len(base) < 19:
        return None
    rest = value[19:]
    if rest.startswith('.'):
        rest = rest.lstrip('.0123456789')
    if rest not in ('', 'Z', '+00:00', '+0000'):
        return base + rest  # an explicit offset is kept as Nova gave it
    return base + 'Z'


def in_scope(host, scope):
    """True when the host matches every given scope filter (OR within one list)."""
    scope = scope or {}
    if scope.get('hosts') and host['name'] not in scope['hosts'] and \
            host['hypervisor_hostname'] not in scope['hosts']:
        return False
    if scope.get('availability_zones') and host['az'] not in scope['availability_zones']:
        return False
    if scope.get('aggregates') and not set(host['aggregates']) & set(scope['aggregates']):
        return False
    return True


def build_hosts(services, hypervisors, aggregates):
    """Join compute services, hypervisors and aggregates into host dicts (without Placement).

    The join key is the compute service host (``hypervisor.service.host`` == ``service.host``),
    compared exactly; ``hypervisor_hostname`` (the node name) is kept as its own field.
    Returns (hosts by name, hypervisor id by host name).
    """
    by_host = {}
    for svc in services:
        if svc.get('binary', 'nova-compute') != 'nova-compute':
            continue
        if svc.get('host') in by_host:
            raise LevellerError('Nova lists two nova-compute services for host %s' % svc['host'],
                                FailureClass.INCONSISTENT)
        by_host[svc.get('host')] = svc
    agg_names = {}
    agg_zones = {}
    for agg in aggregates:
        for h in agg.get('hosts') or []:
            agg_names.setdefault(h, []).append(agg.get('name'))
            if agg.get('availability_zone'):
                agg_zones.setdefault(h, agg['availability_zone'])
    hosts = {}
    hv_ids = {}
    for hv in hypervisors:
        svc_ref = hv.get('service') or {}
        name = svc_ref.get('host')
        if not name or name not in by_host:
            raise LevellerError(
                'hypervisor %s (id %s) belongs to compute service host %r, which Nova does not list '
                'among its nova-compute services' % (hv.get('hypervisor_hostname'), hv.get('id'), name),
                FailureClass.INCONSISTENT)
        if name in hosts:
            raise LevellerError(
                'compute service host %s has several hypervisor nodes (%s, %s); hosts with several '
                'nodes (Ironic, VMware) cannot be levelled by live migration'
                % (name, hosts[name]['hypervisor_hostname'], hv.get('hypervisor_hostname')),
                FailureClass.CONFIGURATION)
        svc = by_host[name]
        hosts[name] = {
            'name': name,
            'hypervisor_hostname': hv.get('hypervisor_hostname'),
            'az': svc.get('zone') or agg_zones.get(name),
            'aggregates': sorted(a for a in agg_names.get(name, []) if a),
            'enabled': svc.get('status') == 'enabled',
            'up': svc.get('state') == 'up',
            'forced_down': bool(svc.get('forced_down')),
            'disabled_reason': svc.get('disabled_reason') or None,
        }
        hv_ids[name] = str(hv.get('id'))
    return hosts, hv_ids


def placement_usages(allocations):
    """{resource class: amount} summed over a provider's allocations (its usages)."""
    use = {}
    for alloc in ((allocations or {}).get('allocations') or {}).values():
        for rc, amount in ((alloc or {}).get('resources') or {}).items():
            use[rc] = use.get(rc, 0) + int(amount or 0)
    return {'usages': use}


# Migration statuses in which Nova still holds the migration's own allocation (on the source):
# under way, or a resize / cold migration waiting for its confirmation.  After any other status
# the allocation should be gone.
MIGRATION_HOLDS = ('queued', 'accepted', 'pre-migrating', 'preparing', 'migrating', 'running',
                   'post-migrating', 'finished', 'confirming', 'reverting')


def unowned_allocations(allocations_by_host, servers, migrations):
    """{host: [{consumer, resources, migration}]} of the allocations nothing owns.

    A consumer is owned by an instance Nova lists, or by a migration whose status is in
    MIGRATION_HOLDS.  The rest are named with their resources and, when the consumer is a
    migration Nova lists, that migration (its status says why it should hold nothing).
    """
    instance_ids = set(s.get('id') for s in servers)
    by_uuid = dict((m.get('uuid'), m) for m in migrations if m.get('uuid'))
    out = {}
    for host in sorted(allocations_by_host):
        allocs = (allocations_by_host[host] or {}).get('allocations') or {}
        for consumer in sorted(allocs):
            if consumer in instance_ids:
                continue
            mig = by_uuid.get(consumer)
            if mig is not None and (mig.get('status') or '').lower() in MIGRATION_HOLDS:
                continue
            res = (allocs[consumer] or {}).get('resources') or {}
            out.setdefault(host, []).append({
                'consumer': consumer,
                'resources': dict((key, int(res.get(rc) or 0)) for rc, key in RESOURCE_CLASSES),
                'migration': None if mig is None else {
                    'id': mig.get('id'), 'status': mig.get('status'),
                    'type': mig.get('migration_type'), 'instance': mig.get('instance_uuid'),
                    'source': mig.get('source_compute'), 'dest': mig.get('dest_compute'),
                },
            })
    return out


def describe_unowned(unowned, most=10):
    """One line per unowned allocation (at most ``most``, then how many more), for a warning."""
    lines = []
    for host in sorted(unowned):
        for item in unowned[host]:
            res, mig = item['resources'], item['migration']
            what = 'migration %s (%s %s -> %s, status %s)' % (
                mig['id'], mig['type'], mig['source'], mig['dest'], mig['status']) if mig else \
                'a consumer that is no instance or migration Nova lists'
            lines.append('%s: Placement holds %d vCPU, %d MB RAM, %d GB disk for %s, %s; no instance '
                         'and no migration under way owns it, yet the scheduler counts it as used '
                         '(nova-manage placement audit lists such allocations, --delete removes them)'
                         % (host, res['vcpus'], res['memory_mb'], res['disk_gb'], item['consumer'], what))
    if len(lines) > most:
        lines = lines[:most] + ['%d more unowned allocation(s): snapshot.sources.placement.unowned_allocations'
                                % (len(lines) - most)]
    return lines


def placement_resources(name, inventories, usages):
    """capacity/allocation_ratio/reserved/used of one host from its Placement answers."""
    inv = (inventories or {}).get('inventories') or {}
    use = (usages or {}).get('usages') or {}
    missing = [rc for rc, _key in RESOURCE_CLASSES[:2] if rc not in inv]
    if missing:
        raise LevellerError('Placement has no %s inventory for host %s: is its nova-compute '
                            'reporting to Placement?' % ('/'.join(missing), name),
                            FailureClass.INCONSISTENT)
    out = {'capacity': {}, 'allocation_ratio': {}, 'reserved': {}, 'used': {}}
    for rc, key in RESOURCE_CLASSES:
        item = inv.get(rc) or {}
        out['capacity'][key] = int(item.get('total') or 0)
        out['allocation_ratio'][key] = float(item.get('allocation_ratio') or 1.0)
        out['reserved'][key] = int(item.get('reserved') or 0)
        out['used'][key] = int(use.get(rc) or 0)
    return out


def map_providers(hv_ids, hosts, providers):
    """Map host name -> resource provider uuid: by uuid (compute node uuid), else exact name."""
    by_uuid = dict((rp['uuid'], rp) for rp in providers)
    by_name = dict((rp.get('name'), rp) for rp in providers)
    out = {}
    for name, hv_id in hv_ids.items():
        rp = by_uuid.get(hv_id) or by_name.get(hosts[name]['hypervisor_hostname'])
        if rp is None:
            raise LevellerError('host %s (hypervisor %s, id %s) has no resource provider in '
                                'Placement' % (name, hosts[name]['hypervisor_hostname'], hv_id),
                                FailureClass.INCONSISTENT)
        out[name] = rp['uuid']
    return out


def build_instances(servers, hosts_by_name, groups, last_moved):
    """Instance dicts for the servers on hosts in ``hosts_by_name``."""
    groups_of = {}
    for g in groups:
        entry = {'id': g.get('id'), 'name': g.get('name'), 'policy': g.get('policy'),
                 'rules': g.get('rules') or {}, 'members': sorted(g.get('members') or [])}
        for member in g.get('members') or []:
            groups_of.setdefault(member, []).append(entry)
    out = []
    for s in servers:
        host = s.get('OS-EXT-SRV-ATTR:host')
        if host not in hosts_by_name:
            continue
        metadata = s.get('metadata') or {}
        tags = sorted(s.get('tags') or [])
        reason = not_migratable_reason(s.get('status'), s.get('OS-EXT-STS:task_state'),
                                       bool(s.get('locked')), metadata, tags, host,
                                       hosts_by_name[host]['up'], s.get('OS-EXT-STS:power_state'))
        out.append({
            'id': s['id'],
            'name': s.get('name'),
            'host': host,
            'project': s.get('tenant_id') or s.get('project_id'),
            'status': s.get('status'),
            'task_state': s.get('OS-EXT-STS:task_state') or None,
            'power_state': POWER_STATES.get(s.get('OS-EXT-STS:power_state'), 'unknown'),
            'locked': bool(s.get('locked')),
            'flavor': flavor_of(s),
            'load': None,
            'server_groups': sorted(groups_of.get(s['id'], []), key=lambda g: g['id'] or ''),
            'metadata': metadata,
            'tags': tags,
            'migratable': reason is None,
            'not_migratable_reason': reason,
            'last_moved_at': last_moved.get(s['id']),
        })
    out.sort(key=lambda i: (i['host'], i['name'] or '', i['id']))
    return out


def _fetch_placement(api, providers_by_host, max_workers):
    """Inventories and allocations of each host's provider: 2 calls per provider, bounded pool.

    Returns ({host: resources}, {host: allocations answer}); the usages are the allocations' sum.
    """
    def one(item):
        name, uuid = item
        inv = api.get('placement', '/resource_providers/%s/inventories' % uuid, 'placement_per_host')
        allocs = api.get('placement', '/resource_providers/%s/allocations' % uuid, 'placement_per_host')
        return name, (placement_resources(name, inv, placement_usages(allocs)), allocs)

    items = sorted(providers_by_host.items())
    if not items:
        return {}, {}
    workers = max(1, min(max_workers, len(items)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        got = dict(pool.map(one, items))
    return dict((n, v[0]) for n, v in got.items()), dict((n, v[1]) for n, v in got.items())


def _run_all(reads, max_workers):
    """Run the named zero-argument callables in a bounded pool; the first error is raised."""
    names = sorted(reads)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(names)))) as pool:
        futures = dict((name, pool.submit(reads[name])) for name in names)
        return dict((name, futures[name].result()) for name in names)


def collect(conn, scope=None, history_hours=168, page_size=1000, max_workers=8, now=None,
            counter=None):
    """Read Nova and Placement; return (hosts list, instances list, source info, counter).

    Hosts outside ``scope`` and instances on them are left out.  Raises LevellerError.
    """
    api = Api(conn, counter)
    # Create the proxies and discover their endpoints once, before the threads share them.
    source = {'url': _endpoint(conn, 'compute'), 'microversion': NOVA_MICROVERSION}
    placement = {'url': _endpoint(conn, 'placement'), 'microversion': PLACEMENT_MICROVERSION}
    mig_params = {}
    if history_hours and now is not None:
        mig_params['changes-since'] = _hours_before(now, history_hours)
    # The list reads do not depend on each other: run them side by side (same calls, less time).
    reads = {
        'services': lambda: api.get('compute', '/os-services?binary=nova-compute', 'nova').get('services') or [],
        'hypervisors': lambda: _paged(api, '/os-hypervisors/detail', 'hypervisors', {}, 'nova', page_size),
        'aggregates': lambda: api.get('compute', '/os-aggregates', 'nova').get('aggregates') or [],
        'servers': lambda: _paged(api, '/servers/detail', 'servers', {'all_tenants': 'True'}, 'nova',
                                  page_size),
        'groups': lambda: _offset_paged(api, '/os-server-groups', 'server_groups',
                                        {'all_projects': 'True'}, 'nova', page_size),
        'migrations': lambda: _paged(api, '/os-migrations', 'migrations', mig_params, 'nova',
                                     page_size, marker_key='uuid'),
        'providers': lambda: api.get('placement', '/resource_providers', 'placement').get(
            'resource_providers') or [],
    }
    got = _run_all(reads, max_workers)
    hosts, hv_ids = build_hosts(got['services'], got['hypervisors'], got['aggregates'])
    # Instances Nova places on a host it lists no hypervisor for (a deleted compute service,
    # a half-registered host): not in any snapshot host, so they are named for the operator.
    unknown_hosts = sorted(set(s.get('OS-EXT-SRV-ATTR:host') for s in got['servers']
                               if s.get('OS-EXT-SRV-ATTR:host') and
                               s.get('OS-EXT-SRV-ATTR:host') not in hosts))
    source['instances_on_unknown_hosts'] = dict(
        (h, sorted(s['id'] for s in got['servers'] if s.get('OS-EXT-SRV-ATTR:host') == h))
        for h in unknown_hosts)
    hosts = dict((n, h) for n, h in hosts.items() if in_scope(h, scope))
    if scope and scope.get('hosts'):
        known = set(hosts) | set(h['hypervisor_hostname'] for h in hosts.values())
        unknown = sorted(set(scope['hosts']) - known)
        if unknown:
            raise LevellerError('scope.hosts names hosts Nova does not know (or outside the other '
                                'scope filters): %s' % ', '.join(unknown), FailureClass.CONFIGURATION)
    if not hosts:
        raise LevellerError('no compute host matches the scope %r' % (scope,),
                            FailureClass.CONFIGURATION)
    hv_ids = dict((n, hv_ids[n]) for n in hosts)
    servers, groups, migrations = got['servers'], got['groups'], got['migrations']

    providers_by_host = map_providers(hv_ids, hosts, got['providers'])
    resources, allocations = _fetch_placement(api, providers_by_host, max_workers)
    unowned = unowned_allocations(allocations, servers, migrations)
    if unowned:
        # Placement was read after the lists: an instance booted or a migration started in
        # between would look unowned, and so would a migration older than history_hours that
        # still holds its allocation (a resize never confirmed).  Read the servers again, and
        # every migration from each such host (a migration's allocation is on its source),
        # whatever its age; keep what is still unowned.
        again = {'servers': reads['servers']}
        for host in unowned:
            again['migrations from %s' % host] = (
                lambda host=host: _paged(api, '/os-migrations', 'migrations', {'source_compute': host},
                                         'nova', page_size, marker_key='uuid'))
        got_again = _run_all(again, max_workers)
        more = [m for key in sorted(got_again) if key != 'servers' for m in got_again[key]]
        unowned = unowned_allocations(
            dict((h, allocations[h]) for h in unowned), servers + got_again['servers'], migrations + more)
    placement['unowned_allocations'] = unowned

    instances = build_instances(servers, hosts, groups, last_moves(migrations))
    count = {}
    for inst in instances:
        count[inst['host']] = count.get(inst['host'], 0) + 1
    out_hosts = []
    for name in sorted(hosts):
        h = dict(hosts[name])
        h.update(resources[name])
        h['load'] = None
        h['load_source'] = 'none'
        h['instances'] = count.get(name, 0)
        out_hosts.append(h)
    return out_hosts, instances, {'nova': source, 'placement': placement}, api.counter


def _hours_before(now, hours):
    import datetime
    return (now - datetime.timedelta(hours=hours)).strftime('%Y-%m-%dT%H:%M:%SZ')


def _endpoint(conn, service):
    try:
        return getattr(conn, service).get_endpoint()
    except Exception:  # the URL is informative only
        return None
