# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt backend against libvirt's own test driver (``test:///<node file>``).

Each host is a node file; each connection to a node file is a separate in-memory libvirt, so
the hosts are as independent as real ones. The test driver serves reads, node info, domain
lists and the refusals. It cannot migrate (no peer-to-peer, no jobs, no abortJob): a real
migration, its job statistics and abortJob are covered by tests/integration/libvirt/backend_check.py
on the two-host QEMU test bed. Here a started migration ends ``failed`` with the test
driver's own message, which covers the failure path; the running and aborted phases are
held by stopping the migration thread before its libvirt call.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
import time

import pytest

pytest.importorskip('libvirt')

from ansible_collections.cloudops.leveller.plugins.module_utils import _libvirt_backend as lvb  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import Executor, Move  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError  # noqa: E402

A = '11111111-2222-4333-8444-00000000000a'
B = '11111111-2222-4333-8444-00000000000b'
OFF = '11111111-2222-4333-8444-0000000000f0'
P = '11111111-2222-4333-8444-0000000000e0'
TWICE = '11111111-2222-4333-8444-0000000000d0'
DUP = '11111111-2222-4333-8444-0000000000c0'
MISSING = '11111111-2222-4333-8444-0000000000ff'


def domain_xml(name, uuid, vcpus=1, memory_mib=256, runstate=None, transient=False):
    extra = ''
    if runstate is not None:
        extra += '<test:runstate>%d</test:runstate>' % runstate
    if transient:
        extra += '<test:transient/>'
    return ("<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
            "<name>%s</name><uuid>%s</uuid><memory unit='MiB'>%d</memory><vcpu>%d</vcpu>"
            "<os><type>hvm</type></os>%s</domain>" % (name, uuid, memory_mib, vcpus, extra))


def node_file(path, domains, cpus=8, memory_mib=8192):
    path.write_text(
        "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>%d</active><nodes>1</nodes>"
        "<sockets>1</sockets><cores>%d</cores><threads>1</threads></cpu><memory>%d</memory>%s</node>"
        % (cpus, cpus, memory_mib * 1024, ''.join(domains)))
    return 'test://%s' % path


@pytest.fixture
def uris(tmp_path):
    """h1: a (2 vCPU, 1 GiB, running), off (shut off), p (paused), twice (running), dup (running);
    h2: b (running), twice (running: a second copy), dup (defined, shut off); both 8 CPUs, 8 GiB."""
    h1 = node_file(tmp_path / 'h1.xml', [
        domain_xml('a', A, vcpus=2, memory_mib=1024),
        domain_xml('off', OFF, memory_mib=512, runstate=5),
        domain_xml('p', P, runstate=3),
        domain_xml('twice', TWICE),
        domain_xml('dup', DUP),
    ])
    h2 = node_file(tmp_path / 'h2.xml', [
        domain_xml('b', B, vcpus=4, memory_mib=2048),
        domain_xml('twice', TWICE),
        domain_xml('dup', DUP, runstate=5),
    ])
    return {'h1': h1, 'h2': h2}


@pytest.fixture
def backend(uris):
    be = lvb.LibvirtBackend(uris, call_timeout=5.0)
    yield be
    be.close()


def wait_for(cond, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def hold_migrations(be, monkeypatch):
    """Stop every migration thread before its libvirt call (phase 'preparing') until released."""
    release = threading.Event()
    real_open = be._open

    def gated(uri):
        if threading.current_thread().name.startswith('leveller-migrate'):
            release.wait(10)
        return real_open(uri)
    monkeypatch.setattr(be, '_open', gated)
    return release


# -- construction -----------------------------------------------------------------------
def test_configuration_errors_name_the_option(uris):
    with pytest.raises(LevellerError, match='libvirt_uris: host h3 has'):
        lvb.LibvirtBackend(dict(uris, h3='kvm3'))
    with pytest.raises(LevellerError, match='expected a mapping'):
        lvb.LibvirtBackend({})
    for bad in (-1, 0):
        with pytest.raises(LevellerError, match='allocation_ratio.vcpus must be > 0'):
            lvb.LibvirtBackend(uris, allocation_ratio={'vcpus': bad})
    with pytest.raises(LevellerError, match='bandwidth must be a whole number'):
        lvb.LibvirtBackend(uris, bandwidth=0)
    with pytest.raises(LevellerError, match='peer URIs name host'):
        lvb.LibvirtBackend(uris, peer_uris={'h9': 'qemu+tcp://h9/system'})
    be = lvb.LibvirtBackend(uris, peer_uris={'h2': 'qemu+tcp://10.0.0.2/system'})
    assert be.peer_uris == {'h1': uris['h1'], 'h2': 'qemu+tcp://10.0.0.2/system'}
    assert be.ratio == {'vcpus': 1.0, 'memory_mb': 1.0}  # as _sources.libvirt.inventory's default
    be.close()


# -- read ---------------------------------------------------------------------------------
def test_read_finds_the_domain_on_its_host(backend):
    got = backend.read(A.upper())
    assert got['id'] == A and got['name'] == 'a' and got['host'] == 'h1'
    assert (got['status'], got['task_state'], got['power_state']) == ('ACTIVE', None, 1)
    assert got['flavor'] == {'vcpus': 2, 'memory_mb': 1024, 'disk_gb': 0}
    assert got['locked'] is False and got['metadata'] == {} and got['tags'] == []
    assert got['copies'] == {'h1': 'running'} and got['note'] is None
    assert backend.read(B)['host'] == 'h2'


def test_read_maps_libvirt_states_to_nova_status_and_power_state(backend):
    off = backend.read(OFF)
    assert (off['status'], off['power_state'], off['host']) == ('SHUTOFF', 4, 'h1')
    paused = backend.read(P)
    assert (paused['status'], paused['power_state']) == ('ACTIVE', 3)


def test_read_of_a_domain_that_is_nowhere_is_none_and_a_non_uuid_is_refused(backend):
    assert backend.read(MISSING) is None
    with pytest.raises(lvb.LibvirtBackendError, match='not a domain UUID') as err:
        backend.read('vm-a')
    assert err.value.status == 400


def test_a_domain_running_on_two_hosts_is_error_with_a_note(backend):
    got = backend.read(TWICE)
    assert got['status'] == 'ERROR'
    assert 'runs on h1 and h2: exactly one copy expected' in got['note']


def test_a_definition_on_another_host_is_noted_and_the_running_copy_wins(backend):
    got = backend.read(DUP)
    assert got['status'] == 'ACTIVE' and got['host'] == 'h1'
    assert 'also defined on h2 (defined, shutoff)' in got['note']


def test_a_host_that_does_not_answer_is_noted_or_makes_the_read_unclear(uris, tmp_path):
    be = lvb.LibvirtBackend(dict(uris, h3='test://%s' % (tmp_path / 'missing.xml')), call_timeout=5.0)
    got = be.read(A)
    assert got['host'] == 'h1' and got['status'] == 'ACTIVE' and 'no answer from h3' in got['note']
    with pytest.raises(lvb.LibvirtBackendError, match='on no host that answered') as err:
        be.read(MISSING)
    assert err.value.status is None  # unclear: the executor reads again
    with pytest.raises(lvb.LibvirtBackendError, match='runs on no host that answered') as err:
        be.read(OFF)  # shut off here, perhaps running on h3
    assert err.value.status is None
    be.close()


# -- hosts, needs, room -------------------------------------------------------------------
def test_hosts_are_enabled_and_up_when_they_answer(uris, tmp_path):
    be = lvb.LibvirtBackend(dict(uris, h3='test://%s' % (tmp_path / 'missing.xml')))
    hosts = be.hosts()
    assert hosts['h1'] == {'status': 'enabled', 'state': 'up', 'forced_down': False, 'disabled_reason': None}
    assert hosts['h2']['state'] == 'up'
    assert hosts['h3']['state'] == 'down' and hosts['h3']['status'] == 'enabled' and not hosts['h3']['forced_down']
    assert 'missing.xml' in hosts['h3']['error']
    be.close()


def test_the_maintenance_hook_disables_a_host(uris):
    class Marked(lvb.LibvirtBackend):
        def maintenance_reason(self, host, conn):
            return 'drained by cloudops.leveller' if host == 'h2' else None
    be = Marked(uris)
    hosts = be.hosts()
    assert hosts['h1']['status'] == 'enabled'
    assert hosts['h2'] == {'status': 'disabled', 'state': 'up', 'forced_down': False,
                           'disabled_reason': 'drained by cloudops.leveller'}
    be.close()


def test_needs_are_the_domains_vcpus_and_memory(backend):
    assert backend.needs(A) == {'VCPU': 2, 'MEMORY_MB': 1024}
    assert backend.needs(MISSING) == {}


def test_room_is_node_capacity_times_ratio_less_every_defined_domain(uris):
    be = lvb.LibvirtBackend(uris)
    # h1: a 2 + off 1 + p 1 + twice 1 + dup 1 = 6 vCPUs; 1024 + 512 + 256 * 3 = 2304 MiB (shut off counts)
    assert be.room('h1') == {
        'VCPU': {'free': 2, 'max_unit': 8, 'total': 8, 'used': 6, 'allocation_ratio': 1.0},
        'MEMORY_MB': {'free': 8192 - 2304, 'max_unit': 8192, 'total': 8192, 'used': 2304, 'allocation_ratio': 1.0}}
    be.close()
    be = lvb.LibvirtBackend(uris, allocation_ratio={'vcpus': 4.0, 'memory_mb': 1.5})
    room = be.room('h2')  # b 4 + twice 1 + dup 1 = 6; 2048 + 256 + 256 = 2560
    assert room['VCPU']['free'] == 32 - 6 and room['VCPU']['max_unit'] == 8
    assert room['MEMORY_MB']['free'] == 12288 - 2560
    with pytest.raises(lvb.LibvirtBackendError, match='not one of the libvirt hosts') as err:
        be.room('h9')
    assert err.value.status == 400
    be.close()


# -- refusals: nothing is started ------------------------------------------------------------
@pytest.mark.parametrize('kind, instance, destination, words', [
    ('live', A, None, 'no scheduler'),
    ('cold', A, 'h2', 'no cold migration'),
    ('evacuate', A, 'h2', 'no cold migration'),
    ('live', A, 'h9', 'destination h9 is not one of the libvirt hosts'),
    ('live', DUP, 'h2', 'destination h2 already has a domain with that UUID (dup, defined, shutoff)'),
    ('live', B, 'h2', 'destination h2 already has a domain with that UUID (b, running)'),
    ('live', OFF, 'h2', 'it must run on exactly one host, its source (h1: defined, shutoff)'),
    ('live', TWICE, 'h2', 'already has a domain'),
    ('live', MISSING, 'h2', 'it must run on exactly one host, its source (on no host)'),
    ('live', 'vm-a', 'h2', 'not a domain UUID'),
])
def test_refusals_have_status_400_and_start_nothing(backend, kind, instance, destination, words):
    with pytest.raises(lvb.LibvirtBackendError) as err:
        backend.start(kind, instance, destination)
    assert err.value.status == 400 and words in str(err.value)
    if instance != 'vm-a':
        assert backend.migrations(instance, 'live') == []


def test_a_domain_running_on_two_other_hosts_is_refused(uris, tmp_path):
    be = lvb.LibvirtBackend(dict(uris, h3=node_file(tmp_path / 'h3.xml', [])))
    with pytest.raises(lvb.LibvirtBackendError, match=r'exactly one host, its source \(h1: running, h2: running\)'):
        be.start('live', TWICE, 'h3')
    be.close()


def test_confirm_and_power_on_are_refused(backend):
    for call in (backend.confirm, backend.power_on):
        with pytest.raises(lvb.LibvirtBackendError, match='plain libvirt has no cold migration') as err:
            call(A)
        assert err.value.status == 400
    assert backend.migrations(A, 'cold') == [] and backend.migrations(A, 'evacuate') == []


# -- a started migration ---------------------------------------------------------------------
def test_a_start_returns_at_once_and_its_record_ends_failed_with_libvirts_message(backend):
    promise = backend.start('live', A, 'h2')
    assert promise['id'] == 1 and promise['status'] == 'running' and promise['source'] == 'h1'
    assert wait_for(lambda: backend.migrations(A, 'live')[0]['status'] != 'running')
    rec = backend.migrations(A, 'live')[0]
    # The test driver has no peer-to-peer migration: libvirt says so, and the record carries it.
    assert rec['status'] == 'failed' and 'p2p migration is not supported' in rec['message']
    assert rec['destination'] == 'h2' and rec['seconds'] is not None
    after = backend.read(A)
    assert after['host'] == 'h1' and after['task_state'] is None
    # ids are unique per backend: the next start gets the next one
    assert backend.start('live', A, 'h2')['id'] == 2
    assert wait_for(lambda: backend.migrations(A, 'live')[1]['status'] == 'failed')
    assert [m['id'] for m in backend.migrations(A, 'live')] == [1, 2]


def test_the_executor_reports_the_failed_migration_with_the_instance_unchanged(backend):
    ex = Executor(backend, poll_interval=0.05, timeout=10, abort_timeout=5, on_failure='continue')
    move = ex.run([Move(A, 'h1', 'h2')])[0]
    assert move.result == 'failed', move.error
    assert 'live migration 1 ended failed' in move.error and 'ACTIVE on h1 (unchanged)' in move.error


def test_while_the_migration_runs_read_says_migrating_and_a_second_start_is_refused(backend, monkeypatch):
    release = hold_migrations(backend, monkeypatch)
    backend.start('live', A, 'h2')
    got = backend.read(A)
    assert got['task_state'] == 'migrating' and got['host'] == 'h1' and got['status'] == 'ACTIVE'
    assert [m['status'] for m in backend.migrations(A, 'live')] == ['running']
    with pytest.raises(lvb.LibvirtBackendError, match='migration 1 of it .* is still running') as err:
        backend.start('live', A, 'h2')
    assert err.value.status == 400
    release.set()
    assert wait_for(lambda: backend.migrations(A, 'live')[0]['status'] == 'failed')
    assert backend.read(A)['task_state'] is None


def test_two_live_copies_during_a_migration_are_a_switch_over_not_an_error(backend, monkeypatch):
    release = hold_migrations(backend, monkeypatch)
    backend.start('live', A, 'h2')
    conn = backend._connect('h2')
    conn.createXML(domain_xml('a', A, vcpus=2, memory_mib=1024), 0)
    got = backend.read(A)
    assert got['status'] == 'ACTIVE' and got['task_state'] == 'migrating'
    assert 'live on h1 and h2 while migrating' in got['note']
    release.set()
    assert wait_for(lambda: backend.migrations(A, 'live')[0]['status'] == 'failed')
    assert backend.read(A)['status'] == 'ERROR'  # no migration any more: two copies is an error


def test_abort_before_the_libvirt_call_cancels_it(backend, monkeypatch):
    release = hold_migrations(backend, monkeypatch)
    mig = backend.start('live', A, 'h2')
    assert backend.abort(A, mig['id']) is None
    release.set()
    assert wait_for(lambda: backend.migrations(A, 'live')[0]['status'] == 'cancelled')
    rec = backend.migrations(A, 'live')[0]
    assert rec['abort_requested'] and 'aborted before the migration call' in rec['message']
    assert backend.read(A)['task_state'] is None
    assert backend.abort(A, mig['id']) is None  # ended: nothing to abort


def test_the_executor_aborts_at_the_deadline_and_reports_aborted(backend, monkeypatch):
    release = hold_migrations(backend, monkeypatch)
    ex = Executor(backend, poll_interval=0.05, timeout=0.3, abort_timeout=5, on_failure='continue')
    threading.Timer(1.0, release.set).start()
    move = ex.run([Move(A, 'h1', 'h2')])[0]
    release.set()
    assert move.result == 'aborted', move.error
    assert 'migration 1 aborted (cancelled); instance ACTIVE on its source h1' in move.error


def test_abort_of_a_migration_this_backend_did_not_start_needs_a_job(backend):
    with pytest.raises(lvb.LibvirtBackendError, match='no migration job of') as err:
        backend.abort(A, 77)
    assert err.value.status == 409


def test_a_cut_off_call_is_settled_from_the_hosts(backend, monkeypatch):
    # The migration call fails and its connection is dead: the answer was lost, so the
    # record stays running until the hosts show where the domain is, without a job.
    monkeypatch.setattr(lvb, '_alive', lambda conn: False)
    backend.start('live', A, 'h2')
    assert wait_for(lambda: backend._migrations[0].lost is not None)
    monkeypatch.setattr(backend, '_survey', lambda uuid: ({'h1': dict(RUNNING_COPY, job_type=2, job_operation=5)}, {}))
    assert backend.migrations(A, 'live')[0]['status'] == 'running'  # a job still runs on the source
    monkeypatch.setattr(backend, '_survey', lambda uuid: ({'h2': dict(RUNNING_COPY)}, {}))
    rec = backend.migrations(A, 'live')[0]
    assert rec['status'] == 'completed' and 'cut off' in rec['message'] and 'running on h2 only' in rec['message']


def test_a_cut_off_call_with_the_domain_still_on_its_source_is_failed(backend, monkeypatch):
    monkeypatch.setattr(lvb, '_alive', lambda conn: False)
    backend.start('live', A, 'h2')
    assert wait_for(lambda: backend._migrations[0].lost is not None)
    rec = backend.migrations(A, 'live')[0]  # the real hosts: still on h1, no job
    assert rec['status'] == 'failed' and 'still running on its source h1' in rec['message']


# -- the phases of a real migration, as read() reports them (copies as QEMU shows them) -------------
RUNNING_COPY = {'name': 'a', 'state': 1, 'reason': 1, 'active': True, 'persistent': True, 'vcpus': 2,
                'memory_mb': 1024, 'job_type': 0, 'job_operation': None, 'progress': None}
COPYING = dict(RUNNING_COPY, job_type=2, job_operation=5,
               progress={'data_processed': 1 << 20, 'data_total': 32 << 20, 'data_remaining': 31 << 20})
INCOMING = dict(RUNNING_COPY, state=3, reason=2, persistent=False, job_type=None)
SOURCE_PAUSED = dict(COPYING, state=3, reason=2)
ARRIVED = dict(RUNNING_COPY, reason=2)


@pytest.mark.parametrize('copies, host, task, status, power', [
    ({'h1': RUNNING_COPY}, 'h1', None, 'ACTIVE', 1),                             # before
    ({'h1': COPYING, 'h2': INCOMING}, 'h1', 'migrating', 'ACTIVE', 1),           # copying
    ({'h1': SOURCE_PAUSED, 'h2': INCOMING}, 'h1', 'migrating', 'ACTIVE', 3),     # stop and copy
    ({'h1': SOURCE_PAUSED, 'h2': ARRIVED}, 'h2', 'migrating', 'ACTIVE', 1),      # switch-over
    ({'h2': ARRIVED}, 'h2', None, 'ACTIVE', 1),                                  # migrated
])
def test_the_phases_of_a_migration_begun_elsewhere(backend, copies, host, task, status, power):
    # No record of ours (a migration begun by an earlier, killed run): the jobs alone tell.
    got = backend._view(A, copies, {}, None)
    assert (got['host'], got['task_state'], got['status'], got['power_state']) == (host, task, status, power)


def test_the_source_job_progress_lands_in_the_record(backend, monkeypatch):
    release = hold_migrations(backend, monkeypatch)
    backend.start('live', A, 'h2')
    mig = backend._migrations[0]
    backend._view(A, {'h1': COPYING, 'h2': INCOMING}, {}, mig)
    assert backend.migrations(A, 'live')[0]['progress']['data_total'] == 32 << 20
    release.set()


# -- bounded calls -----------------------------------------------------------------------------
def test_a_hanging_host_costs_a_read_call_timeout_at_most(uris, tmp_path, monkeypatch):
    hang = node_file(tmp_path / 'h3.xml', [])
    be = lvb.LibvirtBackend(dict(uris, h3=hang), call_timeout=0.5)
    release = threading.Event()
    real_open = be._open

    def slow(uri):
        if uri == hang:
            release.wait(10)
        return real_open(uri)
    monkeypatch.setattr(be, '_open', slow)
    t0 = time.monotonic()
    got = be.read(A)
    assert time.monotonic() - t0 < 2.0
    assert got['host'] == 'h1' and 'h3 (libvirt of host h3 at %s did not answer within 0.5 s)' % hang in got['note']
    t0 = time.monotonic()
    hosts = be.hosts()  # the open still hangs: no second thread, a quick answer
    assert time.monotonic() - t0 < 0.4
    assert hosts['h3']['state'] == 'down' and 'still connecting' in hosts['h3']['error']
    release.set()
    assert wait_for(lambda: be.hosts()['h3']['state'] == 'up')
    be.close()


def test_a_migration_that_reports_its_copy_gets_in_flight_lines_in_the_progress_log(backend, monkeypatch):
    """The executor writes a progress-log line every PROGRESS_EVERY seconds while a migration
    reports how much it has copied; RV(progress) keeps one line per finished move."""
    from ansible_collections.cloudops.leveller.plugins.module_utils import _execute
    release = hold_migrations(backend, monkeypatch)
    clock = {'now': 0.0}
    lines = []
    real_migrations = backend.migrations

    def with_progress(instance, kind):
        out = real_migrations(instance, kind)
        for mig in out:
            if mig['status'] == 'running':
                mig['progress'] = {'data_processed': 512 * 1048576, 'data_total': 1024 * 1048576,
                                   'data_remaining': 512 * 1048576}
        return out
    monkeypatch.setattr(backend, 'migrations', with_progress)

    def sleep(seconds):
        clock['now'] += 4.0
        if clock['now'] > 30:
            release.set()
        time.sleep(0.01)
    ex = Executor(backend, timeout=600, poll_interval=0.01, progress=lines.append,
                  clock=lambda: clock['now'], sleep=sleep)
    move = Move(A, 'h1', 'h2', name='a')
    ex.run([move])
    flight = [x for x in lines if 'copying' in x]
    assert flight and all('a (%s) h1 -> h2: copying, 50%% of 1024 MiB' % A in x and '512 MiB left' in x
                          for x in flight)
    assert len(flight) <= 30 // _execute.PROGRESS_EVERY + 1
    assert [x for x in ex.progress if 'copying' in x] == []
