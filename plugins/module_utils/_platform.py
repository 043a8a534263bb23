# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the moving modules drive: an OpenStack cloud (Nova) or plain libvirt hosts.

``open_platform(module)`` returns a :class:`Platform` for the module's options: with
``libvirt_uris`` the libvirt backend (no OpenStack connection is made), else the OpenStack
connection and ``_nova.Nova``. Either way ``nova`` answers what the modules ask (services,
instances of a host, an instance by name or UUID, enabling and disabling a host) and the
executor drives it as its backend; ``lock_key`` names the lock and ``digest`` digests the live
hosts the way level_plan digests a snapshot.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, connect)

# OpenStack connection options that make no sense with libvirt_uris (the rest have defaults).
_OPENSTACK_ONLY = ('cloud', 'auth', 'auth_type', 'region_name', 'ca_cert', 'client_cert', 'client_key')
_LIBVIRT_ONLY = ('libvirt_peer_uris', 'libvirt_allocation_ratio', 'bandwidth', 'storage')


def libvirt_argument_spec():
    """Options of the moving modules for plain libvirt hosts (doc fragment ``cloudops.leveller.libvirt``)."""
    return dict(
        libvirt_uris=dict(type='dict'),
        libvirt_peer_uris=dict(type='dict'),
        libvirt_allocation_ratio=dict(type='dict', options=dict(vcpus=dict(type='float'),
                                                                memory_mb=dict(type='float'))),
        bandwidth=dict(type='int'),
        storage=dict(type='str', choices=['shared', 'copy']),
    )


def libvirt_params_problem(params):
    """The first problem with the libvirt options and how they combine with OpenStack's, or None."""
    uris = params.get('libvirt_uris')
    if uris is None:
        given = [k for k in _LIBVIRT_ONLY if params.get(k) is not None]
        if given:
            return ('%s: only for plain libvirt hosts (with libvirt_uris); on OpenStack Nova chooses how '
                    'to migrate. Remove it, or give libvirt_uris' % ', '.join(given))
        return None
    if not uris:
        return 'libvirt_uris is empty: give the libvirt URI of each host, as {host name: URI}'
    clash = [k for k in _OPENSTACK_ONLY if params.get(k) not in (None, '', {})]
    if clash:
        return ('%s and libvirt_uris exclude each other: with libvirt_uris the hosts are driven through '
                'libvirt and no OpenStack cloud is used. Remove %s (in playbooks: leave leveller_cloud '
                'unset) or remove libvirt_uris' % (', '.join(clash), ', '.join(clash)))
    for opt in ('libvirt_uris', 'libvirt_peer_uris'):
        for host, uri in sorted((params.get(opt) or {}).items()):
            if not isinstance(uri, str) or not uri.strip():
                return '%s.%s: expected a libvirt URI string (such as qemu+ssh://root@%s/system)' % (opt, host, host)
    for key, value in sorted((params.get('libvirt_allocation_ratio') or {}).items()):
        if value is not None and value <= 0:
            return 'libvirt_allocation_ratio.%s must be > 0 (got %s)' % (key, value)
    if params.get('bandwidth') is not None and params['bandwidth'] < 1:
        return 'bandwidth must be at least 1 MiB/s (got %s); leave it unset for no cap' % params['bandwidth']
    return None


class Platform(object):
    """``conn`` (None on libvirt), ``nova`` (what the modules and the executor drive), ``lock_key``,
    ``digest`` (hosts -> digest of the live state), ``kind`` (``openstack`` or ``libvirt``)."""

    def __init__(self, kind, conn, nova, lock_key, digest):
        self.kind = kind
        self.conn = conn
        self.nova = nova
        self.lock_key = lock_key
        self.digest = digest

    @property
    def libvirt(self):
        return self.kind == 'libvirt'

    def host_word(self):
        return 'libvirt host' if self.libvirt else 'nova-compute service host'


def open_platform(module, connect_to=None, nova_factory=None):
    """The platform of the module's options; fails the module on a bad configuration."""
    p = module.params
    if p.get('libvirt_uris'):
        from ansible_collections.cloudops.leveller.plugins.module_utils._libvirt_backend import LibvirtBackend
        try:
            backend = LibvirtBackend(p['libvirt_uris'], allocation_ratio=p.get('libvirt_allocation_ratio'),
                                     bandwidth=p.get('bandwidth'), peer_uris=p.get('libvirt_peer_uris'),
                                     storage=p.get('storage') or 'shared')
        except LevellerError as exc:
            module.fail_json(msg=str(exc), failure=exc.failure)
        return Platform('libvirt', None, backend, backend.lock_key(), libvirt_digest(backend))
    from ansible_collections.cloudops.leveller.plugins.module_utils._nova import Nova
    from ansible_collections.cloudops.leveller.plugins.module_utils._lock import cloud_key_for
    from ansible_collections.cloudops.leveller.plugins.module_utils._execute import live_digest
    conn = (connect_to or connect)(module)
    return Platform('openstack', conn, (nova_factory or Nova)(conn), cloud_key_for(conn), live_digest(conn))


def libvirt_digest(backend):
    """A callable: hosts -> the digest of those libvirt hosts, as level_plan digests a libvirt snapshot."""
    def compute(hosts):
        from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as source
        from ansible_collections.cloudops.leveller.plugins.module_utils import _snapshot
        unknown = sorted(set(hosts) - set(backend.uris))
        if unknown:
            raise LevellerError('the plan was made over host(s) %s that libvirt_uris does not have'
                                % ', '.join(unknown), FailureClass.CONFIGURATION)
        measured = source.read_hosts(dict((h, backend.uris[h]) for h in hosts), interval=0)
        found, instances, _hl, _dl = source.inventory(measured, allocation_ratio=backend.ratio)
        snapshot = _snapshot.from_dict({'version': 1, 'taken_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                                        'hosts': found, 'instances': instances})
        return _snapshot.digest(snapshot)
    return compute
