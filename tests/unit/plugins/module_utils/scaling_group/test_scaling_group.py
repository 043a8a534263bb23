# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of a scaling group, end to end, against libvirt's test driver.

Most tests run on ``test:///default`` (one host, its pool ``default-pool``); that state is
shared within the process, so each test names its group and base volume uniquely and the
fixture removes what a test left. Placement over two hosts uses two node files
(``test:///<file>``, each connection its own libvirt), opened once per test and handed to every
run through the ``opener`` seam.

The seam for load is ``converge(metrics=...)``: the tests feed each member's samples, libvirt
itself is never mocked. The test driver has no storage streams, so the seed upload is replaced
by a plain volume creation that keeps the bytes, and the tests read the seed back from them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import threading
import uuid
import xml.etree.ElementTree as ET

import pytest

libvirt = pytest.importorskip('libvirt')
pytest.importorskip('pycdlib')

from ansible_collections.cloudops.leveller.plugins.module_utils import _cloudinit as ci  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling as sc  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_group as sg  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_libvirt as sl  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError  # noqa: E402

T0 = 1800000000
USER_DATA = '#cloud-config\npackages: [nginx]\n'


def unique(prefix):
    return '%s%s' % (prefix, uuid.uuid4().hex[:6])


@pytest.fixture
def seeds(monkeypatch):
    """The seed bytes each run uploaded, by volume name (the test driver has no streams)."""
    kept = {}

    def upload(conn, pool, name, data):
        kept[name] = data
        return pool.createXML("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
                              "<target><format type='raw'/></target></volume>" % (name, len(data)), 0)
    monkeypatch.setattr(sl, 'upload_volume', upload)
    return kept


@pytest.fixture
def conn():
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    connection = libvirt.open('test:///default')
    pool = connection.storagePoolLookupByName('default-pool')
    before_vols = set(pool.listVolumes())
    before_doms = set(d.name() for d in connection.listAllDomains(0))
    yield connection
    for dom in connection.listAllDomains(0):
        if dom.name() not in before_doms:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    for name in set(pool.listVolumes()) - before_vols:
        pool.storageVolLookupByName(name).delete(0)
    connection.close()


@pytest.fixture
def base(conn):
    name = unique('base') + '.qcow2'
    conn.storagePoolLookupByName('default-pool').createXML(
        "<volume><name>%s</name><capacity unit='bytes'>1073741824</capacity>"
        "<target><format type='qcow2'/></target></volume>" % name, 0)
    return name


def params(group, base_name, **changes):
    raw = {
        'name': group, 'libvirt_uris': {'h1': 'test:///default'}, 'state': 'present',
        'template': {'pool': 'default-pool', 'base_volume': base_name, 'vcpus': 1, 'memory_mb': 64},
        'cloud_init': {'user_data': USER_DATA},
        'min_size': 2, 'max_size': 4, 'increment': 2, 'cooldown': 60, 'window': 300,
        'thresholds': {'cpu': {'scale_out': 0.8, 'scale_in': 0.2}}, 'placement': 'round_robin',
        'scale_in_order': 'newest', 'max_unavailable': 1, 'metrics_source': 'libvirt', 'sample_interval': 5,
        # test:///default has 3 GiB and its own domain holds 8: room only with overcommit
        'allocation_ratio': {'vcpus': 1.0, 'memory_mb': 8.0},
    }
    raw.update(changes)
    return raw


def cpu(value):
    """A metrics seam: every member at ``value`` busy, sampled at the run's time."""
    return lambda found, now: dict((name, [(now, value, None, None)]) for name in found)


def run(p, now, load=None, **kwargs):
    return sg.run(p, now=now, metrics=load or cpu(None), opener=libvirt.open, **kwargs)


def domains(conn, group):
    return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(group + '-'))


def volumes(conn):
    return set(conn.storagePoolLookupByName('default-pool').listVolumes())


def record(conn, name):
    return conn.lookupByName(name).metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, sc.SCALING_NS, 0)


# ---------------------------------------------------------------- heal, scale, cooldown

def test_an_empty_group_heals_to_min_size_with_seed_and_record(conn, base, seeds):
    group = unique('g')
    before = volumes(conn)
    result = run(params(group, base), T0)
    assert (result['changed'], result['action'], result['size_before'], result['size_after']) == (True, 'heal', 0, 2)
    assert result['reason'] == '0 members, below min_size 2; 0 -> 2 members'
    assert [c['name'] for c in result['created']] == ['%s-1' % group, '%s-2' % group]
    assert domains(conn, group) == ['%s-1' % group, '%s-2' % group]
    made = set()
    for created in result['created']:
        made.update(created['volumes'])
        dom = conn.lookupByName(created['name'])
        assert dom.isActive() and dom.isPersistent() and dom.UUIDString() == created['uuid']
        text = record(conn, created['name'])
        member = sc.parse_member_xml(text, created['name'], 'h1', True, group)
        assert member.template_version == result['template_version'] and member.last_action_at == T0
        assert sc.member_volumes(text) == tuple(('default-pool', v) for v in created['volumes'])
        # the overlay is backed by the base volume
        overlay = conn.storagePoolLookupByName('default-pool').storageVolLookupByName(created['volumes'][0])
        assert ET.fromstring(overlay.XMLDesc(0)).find('backingStore/path').text.endswith(base)
        files = ci.read_seed_iso(seeds[created['volumes'][1]])
        assert files['user-data'] == USER_DATA and 'network-config' not in files
        assert files['meta-data'] == 'instance-id: %s\nlocal-hostname: %s\n' % (created['uuid'], created['name'])
        # no template.network: no NIC
        assert ET.fromstring(dom.XMLDesc(0)).find('devices/interface') is None
    assert volumes(conn) == before | made
    assert [m['name'] for m in result['members']] == ['%s-1' % group, '%s-2' % group]


def test_scale_out_then_in_with_fed_metrics(conn, base, seeds):
    group = unique('g')
    p = params(group, base)
    run(p, T0)
    out = run(p, T0 + 61, cpu(0.9))
    assert (out['action'], out['size_before'], out['size_after']) == ('scale_out', 2, 4)
    assert out['reason'] == 'cpu 0.90 > scale_out 0.80 over 5 s; 2 -> 4 members'
    assert out['metrics'] == {'cpu': 0.9, 'memory': None, 'disk_io': None}
    assert domains(conn, group) == ['%s-%d' % (group, i) for i in (1, 2, 3, 4)]
    # every member left after an action carries its time: the cooldown starts for all
    for name in domains(conn, group):
        assert sc.parse_member_xml(record(conn, name), name, 'h1', True, group).last_action_at == T0 + 61
    gone = volumes(conn)
    inward = run(p, T0 + 200, cpu(0.05))
    assert (inward['action'], inward['size_after']) == ('scale_in', 2)
    # newest first: the two created by the scale-out, with their volumes
    assert [r['name'] for r in inward['removed']] == ['%s-4' % group, '%s-3' % group]
    assert domains(conn, group) == ['%s-1' % group, '%s-2' % group]
    assert volumes(conn) == gone - set(v for r in inward['removed'] for v in r['volumes'])
    assert all(len(r['volumes']) == 2 for r in inward['removed'])


def test_cooldown_across_two_runs_does_nothing_and_says_so(conn, base, seeds):
    group = unique('g')
    p = params(group, base)
    run(p, T0)
    before = (domains(conn, group), volumes(conn), [record(conn, n) for n in domains(conn, group)])
    second = run(p, T0 + 10, cpu(0.95))
    assert (second['changed'], second['action'], second['waiting']) == (False, 'none', 50)
    assert second['reason'].startswith('cooldown: 50 s left of 60 s since the last action; then: cpu 0.95 > scale_out')
    assert second['created'] == [] and second['removed'] == []
    assert (domains(conn, group), volumes(conn), [record(conn, n) for n in domains(conn, group)]) == before


def test_the_bounds_hold_inside_the_cooldown(conn, base, seeds):
    group = unique('g')
    run(params(group, base, min_size=1, max_size=4, increment=1), T0)
    third = run(params(group, base, min_size=3, max_size=4), T0 + 1)
    assert (third['action'], third['size_after']) == ('heal', 3)


def test_the_libvirt_window_is_the_sampling_interval_and_says_so(conn, base, seeds):
    group = unique('g')
    p = params(group, base, sample_interval=2.5, window=900)
    result = run(p, T0)
    assert result['measured']['source'] == 'libvirt' and result['measured']['window'] == 3
    assert 'sampling interval' in result['measured']['note']


def test_libvirt_sampling_gives_ratios_for_running_members(conn, base, seeds):
    group = unique('g')
    config = sg.build_config(params(group, base))
    sg.converge(config, now=T0, metrics=cpu(None), opener=libvirt.open)
    conns = sg.open_hosts(config.uris, 5, libvirt.open)
    try:
        found, clashes = sg.read_members(conns, group)
        slept = []
        samples = sg.measure_libvirt(conns, found, 0.01, sleep=slept.append)
    finally:
        sg.close_hosts(conns)
    assert slept == [0.01] and clashes == []
    assert sorted(samples) == sorted(found)
    for series in samples.values():
        (at, busy, memory, disk_io), = series
        assert busy is None or 0 <= busy <= 1
        assert memory is None or 0 <= memory <= 1
        assert disk_io is None or disk_io >= 0


def test_two_overlapping_runs_take_turns_and_the_second_sees_the_cooldown(conn, base, seeds, tmp_path):
    """Two schedules of one group at once: without the lock both would heal 0 -> 2 (four domains)."""
    group = unique('g')
    p = params(group, base, lock_dir=str(tmp_path / 'locks'))
    inside, go = threading.Event(), threading.Event()
    results = {}

    def first_load(found, now):
        inside.set()          # the first run holds the lock and has read the members
        go.wait(10)
        return cpu(None)(found, now)

    def one(key, now, load):
        results[key] = run(p, now, load)

    first = threading.Thread(target=one, args=('first', T0, first_load))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=one, args=('second', T0 + 1, cpu(0.95)))
    second.start()
    second.join(0.5)
    waiting = second.is_alive()     # still waiting for the lock while the first one runs
    go.set()
    first.join(30)
    second.join(30)
    assert waiting
    assert (results['first']['action'], results['first']['size_after']) == ('heal', 2)
    assert (results['second']['action'], results['second']['changed']) == ('none', False)
    assert results['second']['reason'].startswith('cooldown: 59 s left')
    assert results['second']['lock_waited'] > 0
    assert domains(conn, group) == ['%s-1' % group, '%s-2' % group]


def test_a_held_lock_with_lock_timeout_0_fails_naming_the_holder(conn, base, seeds, tmp_path):
    group = unique('g')
    p = params(group, base, lock_dir=str(tmp_path / 'locks'), lock_timeout=0)
    with sg.group_lock(sg.build_config(p)):
        with pytest.raises(LevellerError) as info:
            run(p, T0)
        # check mode takes no lock: it still shows the decision
        assert run(p, T0, check_mode=True)['action'] == 'heal'
    assert 'scaling group %s: another run' % group in str(info.value)
    assert 'libvirt_scaling_group %s (present)' % group in str(info.value)
    assert domains(conn, group) == []


# ---------------------------------------------------------------- absent, check mode, diff

def test_state_absent_removes_every_member_and_leaves_no_volume(conn, base, seeds):
    group = unique('g')
    before = volumes(conn)
    run(params(group, base, min_size=3), T0)
    result = run({'name': group, 'libvirt_uris': {'h1': 'test:///default'}, 'state': 'absent'}, T0 + 1)
    assert (result['changed'], result['action'], result['size_after']) == (True, 'absent', 0)
    assert sorted(r['name'] for r in result['removed']) == ['%s-%d' % (group, i) for i in (1, 2, 3)]
    assert domains(conn, group) == [] and volumes(conn) == before
    assert base in volumes(conn)
    again = run({'name': group, 'libvirt_uris': {'h1': 'test:///default'}, 'state': 'absent'}, T0 + 2)
    assert (again['changed'], again['action'], again['reason']) == (False, 'none', 'state=absent: the group has no member')


def test_check_mode_changes_nothing_and_shows_the_decision(conn, base, seeds):
    group = unique('g')
    before = volumes(conn)
    result = run(params(group, base), T0, check_mode=True, diff=True)
    assert (result['changed'], result['action'], result['size_after']) == (True, 'heal', 2)
    assert [(c['name'], c['host'], c['uuid']) for c in result['created']] == [
        ('%s-1' % group, 'h1', None), ('%s-2' % group, 'h1', None)]
    assert result['diff']['before'] == {'members': []}
    assert [line.split(' ')[0] for line in result['diff']['after']['members']] == ['%s-1' % group, '%s-2' % group]
    assert domains(conn, group) == [] and volumes(conn) == before and seeds == {}

    run(params(group, base), T0)
    stamps = [record(conn, n) for n in domains(conn, group)]
    absent = run({'name': group, 'libvirt_uris': {'h1': 'test:///default'}, 'state': 'absent'}, T0 + 100,
                 check_mode=True, diff=True)
    assert absent['changed'] and [r['name'] for r in absent['removed']] == ['%s-1' % group, '%s-2' % group]
    assert absent['diff']['after'] == {'members': []} and len(absent['diff']['before']['members']) == 2
    inward = run(params(group, base, min_size=1), T0 + 100, cpu(0.0), check_mode=True)
    assert inward['action'] == 'scale_in' and [r['name'] for r in inward['removed']] == ['%s-2' % group]
    assert [record(conn, n) for n in domains(conn, group)] == stamps


def test_diff_mode_shows_membership_before_and_after(conn, base, seeds):
    group = unique('g')
    p = params(group, base)
    run(p, T0)
    result = run(p, T0 + 61, cpu(0.9), diff=True)
    assert [line.split(' ')[0] for line in result['diff']['before']['members']] == ['%s-1' % group, '%s-2' % group]
    assert [line.split(' ')[0] for line in result['diff']['after']['members']] == [
        '%s-%d' % (group, i) for i in (1, 2, 3, 4)]


# ---------------------------------------------------------------- replacement

def test_a_template_change_rolls_one_member_at_a_time(conn, base, seeds):
    group = unique('g')
    old = params(group, base, cooldown=0)
    first = run(old, T0)
    new = params(group, base, cooldown=0, template=dict(old['template'], memory_mb=96))
    assert sg.build_config(new).spec.template_version != first['template_version']
    seen = []
    for step in range(1, 4):
        result = run(new, T0 + step, cpu(0.5))
        seen.append(result['action'])
        running = [d for d in conn.listAllDomains(0) if d.name().startswith(group + '-') and d.isActive()]
        # create first: never fewer running than size - max_unavailable
        assert len(running) >= result['size_after'] - 1
        assert result['size_after'] == 2
    assert seen == ['replace', 'replace', 'none']
    members = run(new, T0 + 10, cpu(0.5))['members']
    assert all(m['template_version'] == result['template_version'] for m in members)
    # newest first: -2 goes for -3, then -1 for the lowest free index, -2 again (a new domain)
    assert [m['name'] for m in members] == ['%s-2' % group, '%s-3' % group]
    assert not set(m['uuid'] for m in members) & set(c['uuid'] for c in first['created'])
    assert all(conn.lookupByName(m['name']).info()[1] == 96 * 1024 for m in members)


def test_a_change_of_the_address_range_alone_replaces_nothing():
    raw = params('web', 'base.qcow2', template={'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64,
                                                'network': 'default'})
    narrow = dict(raw, cloud_init={'network': {'addresses': '10.0.0.10-10.0.0.13', 'prefix_length': 24}})
    wide = dict(raw, cloud_init={'network': {'addresses': '10.0.0.10-10.0.0.40', 'prefix_length': 24}})
    other = dict(raw, cloud_init={'network': {'addresses': '10.0.0.10-10.0.0.40', 'prefix_length': 16}})
    versions = [sg.build_config(p).spec.template_version for p in (narrow, wide, other)]
    assert versions[0] == versions[1] != versions[2]
    assert len(versions[0]) == 16 and int(versions[0], 16) >= 0


# ---------------------------------------------------------------- addresses

def test_addresses_are_unique_across_the_group_and_reach_the_seed(conn, base, seeds):
    group = unique('g')
    p = params(group, base, min_size=3, max_size=4, increment=1, scale_in_order='oldest',
               template={'pool': 'default-pool', 'base_volume': base, 'vcpus': 1, 'memory_mb': 64,
                         'network': 'default'},
               cloud_init={'user_data': USER_DATA, 'network': {
                   'addresses': '192.168.5.10-192.168.5.13', 'prefix_length': 24, 'gateway': '192.168.5.1',
                   'nameservers': ['192.168.5.1']}})
    healed = run(p, T0)
    assert [c['address'] for c in healed['created']] == ['192.168.5.10', '192.168.5.11', '192.168.5.12']
    for created in healed['created']:
        files = ci.read_seed_iso(seeds[created['volumes'][1]])
        nic = ET.fromstring(conn.lookupByName(created['name']).XMLDesc(0)).find('devices/interface')
        assert nic.find('source').get('network') == 'default'
        mac = nic.find('mac').get('address')
        config = json.loads(json.dumps(__import__('yaml').safe_load(files['network-config'])))
        ethernet = config['ethernets']['primary']
        assert ethernet['match'] == {'macaddress': mac}
        assert ethernet['addresses'] == ['%s/24' % created['address']]
    inward = run(dict(p, min_size=2), T0 + 100, cpu(0.0))
    assert [r['name'] for r in inward['removed']] == ['%s-1' % group]
    out = run(dict(p, min_size=2), T0 + 200, cpu(0.99))
    # the lowest free address, the one the removed member held
    assert [(c['name'], c['address']) for c in out['created']] == [('%s-1' % group, '192.168.5.10')]
    addresses = [m['address'] for m in out['members']]
    assert len(addresses) == len(set(addresses)) == 3


# ---------------------------------------------------------------- refusals

def test_a_domain_named_like_a_member_without_our_record_is_refused_and_untouched(conn, base, seeds):
    group = unique('g')
    stranger = '%s-2' % group
    conn.defineXML("<domain type='test'><name>%s</name><memory unit='MiB'>64</memory>"
                   "<os><type>hvm</type></os></domain>" % stranger)
    xml = conn.lookupByName(stranger).XMLDesc(0)
    before = volumes(conn)
    with pytest.raises(sg.GroupError) as err:
        run(params(group, base), T0)
    assert err.value.option == 'name' and err.value.failure == 'inconsistent'
    assert '%s on h1' % stranger in str(err.value) and 'nothing was changed' in str(err.value)
    assert domains(conn, group) == [stranger] and volumes(conn) == before
    # state=absent removes members only: the stranger stays, with a warning
    absent = run({'name': group, 'libvirt_uris': {'h1': 'test:///default'}, 'state': 'absent'}, T0)
    assert absent['changed'] is False and stranger in absent['warnings'][0]
    assert conn.lookupByName(stranger).XMLDesc(0) == xml


def test_another_groups_record_is_a_clash_too(conn, base, seeds):
    group = unique('g')
    run(params(group, base), T0)
    other = unique('h')
    # same names, other group: web-1 recorded for group "other" is not ours
    dom = conn.lookupByName('%s-1' % group)
    text = record(conn, '%s-1' % group).replace('group="%s"' % group, 'group="%s"' % other)
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, 'leveller', sc.SCALING_NS,
                    libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    with pytest.raises(sg.GroupError, match='%s-1 on h1' % group):
        run(params(group, base), T0 + 100)


BAD = [
    ({'min_size': 5, 'max_size': 4}, 'min_size: 5 is above max_size 4'),
    ({'cloud_init': {'network': {'addresses': '10.0.0.10-10.0.0.12', 'prefix_length': 24}},
      'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'network': 'default'}},
     'max_size: 4 members need more than the 3 addresses available'),
    ({'cloud_init': {'network': {'addresses': '10.0.0.10-10.0.0.20', 'prefix_length': 24}}},
     'cloud_init.network.addresses: static addresses need a NIC'),
    ({'cloud_init': {'network': {'addresses': '10.0.0.x', 'prefix_length': 24}},
      'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'network': 'default'}},
     'cloud_init.network.addresses: '),
    ({'cloud_init': {'network': {'addresses': '10.0.0.10-10.0.0.20', 'prefix_length': 24, 'gateway': '10.9.9.9'}},
      'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'network': 'default'}},
     'cloud_init.network.gateway: '),
    ({'cloud_init': {'user_data': '#cloud-config\nusers: [a, b\n'}}, 'cloud_init.user_data: is not valid YAML'),
    ({'cloud_init': {'user_data': 'packages: [a]\n'}}, "cloud_init.user_data: must start with '#cloud-config'"),
    ({'cloud_init': {'user_data': '#!/bin/sh\n', 'user_data_file': 'x'}}, 'cloud_init: user_data and user_data_file'),
    ({'cloud_init': {'userdata': '#!/bin/sh\n'}}, 'cloud_init.userdata: unknown key'),
    ({'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'disk_gb': 10}},
     'template.disk_gb: unknown key'),
    ({'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 0, 'memory_mb': 64}}, 'template.vcpus: '),
    ({'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'emulator': 'xen'}},
     'template.emulator: '),
    ({'template': {'pool': 'p', 'base_volume': 'b', 'vcpus': 1, 'memory_mb': 64, 'kernel': 'guest.bin'}},
     'template.kernel: '),
    ({'template': None}, 'template: required'),
    ({'thresholds': {'cpu': {'scale_out': 0.3, 'scale_in': 0.5}}}, 'thresholds.cpu.scale_in: '),
    ({'thresholds': {'load': {'scale_out': 0.3, 'scale_in': 0.1}}}, 'thresholds.load: unknown metric'),
    ({'libvirt_uris': {'h1': 'kvm3'}}, 'libvirt_uris: host h1 has'),
    ({'libvirt_uris': {}}, 'libvirt_uris: expected a mapping'),
    ({'name': 'Web_1'}, 'name: '),
    ({'metrics_source': 'prometheus'}, 'prometheus_url: required'),
    ({'metrics_source': 'prometheus', 'prometheus_url': 'http://p:9090', 'window': 60, 'prometheus_step': 120},
     'prometheus_step: '),
    ({'sample_interval': 0}, 'sample_interval: '),
    ({'allocation_ratio': {'vcpus': -1}}, 'allocation_ratio.vcpus: '),
    ({'allocation_ratio': {'disk_gb': 2}}, 'allocation_ratio.disk_gb: unknown key'),
    ({'placement': 'spread'}, 'placement: unknown value'),
]


@pytest.mark.parametrize('changes, message', BAD, ids=[m.split(':')[0] for _c, m in BAD])
def test_bad_input_names_the_option_before_any_host_is_contacted(changes, message):
    with pytest.raises(LevellerError) as err:
        sg.build_config(params('web', 'base.qcow2', **changes))
    assert str(err.value).startswith(message), str(err.value)
    assert err.value.failure == 'configuration'


def test_a_user_data_file_is_read_and_checked(tmp_path):
    good = tmp_path / 'user-data'
    good.write_text(USER_DATA)
    config = sg.build_config(params('web', 'b', cloud_init={'user_data_file': str(good)}))
    assert config.user_data == USER_DATA
    bad = tmp_path / 'bad'
    bad.write_text('#cloud-config\n: :\n  - [\n')
    with pytest.raises(LevellerError, match='^cloud_init.user_data_file: is not valid YAML'):
        sg.build_config(params('web', 'b', cloud_init={'user_data_file': str(bad)}))
    with pytest.raises(LevellerError, match='^cloud_init.user_data_file: cannot read'):
        sg.build_config(params('web', 'b', cloud_init={'user_data_file': str(tmp_path / 'missing')}))


@pytest.mark.parametrize('template, message', [
    ({'pool': 'images'}, "template.pool: host test:///default has no storage pool 'images'"),
    ({'base_volume': 'jammy.qcow2'}, "template.base_volume: storage pool 'default-pool' on host test:///default"),
])
def test_a_missing_pool_or_base_volume_fails_before_anything_is_created(conn, base, seeds, template, message):
    group = unique('g')
    p = params(group, base)
    p['template'] = dict(p['template'], **template)
    before = volumes(conn)
    with pytest.raises(LevellerError) as err:
        run(p, T0)
    assert str(err.value).startswith(message)
    assert domains(conn, group) == [] and volumes(conn) == before


def test_a_host_that_does_not_open_is_named_and_nothing_changes(conn, base, seeds, tmp_path):
    group = unique('g')
    p = params(group, base, libvirt_uris={'h1': 'test:///default', 'h2': 'test://%s' % (tmp_path / 'none.xml')})
    with pytest.raises(LevellerError) as err:
        run(p, T0)
    assert 'libvirt of host h2 at test://' in str(err.value) and 'nothing was changed' in str(err.value)
    assert domains(conn, group) == []


def test_a_failed_create_reports_what_was_done_and_leaves_nothing_half_made(conn, base, monkeypatch):
    group = unique('g')
    calls = []

    def upload(conn_, pool, name, data):
        calls.append(name)
        if len(calls) == 2:
            raise sl.ScalingActuatorError('uploading volume %r failed: disk full' % name)
        return pool.createXML("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
                              "<target><format type='raw'/></target></volume>" % (name, len(data)), 0)
    monkeypatch.setattr(sl, 'upload_volume', upload)
    before = volumes(conn)
    with pytest.raises(sg.GroupActionError) as err:
        run(params(group, base), T0)
    assert 'disk full' in str(err.value)
    assert [c['name'] for c in err.value.partial['created']] == ['%s-1' % group]
    assert domains(conn, group) == ['%s-1' % group]
    assert volumes(conn) == before | set(err.value.partial['created'][0]['volumes'])


# ---------------------------------------------------------------- two hosts (node files)

NODE = ("<node><cpu><mhz>2000</mhz><model>x86_64</model><active>8</active><nodes>1</nodes><sockets>1</sockets>"
        "<cores>8</cores><threads>1</threads></cpu><memory>%d</memory>"
        "<pool type='dir'><name>images</name><uuid>%s</uuid><capacity>107374182400</capacity>"
        "<allocation>0</allocation><available>107374182400</available><target><path>/images-%s</path></target>"
        "<volume><name>base.qcow2</name><capacity>1073741824</capacity><target><format type='qcow2'/></target>"
        "</volume></pool></node>")


class Kept(object):
    """One host's connection kept over several runs (each open of a node file is a new libvirt)."""

    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def close(self):
        return 0


@pytest.fixture
def two_hosts(tmp_path):
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    uris, conns = {}, {}
    for host, memory_mib in (('h1', 4096), ('h2', 5120)):
        path = tmp_path / ('%s.xml' % host)
        path.write_text(NODE % (memory_mib * 1024, str(uuid.uuid4()), host))
        uris[host] = 'test://%s' % path
        conns[uris[host]] = libvirt.open(uris[host])
    yield uris, conns
    for conn in conns.values():
        conn.close()


def two_host_params(uris, **changes):
    p = params('web', 'base.qcow2', libvirt_uris=uris, min_size=4, max_size=6, cooldown=0)
    p['template'] = {'pool': 'images', 'base_volume': 'base.qcow2', 'vcpus': 1, 'memory_mb': 512}
    p.update(changes)
    return p


@pytest.mark.parametrize('placement, expected', [
    ('round_robin', ['h1', 'h2', 'h1', 'h2']),
    ('fill_first', ['h1', 'h1', 'h1', 'h1']),
    ('most_free', ['h2', 'h2', 'h1', 'h2']),  # h2 5 GiB, h1 4: level at 4 GiB, then the vCPUs decide
])
def test_placement_over_two_hosts(two_hosts, seeds, placement, expected):
    uris, conns = two_hosts
    result = sg.run(two_host_params(uris, placement=placement, allocation_ratio={'vcpus': 1.0, 'memory_mb': 1.0}),
                    now=T0, metrics=cpu(None), opener=lambda uri: Kept(conns[uri]))
    assert [c['host'] for c in result['created']] == expected
    for created in result['created']:
        assert conns[uris[created['host']]].lookupByName(created['name']).isActive()
    # a second run finds them where they are
    again = sg.run(two_host_params(uris, placement=placement), now=T0 + 1, metrics=cpu(0.5),
                   opener=lambda uri: Kept(conns[uri]))
    assert [(m['name'], m['host']) for m in again['members']] == [(c['name'], c['host']) for c in result['created']]


def test_a_member_defined_on_two_hosts_is_inconsistent(two_hosts, seeds):
    uris, conns = two_hosts
    result = sg.run(two_host_params(uris, min_size=1), now=T0, metrics=cpu(None), opener=lambda uri: Kept(conns[uri]))
    created = result['created'][0]
    copy = conns[uris[created['host']]].lookupByName(created['name']).XMLDesc(0)
    other = 'h2' if created['host'] == 'h1' else 'h1'
    conns[uris[other]].defineXML(copy)
    with pytest.raises(LevellerError) as err:
        sg.run(two_host_params(uris, min_size=1), now=T0 + 1, metrics=cpu(None), opener=lambda uri: Kept(conns[uri]))
    assert err.value.failure == 'inconsistent' and 'on host h1 and on host h2' in str(err.value)


# ---------------------------------------------------------------- Prometheus

class Answer(object):
    def __init__(self, body, status=200):
        self.status_code = status
        self.text = json.dumps(body) if not isinstance(body, str) else body


class Session(object):
    """Stands in for requests.Session: answers range queries from a table, keeps what was asked."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def post(self, url, data=None, **kwargs):
        self.asked.append((url, dict(data)))
        return self.answers[data['query']]


def matrix(series):
    return {'status': 'success', 'data': {'resultType': 'matrix', 'result': [
        {'metric': labels, 'values': [[at, str(value)] for at, value in points]} for labels, points in series]}}


def found_members():
    def one(index, domain_uuid):
        member = sc.Member(name='web-%d' % index, host='h1', index=index, created_at=T0 - 1000,
                           template_version='v', last_action_at=None)
        return sg.Found(member=member, uuid=domain_uuid, volumes=(), state='running')
    return {'web-1': one(1, '00000000-0000-4000-8000-000000000001'),
            'web-2': one(2, '00000000-0000-4000-8000-000000000002')}


def prometheus_config(**changes):
    p = params('web', 'b', metrics_source='prometheus', prometheus_url='http://prometheus:9090', window=60,
               thresholds={'cpu': {'scale_out': 0.8, 'scale_in': 0.2},
                           'disk_io': {'scale_out': 1e6, 'scale_in': 1e3}})
    p.update(changes)
    return sg.build_config(p)


def test_prometheus_range_queries_are_joined_to_members_by_uuid_or_name():
    config = prometheus_config()
    queries = config.prometheus['queries']
    assert 'by (uuid)' in queries['cpu'] and sorted(queries) == ['cpu', 'disk_io']
    assert config.prometheus['step'] == 2
    session = Session({
        queries['cpu']: Answer(matrix([
            ({'uuid': '00000000-0000-4000-8000-000000000001'}, [(T0 - 30, 0.9), (T0, 0.7)]),
            ({'uuid': 'web-2'}, [(T0, 'NaN')]),
            ({'uuid': 'someone-else'}, [(T0, 0.1)]),
        ])),
        queries['disk_io']: Answer(matrix([({'uuid': '00000000-0000-4000-8000-000000000002'}, [(T0, 2048)])])),
    })
    client = sg.prometheus_client(config.prometheus)
    client.session = session
    samples = sg.measure_prometheus(config.prometheus, found_members(), 60, T0, client=client)
    assert samples == {'web-1': [(T0 - 30, 0.9, None, None), (T0, 0.7, None, None)],
                       'web-2': [(T0, None, None, 2048.0)]}
    url, data = session.asked[0]
    assert url == 'http://prometheus:9090/api/v1/query_range'
    assert (float(data['start']), float(data['end']), data['step']) == (T0 - 60, T0, '2')
    spec = config.spec
    values = sc.group_metrics(spec, [f.member for f in found_members().values()], samples, T0)
    assert values == {'cpu': 0.8, 'memory': None, 'disk_io': 2048.0}


@pytest.mark.parametrize('series, message', [
    ([({'domain': 'web-1'}, [(T0, 0.5)])], "query_cpu: the query .* returns series without the label 'uuid'"),
    ([({'uuid': 'web-1'}, [(T0, 50)])], 'query_cpu: the query .* returned 50.0 for member web-1, outside 0..1'),
    ([({'uuid': 'web-1', 'x': '1'}, [(T0, 0.5)]), ({'uuid': 'web-1', 'x': '2'}, [(T0, 0.5)])],
     'query_cpu: the query .* returns two series for member web-1'),
])
def test_prometheus_answers_that_cannot_be_judged_name_the_query_option(series, message):
    config = prometheus_config(thresholds={'cpu': {'scale_out': 0.8, 'scale_in': 0.2}}, query_cpu='my_cpu')
    client = sg.prometheus_client(config.prometheus)
    client.session = Session({'my_cpu': Answer(matrix(series))})
    with pytest.raises(sg.GroupError, match=message):
        sg.measure_prometheus(config.prometheus, found_members(), 60, T0, client=client)


def test_prometheus_refusals_keep_the_collections_wording():
    config = prometheus_config(thresholds={'cpu': {'scale_out': 0.8, 'scale_in': 0.2}}, query_cpu='bad(')
    client = sg.prometheus_client(config.prometheus)
    client.session = Session({'bad(': Answer({'status': 'error', 'errorType': 'bad_data', 'error': 'parse error'},
                                             status=400)})
    with pytest.raises(LevellerError, match='rejected the cpu \\(query_cpu\\) query'):
        sg.measure_prometheus(config.prometheus, found_members(), 60, T0, client=client)
    client.session = Session({'bad(': Answer({'status': 'success', 'data': {'resultType': 'vector', 'result': []}})})
    with pytest.raises(sg.GroupError, match='^query_cpu: .* not a range vector'):
        sg.measure_prometheus(config.prometheus, found_members(), 60, T0, client=client)
