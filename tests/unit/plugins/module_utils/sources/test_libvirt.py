# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt source: rates from two samples, and a real run against libvirt's test:///default.

What the test driver reports (libvirt 9): node CPU counters are constants (so the host CPU rate
falls back to the domains' CPU time), node memory stats are not supported (free memory is used),
the domain's cpuTime follows the wall clock, balloon memory stats and block stats are there.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover
    from urllib import quote

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict, validate
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import gather
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as lv
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan


def test_host_cpu_from_counters():
    before = {'user': 100, 'kernel': 50, 'idle': 800, 'iowait': 50}
    after = {'user': 400, 'kernel': 100, 'idle': 1400, 'iowait': 100}
    # total delta 1000, idle+iowait delta 650 -> busy 0.35
    assert lv.host_cpu_from_counters(before, after) == pytest.approx(0.35)
    assert lv.host_cpu_from_counters(before, before) is None


def test_host_memory_prefers_memory_stats():
    stats = {'total': 1000, 'free': 200, 'buffers': 50, 'cached': 150}
    assert lv.host_memory_from_stats(stats) == pytest.approx(0.6)
    assert lv.host_memory_from_stats(None, total_kib=1024, free_bytes=256 * 1024) == pytest.approx(0.75)
    assert lv.host_memory_from_stats(None) is None


def test_domain_cpu_and_memory_are_shares_of_the_domain():
    assert lv.domain_cpu(0, 3e9, 2.0, 3) == pytest.approx(0.5)
    assert lv.domain_cpu(0, 3e9, 0, 3) is None
    assert lv.domain_memory({'available': 4000, 'unused': 1000, 'actual': 4096, 'rss': 9}) == 0.75
    assert lv.domain_memory({'actual': 4000, 'rss': 1000}) == 0.25
    assert lv.domain_memory({}) is None


def sample(at, cpu, domains):
    return {'at': at, 'cpu': cpu, 'domains': domains}


def dom(cpu_time, rd, wr, vcpus=2):
    return {'name': 'd', 'vcpus': vcpus, 'memory_kib': 1, 'cpu_time': cpu_time, 'rd_bytes': rd,
            'wr_bytes': wr, 'memory_stats': {'actual': 100, 'rss': 50}}


def test_measure_rates_and_new_domains_without_rate():
    first = sample(10.0, {'idle': 0, 'user': 0}, {'a': dom(0, 0, 0)})
    second = sample(12.0, {'idle': 1000, 'user': 1000},
                    {'a': dom(2e9, 4096, 2048), 'b': dom(5e9, 0, 0)})
    host, doms = lv.measure(first, second, cpus=4, total_kib=1000, mem_stats=None, free_bytes=512000)
    assert host['cpu'] == 0.5 and host['cpu_from'] == 'node counters'
    assert host['memory'] == 0.5
    assert doms['a']['cpu'] == 0.5
    assert doms['a']['disk_read_bytes_per_s'] == 2048 and doms['a']['disk_write_bytes_per_s'] == 1024
    assert 'b' not in doms  # started between the samples: no rate yet
    assert host['disk_read_bytes_per_s'] == 2048


def test_measure_falls_back_to_domain_cpu_time_when_node_counters_stand_still():
    first = sample(0.0, {'idle': 5, 'user': 5}, {'a': dom(0, 0, 0)})
    second = sample(1.0, {'idle': 5, 'user': 5}, {'a': dom(1e9, 0, 0)})
    host, _doms = lv.measure(first, second, cpus=4, total_kib=None, mem_stats=None, free_bytes=None)
    assert host['cpu'] == 0.25 and host['cpu_from'] == 'domain cpu time'
    assert host['memory'] is None


@pytest.mark.skipif(not lv.HAS_LIBVIRT, reason='libvirt-python is not installed')
def test_real_test_driver():
    measured = lv.read_hosts({'hv1': 'test:///default', 'hv2': 'test:///default'}, interval=0.2)
    assert sorted(measured) == ['hv1', 'hv2']
    host, domains, node = measured['hv1']
    assert node['cpus'] == 16 and node['memory_mb'] > 0
    # The test driver's node counters are constant: CPU comes from its domain's CPU time,
    # which the driver advances with the wall clock (1 of its 2 vCPUs busy, 16 host CPUs).
    assert host['cpu_from'] == 'domain cpu time'
    assert 0.0 < host['cpu'] <= 1.0
    assert 0.0 <= host['memory'] <= 1.0
    assert list(domains) == ['6695eb01-f6a4-8304-79aa-97f2502e193f']
    d = domains['6695eb01-f6a4-8304-79aa-97f2502e193f']
    assert d['name'] == 'test'
    assert d['cpu'] == pytest.approx(0.5, abs=0.1)
    assert d['memory'] == 0.5  # 1 GiB unused of 2 GiB available, as the driver's balloon says
    assert d['disk_read_bytes_per_s'] >= 0


@pytest.mark.skipif(not lv.HAS_LIBVIRT, reason='libvirt-python is not installed')
def test_unreachable_uri():
    with pytest.raises(LevellerError) as err:
        lv.read_hosts({'hv1': 'qemu+tcp://127.0.0.1:1/system'}, interval=0.1)
    assert err.value.failure == 'unreachable' and 'hv1' in str(err.value)


# ------------------------------------------------------------------ plain KVM hosts, no Nova

KVM_XML = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'libvirt', 'kvm_host.xml')
# libvirt parses a URI: a path with spaces or non-ASCII characters must be percent-encoded.
KVM_URI = 'test://' + quote(KVM_XML)
TEST_DOMAIN = '6695eb01-f6a4-8304-79aa-97f2502e193f'


@pytest.mark.parametrize('uri', ['foo:///system', 'QEMU-ssh://h/system', 'compute1', None])
def test_a_uri_no_driver_serves_is_a_configuration_error(uri):
    with pytest.raises(LevellerError) as err:
        lv.check_uri('kvm1', uri)
    assert err.value.failure == 'configuration' and 'kvm1' in str(err.value)


@pytest.mark.parametrize('uri', ['qemu:///system', 'qemu+ssh://root@kvm1/system', 'test:///default',
                                 'qemu+tls://kvm1.example.org/system?no_verify=1'])
def test_libvirt_uris_of_known_drivers_pass(uri):
    lv.check_uri('kvm1', uri)


def node(cpus, memory_mb, domains):
    return {'cpus': cpus, 'memory_mb': memory_mb, 'hostname': 'h', 'domains': domains}


def domain(uuid, name, state, vcpus=2, mib=4096):
    return {'uuid': uuid, 'name': name, 'state': state, 'vcpus': vcpus, 'max_memory_kib': mib * 1024}


def test_inventory_turns_node_info_and_domains_into_hosts_and_instances():
    load = {'cpu': 0.25, 'memory': 0.5, 'disk_read_bytes_per_s': 0, 'disk_write_bytes_per_s': 0}
    measured = {
        'kvm2': (load, {}, node(8, 32768, [domain('b', 'db', 5, 4, 8192), domain('p', 'pa', 3, 1)])),
        'kvm1': (load, {'a': {'cpu': 0.5, 'memory': None}},
                 node(16, 65536, [domain('a', 'web', 1), domain('s', 'stop', 4)])),
    }
    hosts, instances, host_loads, dom_loads = lv.inventory(measured, availability_zone='rack1',
                                                           allocation_ratio={'vcpus': 4.0})
    assert [h['name'] for h in hosts] == ['kvm1', 'kvm2']
    kvm1 = hosts[0]
    assert kvm1['capacity'] == {'vcpus': 16, 'memory_mb': 65536, 'disk_gb': 0}
    assert kvm1['capacity_unknown'] == ['disk_gb'] and kvm1['az'] == 'rack1'
    assert kvm1['allocation_ratio'] == {'vcpus': 4.0, 'memory_mb': 1.0, 'disk_gb': 1.0}
    assert kvm1['used'] == {'vcpus': 4, 'memory_mb': 8192, 'disk_gb': 0} and kvm1['instances'] == 2
    by_id = dict((i['id'], i) for i in instances)
    assert (by_id['a']['status'], by_id['a']['migratable'], by_id['a']['not_migratable_reason']) == \
        ('ACTIVE', True, None)
    assert by_id['a']['flavor'] == {'name': None, 'vcpus': 2, 'memory_mb': 4096, 'disk_gb': 0}
    assert (by_id['s']['task_state'], by_id['s']['not_migratable_reason']) == ('powering-off', 'not running (shutdown)')
    assert (by_id['b']['status'], by_id['b']['not_migratable_reason']) == ('SHUTOFF', 'not running (shutoff)')
    assert (by_id['p']['status'], by_id['p']['power_state']) == ('PAUSED', 'paused')
    assert all(i['server_groups'] == [] for i in instances)
    assert host_loads['kvm2'] == load and dom_loads == {'a': {'cpu': 0.5, 'memory': None}}


def test_one_domain_on_two_hosts_is_inconsistent():
    measured = dict((h, ({}, {}, node(4, 4096, [domain('a', 'web', 1)]))) for h in ('kvm1', 'kvm2'))
    with pytest.raises(LevellerError) as err:
        lv.inventory(measured)
    assert err.value.failure == 'inconsistent' and 'same libvirt' in str(err.value)


def libvirt_only(uris, **kw):
    p = {'sources': ['libvirt'], 'libvirt_uris': uris, 'libvirt_sample_interval': 0.2, 'scope': {},
         'allow_missing_load': False}
    p.update(kw)
    return gather.gather(None, p, validate=validate)


@pytest.mark.skipif(not lv.HAS_LIBVIRT, reason='libvirt-python is not installed')
def test_plain_kvm_hosts_make_a_valid_plannable_snapshot():
    snap, summary = libvirt_only({'kvm1': 'test:///default', 'kvm2': KVM_URI},
                                 libvirt_availability_zone='rack1')
    jsonschema = pytest.importorskip('jsonschema')
    root = os.path.abspath(os.path.join(os.path.dirname(KVM_XML), *(['..'] * 6)))
    with open(os.path.join(root, 'docs', 'schema', 'snapshot-v1.schema.json')) as handle:
        jsonschema.validate(snap, json.load(handle))
    hosts = dict((h['name'], h) for h in snap['hosts'])
    # test:///default: 16 CPUs, 3 GiB; the XML file: 8 CPUs, 32 GiB.
    assert hosts['kvm1']['capacity'] == {'vcpus': 16, 'memory_mb': 3072, 'disk_gb': 0}
    assert hosts['kvm2']['capacity'] == {'vcpus': 8, 'memory_mb': 32768, 'disk_gb': 0}
    assert hosts['kvm2']['used'] == {'vcpus': 7, 'memory_mb': 14336, 'disk_gb': 0}
    assert all(h['load_source'] == 'libvirt' and h['az'] == 'rack1' for h in snap['hosts'])
    assert 0.0 < hosts['kvm2']['load']['cpu'] <= 1.0
    inst = dict((i['name'], i) for i in snap['instances'])
    assert sorted(inst) == ['batch1', 'db1', 'test', 'web1']
    assert inst['test']['id'] == TEST_DOMAIN and inst['test']['host'] == 'kvm1'
    assert inst['test']['flavor']['vcpus'] == 2 and inst['test']['load']['cpu'] == pytest.approx(0.5, abs=0.1)
    assert inst['web1']['migratable'] and inst['web1']['flavor']['memory_mb'] == 4096
    assert inst['db1']['not_migratable_reason'] == 'not running (shutoff)'
    assert inst['batch1']['not_migratable_reason'] == 'not running (paused)'
    assert snap['sources']['libvirt']['inventory'] is True and 'nova' not in snap['sources']
    assert summary['api_calls']['total'] == 0 and summary['libvirt_hosts'] == 2
    assert (summary['hosts'], summary['instances'], summary['migratable_instances']) == (2, 4, 2)
    plan = make_plan(from_dict(snap), 'balance', {}).to_dict()
    assert sorted(plan['before']['hosts']) == ['kvm1', 'kvm2']
    assert plan['before']['hosts']['kvm2']['instances'] == 3
    assert plan['before']['hosts']['kvm2']['cpu'] == hosts['kvm2']['load']['cpu']
    assert dict((s['name'], s['reason']) for s in plan['skipped'] if s['kind'] == 'instance') == {
        'db1': 'not migratable: not running (shutoff)', 'batch1': 'not migratable: not running (paused)'}


@pytest.mark.skipif(not lv.HAS_LIBVIRT, reason='libvirt-python is not installed')
def test_plain_kvm_scope_picks_hosts_by_name():
    snap, _summary = libvirt_only({'kvm1': 'test:///default', 'kvm2': KVM_URI},
                                  scope={'hosts': ['kvm2']})
    assert [h['name'] for h in snap['hosts']] == ['kvm2']
    with pytest.raises(LevellerError) as err:
        libvirt_only({'kvm1': 'test:///default'}, scope={'hosts': ['kvm9']})
    assert err.value.failure == 'configuration' and 'kvm9' in str(err.value)
    with pytest.raises(LevellerError) as err:
        libvirt_only({'kvm1': 'test:///default'}, scope={'availability_zones': ['az1']})
    assert err.value.failure == 'configuration' and 'libvirt_availability_zone' in str(err.value)


@pytest.mark.parametrize('uris, failure, words', [
    ({}, 'configuration', 'libvirt_uris'),
    ({'kvm1': 'test:///default', 'kvm2': 'foo:///system'}, 'configuration', 'not a libvirt driver'),
    ({'kvm1': 'test:///no/such/host.xml'}, 'configuration', 'rejects the URI'),
    ({'kvm1': 'test://'}, 'configuration', 'rejects the URI'),
    ({'kvm1': 'qemu+tcp://127.0.0.1:1/system'}, 'unreachable', 'unreachable'),
])
@pytest.mark.skipif(not lv.HAS_LIBVIRT, reason='libvirt-python is not installed')
def test_plain_kvm_bad_input_fails_with_its_class(uris, failure, words):
    with pytest.raises(LevellerError) as err:
        libvirt_only(uris)
    assert err.value.failure == failure and words in str(err.value)


@pytest.mark.skipif(not lv.HAS_LIBVIRT, reason='libvirt-python is not installed')
def test_the_same_libvirt_under_two_names_is_refused():
    with pytest.raises(LevellerError) as err:
        libvirt_only({'kvm1': KVM_URI, 'kvm2': KVM_URI})
    assert err.value.failure == 'inconsistent'


def test_prometheus_alone_names_the_sources_that_give_hosts():
    with pytest.raises(LevellerError) as err:
        gather.gather(None, {'sources': ['prometheus'], 'prometheus_url': 'http://p'})
    assert err.value.failure == 'configuration' and 'libvirt' in str(err.value)
