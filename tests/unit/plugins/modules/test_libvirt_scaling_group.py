# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt_scaling_group module through its main(), on libvirt's test:///default.

The run itself is tested in module_utils/scaling_group; here: the argument spec reaches it,
check mode and state absent through Ansible's parameters, bad input failing before any host is
contacted, and no password of a URI in what the module prints.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import uuid

import pytest

libvirt = pytest.importorskip('libvirt')
pytest.importorskip('pycdlib')

from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_group as sg  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_libvirt as sl  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.modules import libvirt_scaling_group as mod  # noqa: E402
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import (  # noqa: E402
    module_output, module_runner)


def plain_upload(conn, pool, name, data):
    """The test driver has no storage streams: a plain volume of the seed's size."""
    return pool.createXML("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
                          "<target><format type='raw'/></target></volume>" % (name, len(data)), 0)


@pytest.fixture
def bed(monkeypatch):
    """test:///default with a base volume; removes what the test made."""
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    monkeypatch.setattr(sl, 'upload_volume', plain_upload)
    conn = libvirt.open('test:///default')
    pool = conn.storagePoolLookupByName('default-pool')
    base = 'base-%s.qcow2' % uuid.uuid4().hex[:6]
    pool.createXML("<volume><name>%s</name><capacity unit='bytes'>1073741824</capacity>"
                   "<target><format type='qcow2'/></target></volume>" % base, 0)
    before_vols = set(pool.listVolumes())
    before_doms = set(d.name() for d in conn.listAllDomains(0))
    yield conn, pool, base
    for dom in conn.listAllDomains(0):
        if dom.name() not in before_doms:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    for name in set(pool.listVolumes()) - before_vols | set([base]):
        pool.storageVolLookupByName(name).delete(0)
    conn.close()


def args(base, **changes):
    group = 'm%s' % uuid.uuid4().hex[:6]
    raw = {
        'name': group, 'libvirt_uris': {'h1': 'test:///default'},
        'template': {'pool': 'default-pool', 'base_volume': base, 'vcpus': 1, 'memory_mb': 64},
        'cloud_init': {'user_data': '#cloud-config\nruncmd: [true]\n'},
        'min_size': 1, 'max_size': 2, 'cooldown': 60, 'sample_interval': 0.01,
        'thresholds': {'cpu': {'scale_out': 0.8, 'scale_in': 0.2}},
        'allocation_ratio': {'memory_mb': 8.0},
    }
    raw.update(changes)
    return raw


def test_present_check_mode_then_absent_through_main(monkeypatch, bed):
    conn, pool, base = bed
    run = module_runner(monkeypatch, mod)
    a = args(base)
    before = set(pool.listVolumes())
    checked = run(dict(a, _ansible_check_mode=True, _ansible_diff=True)).result
    assert checked['changed'] and checked['action'] == 'heal' and checked['created'][0]['uuid'] is None
    assert checked['diff']['after']['members'][0].startswith('%s-1 on h1' % a['name'])
    assert set(pool.listVolumes()) == before

    made = run(a)
    assert not made.failed and made.result['action'] == 'heal' and made.result['size_after'] == 1
    name = made.result['created'][0]['name']
    assert conn.lookupByName(name).isActive()
    assert made.result['measured']['source'] == 'libvirt'

    again = run(a).result
    assert again['changed'] is False and again['action'] == 'none'

    gone = run({'name': a['name'], 'libvirt_uris': a['libvirt_uris'], 'state': 'absent'}).result
    assert gone['changed'] and [r['name'] for r in gone['removed']] == [name]
    assert set(pool.listVolumes()) == before


@pytest.mark.parametrize('changes, words', [
    ({'min_size': 3}, 'min_size: 3 is above max_size 2'),
    ({'max_size': None}, 'max_size: required'),
    ({'cloud_init': {'user_data': '#cloud-config\nusers: [a\n'}}, 'cloud_init.user_data: is not valid YAML'),
    ({'cloud_init': {'user_data': '#!/bin/sh\n', 'user_data_file': '/nonexistent'}}, 'mutually exclusive'),
    ({'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'disk': 3}}, 'disk'),
    ({'libvirt_uris': {'h1': 'kvm1.example.org'}}, 'libvirt_uris: host h1 has'),
    ({'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'network': 'default'},
      'cloud_init': {'network': {'addresses': '10.0.0.10', 'prefix_length': 24}}},
     'max_size: 2 members need more than the 1 addresses available'),
    ({'thresholds': {'cpu': {'scale_out': 0.8}}}, 'scale_in'),
])
def test_bad_input_fails_before_any_host_is_contacted(monkeypatch, changes, words):
    def tripwire(*a, **k):
        raise AssertionError('a host was contacted')
    monkeypatch.setattr(sg, 'open_hosts', tripwire)
    result = module_runner(monkeypatch, mod)(args('b.qcow2', **changes))
    assert result.failed and words in result.result['msg'], result.result['msg']


def test_a_password_in_a_uri_never_reaches_the_output(monkeypatch, capsys, tmp_path):
    uri = 'test://operator:s3cr3t-pw@localhost%s' % (tmp_path / 'missing.xml')
    text, parsed, journal = module_output(monkeypatch, capsys, mod)(
        {'name': 'web', 'libvirt_uris': {'h1': uri}, 'state': 'absent'})
    assert parsed['failed'] and 'libvirt of host h1 at test://operator@localhost' in parsed['msg']
    assert 's3cr3t-pw' not in text and 's3cr3t-pw' not in journal
