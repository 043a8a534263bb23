# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain libvirt as a platform of the moving modules: the options, the maintenance mark, the move
record in the domain's metadata, what HostRun asks of the backend, the lock key and the digest.

libvirt's test driver (``test:///<node file>``) serves domains and metadata but no secrets, so
the mark's refusal is tested here and its round trip on the QEMU test bed (the
libvirt_execution integration target); the mark's parsing is pure and tested with a stand-in.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

pytest.importorskip('libvirt')

import libvirt  # noqa: E402

from ansible_collections.cloudops.leveller.plugins.module_utils import _libvirt_backend as lvb  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils import _platform, _snapshot  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import gather  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as source  # noqa: E402

from .test_libvirt_backend import A, B, domain_xml, node_file  # noqa: E402

DUP = '11111111-2222-4333-8444-0000000000c0'


@pytest.fixture
def uris(tmp_path):
    """h1: a (running), dup (running); h2: b (running), dup (defined, shut off)."""
    return {'h1': node_file(tmp_path / 'h1.xml', [domain_xml('a', A, vcpus=2, memory_mib=1024), domain_xml('dup', DUP)]),
            'h2': node_file(tmp_path / 'h2.xml', [domain_xml('b', B, vcpus=4, memory_mib=2048),
                                                  domain_xml('dup', DUP, runstate=5)])}


def params(**given):
    out = dict((k, None) for k in ('cloud', 'auth', 'auth_type', 'region_name', 'ca_cert', 'client_cert',
                                   'client_key', 'libvirt_uris', 'libvirt_peer_uris', 'libvirt_allocation_ratio',
                                   'bandwidth', 'storage'))
    out.update(given)
    return out


URIS = {'kvm1': 'qemu+ssh://root@kvm1/system'}


@pytest.mark.parametrize('given, words', [
    (dict(), None),
    (dict(libvirt_uris=URIS), None),
    (dict(libvirt_uris=URIS, bandwidth=100, storage='copy', libvirt_allocation_ratio={'vcpus': 4.0}), None),
    (dict(bandwidth=100), 'bandwidth: only for plain libvirt hosts'),
    (dict(storage='copy', libvirt_peer_uris={}), 'libvirt_peer_uris, storage: only for plain libvirt'),
    (dict(libvirt_uris={}), 'libvirt_uris is empty'),
    (dict(libvirt_uris=URIS, cloud='prod'), 'cloud and libvirt_uris exclude each other'),
    (dict(libvirt_uris=URIS, auth={'auth_url': 'x'}), 'auth and libvirt_uris exclude each other'),
    (dict(libvirt_uris={'kvm1': ''}), 'libvirt_uris.kvm1: expected a libvirt URI'),
    (dict(libvirt_uris=URIS, libvirt_peer_uris={'kvm1': 5}), 'libvirt_peer_uris.kvm1: expected a libvirt URI'),
    (dict(libvirt_uris=URIS, libvirt_allocation_ratio={'vcpus': 0.0}), 'libvirt_allocation_ratio.vcpus must be > 0'),
    (dict(libvirt_uris=URIS, bandwidth=0), 'bandwidth must be at least 1'),
])
def test_libvirt_options_are_checked_before_anything_connects(given, words):
    problem = _platform.libvirt_params_problem(params(**given))
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem


class _Secret(object):
    def __init__(self, description):
        self.description = description

    def XMLDesc(self, flags):
        return ("<secret ephemeral='no' private='yes'><description>%s</description>"
                "<usage type='tls'><name>cloudops-leveller-maintenance</name></usage></secret>" % self.description)


class _Conn(object):
    """Stands in for a connection's secret lookup (pure parsing of the mark)."""

    def __init__(self, secret=None, error=None):
        self.secret, self.error = secret, error

    def secretLookupByUsage(self, usage, name):
        assert (usage, name) == (libvirt.VIR_SECRET_USAGE_TYPE_TLS, source.MAINTENANCE_USAGE)
        if self.error is not None:
            raise self.error
        return self.secret


def _error(code):
    err = libvirt.libvirtError('stand-in')
    err.err = (code, 0, 'stand-in', 0, None, None, None, 0, 0)
    return err


@pytest.mark.parametrize('conn, reason', [
    (_Conn(_Secret('cloudops.leveller maintenance: kernel update (run 20261207T0000Z-x)')),
     'kernel update (run 20261207T0000Z-x)'),
    (_Conn(_Secret('set by hand')), 'set by hand'),
    (_Conn(_Secret('cloudops.leveller maintenance: ')), 'maintenance'),
    (_Conn(error=_error(libvirt.VIR_ERR_NO_SECRET)), None),
    (_Conn(error=_error(libvirt.VIR_ERR_NO_SUPPORT)), None),
])
def test_the_maintenance_mark_is_read_from_the_secrets_description(conn, reason):
    assert source.maintenance_mark(conn) == reason


def test_another_error_reading_the_mark_is_raised():
    with pytest.raises(libvirt.libvirtError):
        source.maintenance_mark(_Conn(error=_error(libvirt.VIR_ERR_INTERNAL_ERROR)))


def test_a_host_without_secrets_cannot_be_marked_and_says_so(uris):
    be = lvb.LibvirtBackend(uris, call_timeout=5.0)
    try:
        with pytest.raises(lvb.LibvirtBackendError) as exc:
            be.set_maintenance('h1', 'kernel update')
        assert exc.value.status == 400 and 'cloudops-leveller-maintenance' in str(exc.value) and 'h1' in str(exc.value)
        assert be.compute_services()['h1']['status'] == 'enabled'  # no secret driver: no mark
        assert be.clear_maintenance('h1') is None
    finally:
        be.close()


def test_the_move_record_round_trips_through_the_domains_metadata(uris):
    conn = libvirt.open(uris['h1'])
    try:
        dom = conn.lookupByUUIDString(A)
        assert source.last_moved_at(dom) is None
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, source.move_xml('2026-12-07T03:00:00Z', 'h2', 'h1'),
                        source.MOVE_PREFIX, source.MOVE_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        assert source.last_moved_at(dom) == '2026-12-07T03:00:00Z'
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, source.move_xml('yesterday', 'h2', 'h1'),
                        source.MOVE_PREFIX, source.MOVE_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        assert source.last_moved_at(dom) is None  # a damaged record gives no cooldown, not a wrong one
    finally:
        conn.close()


def test_the_move_record_escapes_host_names():
    import xml.etree.ElementTree as ET
    record = ET.fromstring(source.move_xml('2026-12-07T03:00:00Z', 'a"<b', "c&d'"))
    assert (record.tag, record.get('at'), record.get('from'), record.get('to')) == \
        ('move', '2026-12-07T03:00:00Z', 'a"<b', "c&d'")


def test_a_marked_host_is_disabled_in_the_snapshot():
    load = {'cpu': 0.1, 'memory': 0.1}
    node = {'cpus': 8, 'memory_mb': 8192, 'hostname': 'kvm1', 'domains': [], 'maintenance': 'kernel update'}
    hosts = source.inventory({'kvm1': (load, {}, node), 'kvm2': (load, {}, dict(node, maintenance=None))})[0]
    assert [(h['name'], h['enabled'], h['disabled_reason']) for h in hosts] == \
        [('kvm1', False, 'kernel update'), ('kvm2', True, None)]


def test_hostrun_reads_services_and_instances_from_libvirt(uris):
    be = lvb.LibvirtBackend(uris, call_timeout=5.0)
    try:
        services = be.compute_services()
        assert sorted(services) == ['h1', 'h2'] and services['h1']['id'] == 'h1'
        on_h2 = dict((s['name'], s) for s in be.servers_on_host('h2'))
        assert on_h2['b']['id'] == B and on_h2['b']['status'] == 'ACTIVE' and on_h2['dup']['status'] == 'SHUTOFF'
        assert [s['id'] for s in be.find_servers('a')] == [A]
        assert be.get_server('a') is None and be.get_server(A)['host'] == 'h1'
        with pytest.raises(lvb.LibvirtBackendError):
            be.servers_on_host('h9')
    finally:
        be.close()


def test_the_lock_key_is_the_set_of_uris(uris):
    one = lvb.LibvirtBackend(uris, call_timeout=5.0)
    same = lvb.LibvirtBackend(dict(reversed(list(uris.items()))), call_timeout=5.0)
    other = lvb.LibvirtBackend({'h1': uris['h1']}, call_timeout=5.0)
    try:
        assert one.lock_key() == same.lock_key() != other.lock_key()
        assert one.lock_key().startswith('libvirt-')
    finally:
        for be in (one, same, other):
            be.close()


def test_the_live_digest_is_the_digest_of_the_snapshot_level_plan_gets(tmp_path):
    uris = {'h1': node_file(tmp_path / 'h1.xml', [domain_xml('a', A, vcpus=2), domain_xml('off', B, runstate=5)]),
            'h2': node_file(tmp_path / 'h2.xml', [domain_xml('c', A[:-1] + 'c', memory_mib=512)])}
    p = {'sources': ['libvirt'], 'libvirt_uris': uris, 'libvirt_sample_interval': 0.05,
         'libvirt_allocation_ratio': {'vcpus': 4.0}}
    snapshot = gather.gather(None, p)
    snapshot = snapshot[0]
    be = lvb.LibvirtBackend(uris, allocation_ratio={'vcpus': 4.0}, call_timeout=5.0)
    try:
        live = _platform.libvirt_digest(be)(['h1', 'h2'])
        assert live == _snapshot.digest(_snapshot.from_dict(snapshot))
        with pytest.raises(Exception) as exc:
            _platform.libvirt_digest(be)(['h1', 'h9'])
        assert 'h9' in str(exc.value)
    finally:
        be.close()
