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

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as lv


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
