# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nova/Placement join, migratable reasons and API call accounting of the nova source."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import nova
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import validate
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.sources.fake_cloud import (
    FakeConn, make_cloud)


# ------------------------------------------------------------------ migratable reasons

@pytest.mark.parametrize('kwargs, reason', [
    (dict(), None),
    (dict(status='SHUTOFF'), 'not ACTIVE (SHUTOFF)'),
    (dict(task_state='migrating', status='MIGRATING'), 'task in progress (migrating)'),
    (dict(locked=True), 'locked'),
    (dict(metadata={'leveller:pin': 'Yes'}), 'pinned by metadata leveller:pin'),
    (dict(metadata={'leveller:pin': '1'}), 'pinned by metadata leveller:pin'),
    (dict(metadata={'leveller:pin': 'false'}), None),
    (dict(tags=['web', 'leveller-pin']), 'pinned by tag leveller-pin'),
    (dict(tags=['leveller-pinned']), None),
    (dict(host=None, status='ERROR'), 'no host (ERROR)'),
    (dict(host_up=False), 'host compute1 is down'),
    (dict(power_state=1), None),
    (dict(power_state=3), None),
    (dict(power_state=0), 'power state nostate (Nova live-migrates only running or paused instances)'),
    (dict(power_state=6), 'power state crashed (Nova live-migrates only running or paused instances)'),
    (dict(power_state=0, status='SHUTOFF'), 'not ACTIVE (SHUTOFF)'),
])
def test_not_migratable_reason(kwargs, reason):
    args = dict(status='ACTIVE', task_state=None, locked=False, metadata={}, tags=[],
                host='compute1', host_up=True, power_state=None)
    args.update(kwargs)
    assert nova.not_migratable_reason(**args) == reason


def test_transient_state_is_named_before_the_pin():
    # A pinned instance in the middle of a task: the task is what blocks it right now.
    assert nova.not_migratable_reason('ACTIVE', 'rebooting', True, {'leveller:pin': 'true'}, [],
                                      'c1') == 'task in progress (rebooting)'


# ------------------------------------------------------------------ flavors and migrations

def test_flavor_counts_what_placement_allocates():
    server = {'image': {'id': 'x'}, 'flavor': {'original_name': 'm1', 'vcpus': 4, 'ram': 8192,
                                               'disk': 40, 'ephemeral': 10, 'swap': 1536}}
    assert nova.flavor_of(server) == {'name': 'm1', 'vcpus': 4, 'memory_mb': 8192, 'disk_gb': 52}


def test_boot_from_volume_has_no_local_root_disk():
    server = {'image': '', 'flavor': {'original_name': 'm1', 'vcpus': 1, 'ram': 512, 'disk': 40}}
    assert nova.flavor_of(server)['disk_gb'] == 0


def test_last_moves_takes_the_newest_completed_move_between_hosts():
    migs = [
        {'instance_uuid': 'a', 'status': 'completed', 'source_compute': 'c1', 'dest_compute': 'c2',
         'updated_at': '2026-11-20T10:00:00.000000'},
        {'instance_uuid': 'a', 'status': 'completed', 'source_compute': 'c2', 'dest_compute': 'c3',
         'updated_at': '2026-11-21T10:00:00.000000'},
        {'instance_uuid': 'a', 'status': 'failed', 'source_compute': 'c3', 'dest_compute': 'c4',
         'updated_at': '2026-11-22T10:00:00.000000'},
        {'instance_uuid': 'b', 'status': 'confirmed', 'source_compute': 'c1', 'dest_compute': 'c1',
         'updated_at': '2026-11-22T10:00:00.000000'},
        {'instance_uuid': 'c', 'status': 'done', 'source_compute': 'c1', 'dest_compute': 'c2',
         'updated_at': None, 'created_at': '2026-11-19T08:00:00Z'},
    ]
    assert nova.last_moves(migs) == {'a': '2026-11-21T10:00:00Z', 'c': '2026-11-19T08:00:00Z'}


# ------------------------------------------------------------------ host join

def test_hosts_join_on_the_service_host_exactly_not_by_substring():
    services = [{'binary': 'nova-compute', 'host': h, 'zone': 'nova', 'status': 'enabled',
                 'state': 'up'} for h in ('compute1', 'compute10')]
    hypervisors = [
        {'id': 'u10', 'hypervisor_hostname': 'compute10.example.org', 'service': {'host': 'compute10'}},
        {'id': 'u1', 'hypervisor_hostname': 'compute1.example.org', 'service': {'host': 'compute1'}},
    ]
    hosts, ids = nova.build_hosts(services, hypervisors, [])
    assert ids == {'compute1': 'u1', 'compute10': 'u10'}
    assert hosts['compute1']['hypervisor_hostname'] == 'compute1.example.org'


def test_hypervisor_without_compute_service_is_inconsistent():
    with pytest.raises(LevellerError) as err:
        nova.build_hosts([], [{'id': 'u1', 'hypervisor_hostname': 'x', 'service': {'host': 'x'}}], [])
    assert err.value.failure == 'inconsistent'


def test_service_state_and_aggregate_zone():
    services = [{'binary': 'nova-compute', 'host': 'c1', 'zone': None, 'status': 'disabled',
                 'state': 'down', 'forced_down': True, 'disabled_reason': 'maintenance'}]
    hyps = [{'id': 'u1', 'hypervisor_hostname': 'c1', 'service': {'host': 'c1'}}]
    aggs = [{'name': 'b', 'hosts': ['c1'], 'availability_zone': 'az9'}, {'name': 'a', 'hosts': ['c1']}]
    hosts, _ids = nova.build_hosts(services, hyps, aggs)
    assert hosts['c1'] == {'name': 'c1', 'hypervisor_hostname': 'c1', 'az': 'az9',
                           'aggregates': ['a', 'b'], 'enabled': False, 'up': False,
                           'forced_down': True, 'disabled_reason': 'maintenance'}


def test_placement_resources_and_missing_inventory():
    inv = {'inventories': {'VCPU': {'total': 8, 'reserved': 1, 'allocation_ratio': 16.0},
                           'MEMORY_MB': {'total': 4096, 'reserved': 512, 'allocation_ratio': 1.5}}}
    out = nova.placement_resources('c1', inv, {'usages': {'VCPU': 3, 'MEMORY_MB': 1024}})
    assert out['capacity'] == {'vcpus': 8, 'memory_mb': 4096, 'disk_gb': 0}
    assert out['allocation_ratio'] == {'vcpus': 16.0, 'memory_mb': 1.5, 'disk_gb': 1.0}
    assert out['reserved'] == {'vcpus': 1, 'memory_mb': 512, 'disk_gb': 0}
    assert out['used'] == {'vcpus': 3, 'memory_mb': 1024, 'disk_gb': 0}
    with pytest.raises(LevellerError) as err:
        nova.placement_resources('c1', {'inventories': {'VCPU': {'total': 1}}}, {})
    assert 'MEMORY_MB' in str(err.value) and err.value.failure == 'inconsistent'


def test_provider_by_uuid_then_by_exact_node_name():
    hosts = {'c1': {'hypervisor_hostname': 'c1.x'}, 'c2': {'hypervisor_hostname': 'c2.x'}}
    providers = [{'uuid': 'u1', 'name': 'whatever'}, {'uuid': 'other', 'name': 'c2.x'}]
    assert nova.map_providers({'c1': 'u1', 'c2': 'u2'}, hosts, providers) == {'c1': 'u1', 'c2': 'other'}
    with pytest.raises(LevellerError):
        nova.map_providers({'c3': 'u3'}, {'c3': {'hypervisor_hostname': 'c3'}}, providers)


@pytest.mark.parametrize('scope, expected', [
    ({}, True),
    ({'hosts': ['compute1.example.org']}, True),
    ({'hosts': ['compute']}, False),
    ({'availability_zones': ['az1', 'az2']}, True),
    ({'availability_zones': ['az3']}, False),
    ({'aggregates': ['agg-x', 'agg-a']}, True),
    ({'aggregates': ['agg-a'], 'availability_zones': ['az3']}, False),
])
def test_scope(scope, expected):
    host = {'name': 'compute1', 'hypervisor_hostname': 'compute1.example.org', 'az': 'az1',
            'aggregates': ['agg-a']}
    assert nova.in_scope(host, scope) is expected


# ------------------------------------------------------------------ collect and call counts

NOW = datetime.datetime(2026, 11, 22, 22, 0, 0)


def test_collect_builds_a_valid_snapshot_part():
    cloud = make_cloud(4, 3, fqdn=True)
    cloud['servers'][0].update(status='SHUTOFF')
    cloud['servers'][1].update(tags=['leveller-pin'])
    cloud['groups'] = [{'id': 'g1', 'name': 'web', 'policy': 'anti-affinity',
                        'rules': {'max_server_per_host': 1}, 'members': ['inst-1-2', 'inst-2-0']}]
    cloud['migrations'] = [{'uuid': 'm1', 'instance_uuid': 'inst-2-0', 'status': 'completed',
                            'source_compute': 'compute1', 'dest_compute': 'compute2',
                            'updated_at': '2026-11-22T21:00:00.000000'}]
    conn = FakeConn(cloud)
    hosts, instances, sources, counter = nova.collect(conn, now=NOW, history_hours=24)
    assert [h['name'] for h in hosts] == ['compute1', 'compute2', 'compute3', 'compute4']
    assert hosts[0]['aggregates'] == ['agg-odd'] and hosts[1]['aggregates'] == []
    assert all(h['instances'] == 3 for h in hosts)
    assert hosts[0]['used'] == {'vcpus': 6, 'memory_mb': 6144, 'disk_gb': 60}
    by_id = dict((i['id'], i) for i in instances)
    assert by_id['inst-1-0']['not_migratable_reason'] == 'not ACTIVE (SHUTOFF)'
    assert by_id['inst-1-1']['not_migratable_reason'] == 'pinned by tag leveller-pin'
    assert by_id['inst-1-2']['server_groups'][0]['members'] == ['inst-1-2', 'inst-2-0']
    assert by_id['inst-2-0']['last_moved_at'] == '2026-11-22T21:00:00Z'
    assert sources['nova']['microversion'] == nova.NOVA_MICROVERSION
    # Every Nova call names the microversion; migrations are bounded by history_hours.
    assert all(mv for _svc, _url, mv in conn.log)
    assert any('changes-since=2026-11-21T22' in url for _s, url, _m in conn.log)
    for h in hosts:
        h.update(load=None, load_source='none')
    validate({'version': 1, 'taken_at': '2026-11-22T22:00:00Z', 'sources': sources,
              'hosts': hosts, 'instances': instances})


def test_instances_on_hosts_nova_has_no_hypervisor_for_are_named():
    cloud = make_cloud(2, 1)
    cloud['servers'][1]['OS-EXT-SRV-ATTR:host'] = 'compute-gone'
    hosts, instances, sources, _counter = nova.collect(FakeConn(cloud), now=NOW)
    assert [i['id'] for i in instances] == ['inst-1-0']
    assert sources['nova']['instances_on_unknown_hosts'] == {'compute-gone': ['inst-2-0']}
    assert [h['instances'] for h in hosts] == [1, 0]


def _counts(n_hosts, per_host, scope=None, page_cap=1000):
    conn = FakeConn(make_cloud(n_hosts, per_host), page_cap=page_cap)
    _h, _i, _s, counter = nova.collect(conn, scope=scope, now=NOW, page_size=1000)
    return counter.counts, conn.log


@pytest.mark.parametrize('small_hosts, big_hosts', [(4, 40), (1, 45)])
def test_nova_calls_do_not_grow_with_hosts_or_instances(small_hosts, big_hosts):
    small, small_log = _counts(small_hosts, 1)
    big, big_log = _counts(big_hosts, 20)
    # Nova: one call per list (services, hypervisors, aggregates, servers, groups, migrations),
    # Placement: one list of providers, whatever the number of hosts and instances.
    assert small['nova'] == big['nova'] == 6
    assert small['placement'] == big['placement'] == 1
    # Placement has no bulk read of inventories (total, reserved, allocation_ratio) and
    # allocations (whose sum is the usages): exactly two calls per host in scope, reported apart
    # as placement_per_host.
    assert small['placement_per_host'] == 2 * small_hosts
    assert big['placement_per_host'] == 2 * big_hosts
    per_host = [u for s, u, _m in big_log if s == 'placement' and u != '/resource_providers']
    assert sorted(set(u.rsplit('/', 1)[1] for u in per_host)) == ['allocations', 'inventories']
    assert len(set(per_host)) == len(per_host)  # no provider is read twice
    assert len(big_log) - len(small_log) == 2 * (big_hosts - small_hosts)


def test_scope_of_one_host_costs_the_same_nova_calls_and_two_placement_calls():
    one, _log = _counts(4, 3, scope={'hosts': ['compute2']})
    four, _log = _counts(4, 3)
    assert one['nova'] == four['nova']
    assert one['placement'] == four['placement']
    assert (one['placement_per_host'], four['placement_per_host']) == (2, 8)


def test_nova_calls_grow_with_pages():
    # 30 servers, Nova caps pages at 7: servers take ceil(31/7)=5 calls instead of 1.
    counts, log = _counts(3, 10, page_cap=7)
    server_calls = [u for _s, u, _m in log if u.startswith('/servers/detail')]
    assert len(server_calls) == 5
    assert counts['nova'] == 6 + 4


def test_unknown_host_in_scope_is_a_configuration_error():
    conn = FakeConn(make_cloud(2, 1))
    with pytest.raises(LevellerError) as err:
        nova.collect(conn, scope={'hosts': ['compute1', 'compute9']}, now=NOW)
    assert err.value.failure == 'configuration' and 'compute9' in str(err.value)


def test_forbidden_is_a_permission_failure():
    cloud = make_cloud(1, 1)
    cloud['forbidden'] = True
    with pytest.raises(LevellerError) as err:
        nova.collect(FakeConn(cloud), now=NOW)
    assert err.value.failure == 'permission'
    assert 'admin' in str(err.value)


def test_usages_are_the_sum_of_the_allocations():
    allocs = {'allocations': {'a': {'resources': {'VCPU': 2, 'MEMORY_MB': 512}},
                              'b': {'resources': {'VCPU': 1, 'DISK_GB': 10, 'CUSTOM_X': 3}}}}
    assert nova.placement_usages(allocs) == {'usages': {'VCPU': 3, 'MEMORY_MB': 512, 'DISK_GB': 10,
                                                        'CUSTOM_X': 3}}
    assert nova.placement_usages({}) == nova.placement_usages({'allocations': {}}) == {'usages': {}}


def _mig(uuid, status, mid=19, kind='live-migration'):
    return {'uuid': uuid, 'id': mid, 'status': status, 'migration_type': kind,
            'instance_uuid': 'inst-x', 'source_compute': 'c1', 'dest_compute': 'c2'}


@pytest.mark.parametrize('status', nova.MIGRATION_HOLDS)
def test_a_migration_under_way_or_waiting_for_confirmation_owns_its_allocation(status):
    allocs = {'c1': {'allocations': {'m1': {'resources': {'VCPU': 1}}}}}
    assert nova.unowned_allocations(allocs, [], [_mig('m1', status)]) == {}


@pytest.mark.parametrize('status', ['error', 'failed', 'completed', 'cancelled', 'confirmed', 'reverted', 'done'])
def test_an_ended_migrations_allocation_is_named_with_the_migration(status):
    allocs = {'c1': {'allocations': {'m1': {'resources': {'VCPU': 1, 'MEMORY_MB': 256, 'DISK_GB': 1}},
                                     'inst-1': {'resources': {'VCPU': 4}}}}}
    got = nova.unowned_allocations(allocs, [{'id': 'inst-1'}], [_mig('m1', status)])
    assert got == {'c1': [{'consumer': 'm1', 'resources': {'vcpus': 1, 'memory_mb': 256, 'disk_gb': 1},
                           'migration': {'id': 19, 'status': status, 'type': 'live-migration',
                                         'instance': 'inst-x', 'source': 'c1', 'dest': 'c2'}}]}


def test_a_consumer_nova_does_not_know_is_named_without_a_migration():
    allocs = {'c2': {'allocations': {'gone': {'resources': {'MEMORY_MB': 512}}}}, 'c1': {'allocations': {}}}
    got = nova.unowned_allocations(allocs, [{'id': 'inst-1'}], [])
    assert got == {'c2': [{'consumer': 'gone', 'resources': {'vcpus': 0, 'memory_mb': 512, 'disk_gb': 0},
                           'migration': None}]}


def _with_orphan(cloud, status='error'):
    """compute1 holds the allocation of a live migration that ended (Nova leaves it on a restart)."""
    uuid = cloud['providers'][0]['uuid']
    cloud['allocations'][uuid]['allocations']['mig-19'] = {
        'resources': {'VCPU': 1, 'MEMORY_MB': 256, 'DISK_GB': 1}}
    cloud['migrations'].append(dict(_mig('mig-19', status), source_compute='compute1',
                                    dest_compute='compute2', instance_uuid='inst-2-0',
                                    updated_at='2026-11-22T21:00:00.000000'))
    return cloud


def test_collect_names_an_unowned_allocation_and_counts_it_as_used():
    clean = make_cloud(2, 2)
    hosts, _i, sources, counter = nova.collect(FakeConn(clean), now=NOW)
    assert sources['placement']['unowned_allocations'] == {}
    assert counter.counts['nova'] == 6
    before = hosts[0]['used']
    hosts, instances, sources, counter = nova.collect(FakeConn(_with_orphan(make_cloud(2, 2))), now=NOW)
    assert hosts[0]['used'] == {'vcpus': before['vcpus'] + 1, 'memory_mb': before['memory_mb'] + 256,
                                'disk_gb': before['disk_gb'] + 1}
    (item,) = sources['placement']['unowned_allocations']['compute1']
    assert item['consumer'] == 'mig-19' and item['migration']['status'] == 'error'
    assert list(sources['placement']['unowned_allocations']) == ['compute1']
    # the servers and migrations were read a second time, as something looked unowned
    assert counter.counts['nova'] == 8
    for h in hosts:
        h.update(load=None, load_source='none')
    validate({'version': 1, 'taken_at': '2026-11-22T22:00:00Z', 'sources': sources,
              'hosts': hosts, 'instances': instances})


class _LateConn(FakeConn):
    """The second read of the servers and migrations sees what began after the first."""

    def __init__(self, cloud, late_server=None, late_status=None):
        FakeConn.__init__(self, cloud)
        self.reads = {'/servers/detail': 0, '/os-migrations': 0}
        get = self.compute.get

        def late_get(url, microversion=None):
            path = url.split('?', 1)[0]
            if path in self.reads:
                self.reads[path] += 1
                if self.reads[path] == 2 and path == '/servers/detail' and late_server:
                    cloud['servers'].append(dict(cloud['servers'][0], id=late_server))
                if self.reads[path] == 2 and path == '/os-migrations' and late_status:
                    cloud['migrations'][-1]['status'] = late_status
            return get(url, microversion)
        self.compute.get = late_get


def test_an_instance_booted_after_the_list_is_not_named():
    cloud = make_cloud(2, 1)
    uuid = cloud['providers'][1]['uuid']
    cloud['allocations'][uuid]['allocations']['new-vm'] = {'resources': {'VCPU': 2}}
    _h, _i, sources, _c = nova.collect(_LateConn(cloud, late_server='new-vm'), now=NOW)
    assert sources['placement']['unowned_allocations'] == {}


def test_a_migration_that_ended_between_the_reads_is_named_by_its_new_status():
    cloud = _with_orphan(make_cloud(2, 1), status='unknown-yet')
    _h, _i, sources, _c = nova.collect(_LateConn(cloud, late_status='error'), now=NOW)
    assert sources['placement']['unowned_allocations']['compute1'][0]['migration']['status'] == 'error'
    cloud = _with_orphan(make_cloud(2, 1), status='unknown-yet')
    _h, _i, sources, _c = nova.collect(_LateConn(cloud, late_status='running'), now=NOW)
    assert sources['placement']['unowned_allocations'] == {}


def test_a_resize_older_than_the_history_waiting_for_confirmation_is_found_and_not_named():
    cloud = make_cloud(2, 1)
    uuid = cloud['providers'][0]['uuid']
    cloud['allocations'][uuid]['allocations']['mig-old'] = {'resources': {'VCPU': 2}}
    old = dict(_mig('mig-old', 'finished', mid=3, kind='resize'), source_compute='compute1',
               dest_compute='compute2', instance_uuid='inst-2-0', updated_at='2025-01-01T00:00:00.000000')
    conn = _LateConn(cloud)
    get = conn.compute.get
    urls = []

    def get_old_only_unfiltered(url, microversion=None):
        # the first read is bounded by history_hours and does not see it; the host's own does
        if url.startswith('/os-migrations'):
            urls.append(url)
            cloud['migrations'][:] = [old] if 'source_compute=compute1' in url else []
        return get(url, microversion)
    conn.compute.get = get_old_only_unfiltered
    _h, _i, sources, counter = nova.collect(conn, now=NOW)
    assert sources['placement']['unowned_allocations'] == {}
    assert len(urls) == 2 and 'changes-since' in urls[0]
    assert 'source_compute=compute1' in urls[1] and 'changes-since' not in urls[1]
    assert counter.counts['nova'] == 8


def test_describe_unowned_names_host_resources_and_migration_and_caps_the_lines():
    item = {'consumer': 'mig-19', 'resources': {'vcpus': 1, 'memory_mb': 256, 'disk_gb': 1},
            'migration': {'id': 19, 'status': 'error', 'type': 'live-migration', 'instance': 'i',
                          'source': 'compute4', 'dest': 'compute2'}}
    (line,) = nova.describe_unowned({'compute4': [item]})
    assert line.startswith('compute4: Placement holds 1 vCPU, 256 MB RAM, 1 GB disk for mig-19, ')
    assert 'migration 19 (live-migration compute4 -> compute2, status error)' in line
    assert 'nova-manage placement audit' in line
    bare = dict(item, migration=None)
    (line,) = nova.describe_unowned({'c1': [bare]})
    assert 'no instance or migration Nova lists' in line
    many = nova.describe_unowned({'c1': [bare] * 12}, most=10)
    assert len(many) == 11 and many[-1].startswith('2 more unowned allocation(s)')
