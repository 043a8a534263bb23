# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live state of Nova and Placement, read and changed through explicit API calls.

The executors (``live_migrate``, ``evacuate_host``) talk to the cloud only through
:class:`Nova`. Every call names its microversion, so the behaviour does not change when
openstacksdk raises the version it negotiates. Reads return plain dicts; failed calls
raise :class:`NovaError` with Nova's own message, so a result can quote it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from urllib.parse import quote

# Microversions, each chosen on purpose:
# - 2.30 live migration: the destination is validated by the scheduler (no force), and
#   the pre-checks are synchronous (2.34 made them asynchronous), so a refused move
#   (no valid host, anti-affinity) comes back as HTTP 400 at the call.
MV_LIVE_MIGRATE = '2.30'
# - 2.53 services and hypervisors are addressed by UUID; the hypervisor UUID is the
#   resource provider UUID in Placement.
MV_SERVICES = '2.53'
# - 2.60 servers: flavor embedded (2.47), OS-EXT-SRV-ATTR:host and task/vm state.
MV_SERVERS = '2.60'
# - 2.59 migrations list with uuid; 2.65 abort also in queued/preparing status.
MV_MIGRATIONS = '2.59'
MV_ABORT = '2.65'
MV_ABORT_MIN = '2.24'
# - 2.56 cold migration to a named host.
MV_COLD_MIGRATE = '2.56'
# - evacuation: 2.95 leaves evacuated instances stopped (they are started again by the
#   executor once they are confirmed on their new host); 2.29 keeps the power state.
MV_EVACUATE = '2.95'
MV_EVACUATE_OLD = '2.29'
MV_PLACEMENT = '1.10'

TERMINAL_MIGRATION = ('completed', 'done', 'failed', 'error', 'cancelled')
SUCCESS_MIGRATION = ('completed', 'done')


class NovaError(Exception):
    """A Nova or Placement call failed; ``status`` is the HTTP status (or None)."""

    def __init__(self, message, status=None):
        super(NovaError, self).__init__(message)
        self.status = status


def _version_tuple(v):
    major, minor = str(v).split('.', 1)
    return int(major), int(minor)


def _error_text(resp):
    """Nova's message from an error response, else the raw body."""
    try:
        body = resp.json()
    except Exception:  # body is not JSON
        return (resp.text or '').strip()[:500]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and 'message' in value:
                return value['message']
        if 'errors' in body and body['errors']:
            err = body['errors'][0]
            return err.get('detail') or err.get('title') or str(err)
    return str(body)[:500]


def server_view(raw):
    """The fields of a Nova server the executors care about."""
    flavor = raw.get('flavor') or {}
    return {
        'id': raw.get('id'),
        'name': raw.get('name'),
        'status': raw.get('status'),
        'task_state': raw.get('OS-EXT-STS:task_state'),
        'vm_state': raw.get('OS-EXT-STS:vm_state'),
        'power_state': raw.get('OS-EXT-STS:power_state'),
        # The service host is what live migration and the plan name; hypervisor_hostname
        # may be an FQDN. Always compare this one.
        'host': raw.get('OS-EXT-SRV-ATTR:host'),
        'hypervisor_hostname': raw.get('OS-EXT-SRV-ATTR:hypervisor_hostname'),
        'flavor': {'vcpus': flavor.get('vcpus'), 'memory_mb': flavor.get('ram'),
                   'disk_gb': flavor.get('disk')},
        'metadata': raw.get('metadata') or {},
        # 2.9 and 2.26 (MV_SERVERS is above both): re-checked before every move, as planned
        'locked': bool(raw.get('locked')),
        'tags': raw.get('tags') or [],
    }


class Nova(object):
    """Thin, explicit wrapper over an openstacksdk Connection."""

    def __init__(self, conn):
        self.conn = conn
        self._max_version = None
        self._rp_cache = {}

    # -- plumbing -----------------------------------------------------------
    def _call(self, method, url, microversion, json=None, service='compute', ok=(200, 202, 204)):
        proxy = self.conn.compute if service == 'compute' else self.conn.placement
        kwargs = {'microversion': microversion, 'raise_exc': False}
        if json is not None:
            kwargs['json'] = json
        resp = getattr(proxy, method)(url, **kwargs)
        if resp.status_code not in ok:
            raise NovaError('%s %s (microversion %s) returned HTTP %s: %s'
                            % (method.upper(), url, microversion, resp.status_code,
                               _error_text(resp)), status=resp.status_code)
        if resp.status_code == 204 or not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            return {}

    def max_microversion(self):
        """Highest compute microversion the cloud offers, as a string."""
        if self._max_version is None:
            body = self._call('get', '/', None)
            version = body.get('version') or {}
            self._max_version = version.get('version') or '2.1'
        return self._max_version

    def supports(self, microversion):
        return _version_tuple(self.max_microversion()) >= _version_tuple(microversion)

    # -- reads --------------------------------------------------------------
    def get_server(self, server_id):
        """The server as :func:`server_view`, or None when it does not exist."""
        try:
            raw = self._call('get', '/servers/%s' % server_id, MV_SERVERS)
        except NovaError as exc:
            if exc.status == 404:
                return None
            raise
        return server_view(raw.get('server') or {})

    def find_servers(self, name):
        """Servers (all projects) whose name is exactly ``name``."""
        body = self._call('get', '/servers/detail?all_tenants=1&name=%s' % _regex_exact(name),
                          MV_SERVERS)
        return [server_view(s) for s in body.get('servers', []) if s.get('name') == name]

    def _pages(self, url, key, microversion, marker):
        """Every item of a paged list: ``url`` (with its limit), then ``&marker=`` the last item's ``marker``
        field while Nova links a next page."""
        items = []
        next_url = url
        while next_url:
            body = self._call('get', next_url, microversion)
            page = body.get(key, [])
            items.extend(page)
            next_url = None
            for link in body.get(key + '_links', []) or []:
                if link.get('rel') == 'next' and page and page[-1].get(marker):
                    next_url = '%s&marker=%s' % (url, page[-1][marker])
        return items

    def servers_on_host(self, host):
        """Every server (all projects) whose service host is ``host``."""
        servers = [server_view(s) for s in self._pages(
            '/servers/detail?all_tenants=1&host=%s&limit=1000' % host, 'servers', MV_SERVERS, 'id')]
        # The host filter is exact in Nova, but keep only exact matches anyway.
        return [s for s in servers if s['host'] == host]

    def compute_services(self):
        """nova-compute services by host: id, status, state, forced_down, disabled_reason."""
        body = self._call('get', '/os-services?binary=nova-compute', MV_SERVICES)
        services = {}
        for svc in body.get('services', []):
            services[svc['host']] = {
                'id': svc.get('id'),
                'host': svc['host'],
                'status': svc.get('status'),
                'state': svc.get('state'),
                'forced_down': bool(svc.get('forced_down')),
                'disabled_reason': svc.get('disabled_reason'),
                'updated_at': svc.get('updated_at'),
                'zone': svc.get('zone'),
            }
        return services

    def set_service_status(self, service_id, enabled, reason=None):
        body = {'status': 'enabled' if enabled else 'disabled'}
        if not enabled and reason:
            body['disabled_reason'] = reason
        return self._call('put', '/os-services/%s' % service_id, MV_SERVICES, json=body)

    def set_forced_down(self, service_id, forced_down):
        return self._call('put', '/os-services/%s' % service_id, MV_SERVICES,
                          json={'forced_down': bool(forced_down)})

    def migrations(self, server_id, migration_type=None):
        """All migration records of a server, newest first (any status)."""
        url = '/os-migrations?instance_uuid=%s' % server_id
        if migration_type:
            url += '&migration_type=%s' % migration_type
        body = self._call('get', url, MV_MIGRATIONS)
        items = body.get('migrations', [])
        items.sort(key=lambda m: (m.get('created_at') or '', m.get('id') or 0), reverse=True)
        return [{
            'id': m.get('id'),
            'uuid': m.get('uuid'),
            'status': m.get('status'),
            'type': m.get('migration_type'),
            'source': m.get('source_compute'),
            'destination': m.get('dest_compute'),
            'created_at': m.get('created_at'),
        } for m in items]

    def evacuations_from(self, host):
        """Every evacuation record whose source is ``host`` (any status, all pages), oldest first."""
        items = self._pages('/os-migrations?source_compute=%s&migration_type=evacuation&limit=1000' % host,
                            'migrations', MV_MIGRATIONS, 'uuid')
        items.sort(key=lambda m: (m.get('created_at') or '', m.get('id') or 0))
        return [{
            'id': m.get('id'),
            'uuid': m.get('uuid'),
            'instance': m.get('instance_uuid'),
            'status': m.get('status'),
            'source': m.get('source_compute'),
            'destination': m.get('dest_compute'),
            'created_at': m.get('created_at'),
            'updated_at': m.get('updated_at'),
        } for m in items if m.get('source_compute') == host]

    def hypervisor_uuid(self, host):
        """Resource provider UUID of the compute node of service host ``host`` (or None)."""
        if host in self._rp_cache:
            return self._rp_cache[host]
        body = self._call('get', '/os-hypervisors/detail', MV_SERVICES)
        for hyp in body.get('hypervisors', []):
            svc_host = (hyp.get('service') or {}).get('host')
            if svc_host and svc_host not in self._rp_cache:
                self._rp_cache[svc_host] = hyp.get('id')
        return self._rp_cache.get(host)

    def host_room(self, host):
        """Free capacity of ``host`` per resource class, from Placement.

        free = (total - reserved) * allocation_ratio - used; also returns max_unit, so a
        single instance larger than one unit is caught.
        """
        rp = self.hypervisor_uuid(host)
        if not rp:
            raise NovaError('host %s has no compute node in Nova (no resource provider)' % host,
                            status=404)
        inv = self._call('get', '/resource_providers/%s/inventories' % rp, MV_PLACEMENT,
                         service='placement').get('inventories', {})
        usages = self._call('get', '/resource_providers/%s/usages' % rp, MV_PLACEMENT,
                            service='placement').get('usages', {})
        room = {}
        for rc, item in inv.items():
            capacity = (item.get('total', 0) - item.get('reserved', 0)) * item.get('allocation_ratio', 1.0)
            room[rc] = {'free': capacity - usages.get(rc, 0), 'max_unit': item.get('max_unit')}
        return room

    def instance_resources(self, server_id):
        """Resources the instance holds in Placement (summed over providers)."""
        body = self._call('get', '/allocations/%s' % server_id, MV_PLACEMENT, service='placement')
        total = {}
        for alloc in (body.get('allocations') or {}).values():
            for rc, amount in (alloc.get('resources') or {}).items():
                total[rc] = max(total.get(rc, 0), amount)
        return total

    # -- changes --------------------------------------------------------------
    def live_migrate(self, server_id, host=None):
        """Start a live migration; never forced, block_migration auto."""
        body = {'os-migrateLive': {'host': host or None, 'block_migration': 'auto'}}
        self._call('post', '/servers/%s/action' % server_id, MV_LIVE_MIGRATE, json=body)

    def abort_migration(self, server_id, migration_id):
        mv = MV_ABORT if self.supports(MV_ABORT) else MV_ABORT_MIN
        self._call('delete', '/servers/%s/migrations/%s' % (server_id, migration_id), mv)

    def cold_migrate(self, server_id, host=None):
        body = {'migrate': {'host': host} if host else None}
        self._call('post', '/servers/%s/action' % server_id, MV_COLD_MIGRATE, json=body)

    def confirm_resize(self, server_id):
        self._call('post', '/servers/%s/action' % server_id, MV_COLD_MIGRATE,
                   json={'confirmResize': None})

    def evacuate_microversion(self):
        return MV_EVACUATE if self.supports(MV_EVACUATE) else MV_EVACUATE_OLD

    def evacuate(self, server_id, host=None):
        body = {'evacuate': {}}
        if host:
            body['evacuate']['host'] = host
        self._call('post', '/servers/%s/action' % server_id, self.evacuate_microversion(), json=body)

    def set_server_metadata(self, server_id, metadata):
        """Add or update metadata items (other items are kept)."""
        self._call('post', '/servers/%s/metadata' % server_id, MV_SERVERS, json={'metadata': dict(metadata)})

    def delete_server_metadata_item(self, server_id, key):
        """Remove one metadata item; an item already gone (404) is not an error."""
        try:
            self._call('delete', '/servers/%s/metadata/%s' % (server_id, quote(key, safe='')), MV_SERVERS)
        except NovaError as exc:
            if exc.status != 404:
                raise

    def start(self, server_id):
        self._call('post', '/servers/%s/action' % server_id, MV_SERVERS, json={'os-start': None})


def _regex_exact(name):
    """Nova filters names by regular expression: anchor it and escape the specials."""
    special = '\\.^$*+?{}[]|()'
    escaped = ''.join('\\' + c if c in special else c for c in name)
    return quote('^%s$' % escaped, safe='')
