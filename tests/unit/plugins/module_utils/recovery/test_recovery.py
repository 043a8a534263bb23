# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery decisions: the fencing order, every refusal, the re-check, what goes first, coming back."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import NovaError
from ansible_collections.cloudops.leveller.plugins.module_utils._recovery import (
    HOME_KEY, Recovery, RecoveryRefused, evacuation_order, evacuation_reason, heartbeat_age, home_metadata,
    is_our_reason, parse_nova_time, reenable, reserved_destinations)
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.recovery.fakes import (
    SECRET, START, FakeBMC, FakeClock, FakeNova, nova_time)


def cloud(dead_for=200, **bmc):
    """c1 silent for ``dead_for`` seconds, its BMC still on; c2-c4 alive."""
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.kill('c1', dead_for)
    fence = FakeBMC(clock, nova, 'c1', **bmc) if bmc.get('behaviour') != 'none' else None
    return clock, nova, fence


def recovery(clock, nova, fence, **kwargs):
    kwargs.setdefault('poll_interval', 1.0)
    return Recovery(nova, 'c1', fence=fence, wall=clock, clock=clock, sleep=clock.sleep, **kwargs)


def names(steps):
    return [(s['step'], s['result']) for s in steps]


def no_secret(*things):
    text = json.dumps([t if isinstance(t, (dict, list, str)) else str(t) for t in things], default=str)
    assert SECRET not in text


# -- the order -------------------------------------------------------------------------------

def test_fencing_order_heartbeat_then_brake_then_power_off_confirmed_then_forced_down_then_disable():
    clock, nova, fence = cloud(off_delay=4.0)
    rec = recovery(clock, nova, fence)
    summary = rec.prepare()
    assert names(summary['steps']) == [
        ('heartbeat', 'ok'), ('mass_failure', 'ok'), ('bmc', 'ok'), ('power_off', 'sent'),
        ('power_confirm', 'ok'), ('forced_down', 'done'), ('disable', 'done')]
    assert summary['fencing'] == 'verified' and rec.verified is True
    # The BMC is ordered off, read until off, and only then is anything changed in Nova.
    events = [e for e in nova.log if e[0] == 'bmc' or e[1].startswith('set_')]
    first_write = events.index(('nova', 'set_forced_down', 'c1', True))
    assert ('bmc', 'off') in events[:first_write]
    assert events[first_write - 1] == ('bmc', 'read') and fence.state == 'off'
    assert events[first_write:] == [('nova', 'set_forced_down', 'c1', True), ('nova', 'set_service_status', 'c1', False)]
    # it waited for the BMC: 4 s of off_delay on the fake clock
    assert clock.now - START >= 4.0
    assert 'after 4.0 s' in summary['steps'][4]['detail']
    svc = nova.services['c1']
    assert svc['forced_down'] is True and svc['status'] == 'disabled'
    assert svc['disabled_reason'] == 'evacuated by cloudops.leveller at 2027-01-15T08:00:04Z'
    assert summary['service']['after']['forced_down'] is True
    no_secret(summary, rec.steps)


def test_already_off_at_the_bmc_sends_no_order():
    clock, nova, fence = cloud(state='off')
    summary = recovery(clock, nova, fence).prepare()
    assert ('bmc', 'off') not in nova.log
    assert ('power_off', 'ok') in names(summary['steps']) and ('power_confirm', 'ok') in names(summary['steps'])


def test_already_forced_down_and_disabled_by_someone_keeps_their_reason():
    clock, nova, fence = cloud()
    nova.services['c1'].update(forced_down=True, status='disabled', disabled_reason='RAM errors, OPS-9')
    nova.last_write['c1'] = clock() - 500
    summary = recovery(clock, nova, fence).prepare()
    assert ('forced_down', 'ok') in names(summary['steps']) and ('disable', 'ok') in names(summary['steps'])
    assert nova.writes() == []
    assert nova.services['c1']['disabled_reason'] == 'RAM errors, OPS-9'


def test_a_bmc_read_failing_once_while_powering_off_is_retried_until_off():
    clock, nova, fence = cloud(behaviour='flaky', off_delay=3.0)
    summary = recovery(clock, nova, fence).prepare()
    assert ('power_confirm', 'ok') in names(summary['steps'])


def test_a_bmc_that_answers_an_error_but_powers_off_is_taken_once_it_reads_off():
    clock, nova, fence = cloud(behaviour='refuse-but-off')
    summary = recovery(clock, nova, fence).prepare()
    step = [s for s in summary['steps'] if s['step'] == 'power_off'][0]
    assert step['result'] == 'ok' and '409' in step['detail']
    assert nova.services['c1']['forced_down'] is True


# -- refusals before anything is changed -------------------------------------------------------

def refused(rec):
    with pytest.raises(RecoveryRefused) as info:
        rec.prepare()
    return info.value


def test_partitioned_host_forced_down_by_hand_but_still_reporting_is_refused_and_untouched():
    clock, nova, fence = cloud()
    nova.reconnect('c1')  # nova-compute runs and reports
    nova.services['c1']['forced_down'] = True  # an operator forced it down
    err = refused(recovery(clock, nova, fence))
    assert names(err.steps) == [('heartbeat', 'refused')]
    assert 'reported 0 s ago' in str(err) and 'service_down_time (60 s)' in str(err)
    assert err.failure == 'inconsistent'
    assert not [e for e in nova.log if e[0] == 'bmc'] and nova.writes() == []


def test_a_host_nova_reads_up_is_refused():
    clock, nova, fence = cloud()
    nova.reconnect('c1')
    err = refused(recovery(clock, nova, fence))
    assert 'its compute service is up' in str(err) and 'state=drained' in str(err)
    assert nova.writes() == [] and fence.state == 'on'


def test_heartbeat_just_within_service_down_time_is_refused_just_past_it_accepted():
    clock, nova, fence = cloud(dead_for=59)
    nova.services['c1']['forced_down'] = True
    err = refused(recovery(clock, nova, fence))
    assert err.steps[-1]['step'] == 'heartbeat'
    clock, nova, fence = cloud(dead_for=61)
    assert recovery(clock, nova, fence).prepare()['fencing'] == 'verified'


def test_a_controller_clock_ahead_of_the_cloud_cannot_make_a_live_host_look_dead():
    clock, nova, fence = cloud()
    nova.reconnect('c1')
    nova.services['c1']['forced_down'] = True
    # This host's clock runs 10 minutes ahead: on it alone the heartbeat looks 600 s old.
    rec = Recovery(nova, 'c1', fence=fence, wall=lambda: clock() + 600, clock=clock, sleep=clock.sleep)
    err = refused(rec)
    assert err.steps[-1]['step'] == 'heartbeat' and fence.state == 'on'


def test_unknown_host_is_a_configuration_error_naming_the_known_hosts():
    clock, nova, fence = cloud()
    err = refused(Recovery(nova, 'c9', fence=fence, wall=clock, clock=clock, sleep=clock.sleep))
    assert err.failure == 'configuration' and 'c1, c2, c3, c4' in str(err)


def test_nova_unreachable_is_refused_as_unreachable():
    clock, nova, fence = cloud()
    nova.fail['compute_services'] = [NovaError('GET /os-services returned HTTP 503: down')]
    err = refused(recovery(clock, nova, fence))
    assert err.failure == 'unreachable' and '503' in str(err)


def test_bmc_unreachable_is_refused_before_any_change_and_without_the_password():
    clock, nova, fence = cloud(behaviour='unreachable')
    err = refused(recovery(clock, nova, fence))
    assert names(err.steps) == [('heartbeat', 'ok'), ('mass_failure', 'ok'), ('bmc', 'refused')]
    assert 'its BMC cannot be read' in str(err) and err.failure == 'unreachable'
    assert ('bmc', 'off') not in nova.log and nova.writes() == []
    no_secret(str(err), err.steps)
    assert '********' in str(err)  # the library's text carried it: scrubbed, not dropped


def test_bmc_still_on_after_fence_timeout_is_refused_and_nothing_is_forced_down():
    clock, nova, fence = cloud(behaviour='ignore-off', fence_timeout=30)
    err = refused(recovery(clock, nova, fence))
    assert err.steps[-1]['step'] == 'power_confirm' and err.steps[-1]['result'] == 'refused'
    assert 'still reads on 30 s after the power off order' in str(err)
    assert 'fence.fence_timeout' in str(err)
    assert 30.0 <= clock.now - START <= 31.0
    assert nova.writes() == [] and nova.services['c1']['forced_down'] is False


def test_bmc_refusing_the_order_and_still_on_is_refused():
    clock, nova, fence = cloud(behaviour='refuse-off')
    err = refused(recovery(clock, nova, fence))
    assert err.steps[-1]['step'] == 'power_off' and 'did not take the power off order' in str(err)
    assert 'reads on' in str(err) and nova.writes() == []


def test_forced_down_failing_after_power_off_is_refused_and_says_the_host_is_off():
    clock, nova, fence = cloud()
    nova.fail['set_forced_down'] = [NovaError('PUT /os-services/svc-c1 returned HTTP 500: boom')]
    err = refused(recovery(clock, nova, fence))
    assert err.steps[-1]['step'] == 'forced_down' and 'off at its BMC' in str(err)
    assert fence.state == 'off' and err.failure == 'unreachable'


# -- without a fence driver ------------------------------------------------------------------

def test_no_fence_driver_and_no_fenced_is_refused_with_both_ways_out():
    clock, nova, fence = cloud(behaviour='none')
    err = refused(recovery(clock, nova, None))
    assert 'Give fence' in str(err) and 'fenced=true' in str(err) and err.failure == 'configuration'
    assert nova.writes() == []


def test_fenced_true_needs_a_heartbeat_older_than_min_down_seconds():
    clock, nova, fence = cloud(dead_for=90, behaviour='none')
    err = refused(recovery(clock, nova, None, fenced=True))
    assert 'min_down_seconds (120 s)' in str(err) and 'Wait 31 s more' in str(err)
    assert nova.writes() == []
    clock, nova, fence = cloud(dead_for=90, behaviour='none')
    summary = recovery(clock, nova, None, fenced=True, min_down_seconds=80).prepare()
    assert summary['fencing'] == 'asserted'


def test_fenced_true_with_an_old_heartbeat_is_asserted_not_verified():
    clock, nova, fence = cloud(dead_for=300, behaviour='none')
    rec = recovery(clock, nova, None, fenced=True)
    summary = rec.prepare()
    assert summary['fencing'] == 'asserted' and rec.verified is False
    step = [s for s in summary['steps'] if s['step'] == 'fence'][0]
    assert step['result'] == 'asserted' and 'asserted by the operator' in step['detail']
    assert 'not verified' in step['detail']
    assert names(summary['steps'])[-2:] == [('forced_down', 'done'), ('disable', 'done')]


def test_fenced_true_is_not_needed_and_not_trusted_over_the_bmc_with_a_driver():
    clock, nova, fence = cloud(behaviour='ignore-off', fence_timeout=5)
    err = refused(recovery(clock, nova, fence, fenced=True))
    assert err.steps[-1]['step'] == 'power_confirm'


# -- the mass failure brake --------------------------------------------------------------------

def test_three_of_four_hosts_down_is_refused_with_how_to_override():
    clock, nova, fence = cloud()
    nova.kill('c2', 300)
    nova.kill('c3', 300)
    err = refused(recovery(clock, nova, fence))
    assert err.steps[-1]['step'] == 'mass_failure'
    assert '3 of 4 compute hosts in scope are down at once (c1, c2, c3)' in str(err)
    assert 'raise max_down_fraction' in str(err)
    assert ('bmc', 'read') not in nova.log and nova.writes() == []
    summary = recovery(clock, nova, fence, max_down_fraction=1.0).prepare()
    assert summary['fencing'] == 'verified'


def test_half_of_the_hosts_down_is_not_more_than_half():
    clock, nova, fence = cloud()
    nova.kill('c2', 300)
    assert recovery(clock, nova, fence).prepare()['fencing'] == 'verified'


def test_the_brake_counts_forced_down_hosts_and_only_the_scope():
    clock, nova, fence = cloud()
    nova.services['c2']['forced_down'] = True  # down for Nova although it reports
    err = refused(recovery(clock, nova, fence, scope=['c1', 'c2', 'c3'], max_down_fraction=0.6))
    assert '2 of 3' in str(err)
    err = refused(recovery(clock, nova, fence, scope=['c2', 'c9']))
    assert 'c9' in str(err) and err.failure == 'configuration'


@pytest.mark.parametrize('kwargs, words', [
    (dict(service_down_time=0), 'service_down_time'),
    (dict(min_down_seconds=30), 'min_down_seconds (30) is below service_down_time (60)'),
    (dict(max_down_fraction=0), 'max_down_fraction'),
    (dict(max_down_fraction=1.5), 'max_down_fraction'),
    (dict(poll_interval=0), 'poll_interval'),
])
def test_bad_parameters_are_refused_by_name(kwargs, words):
    clock, nova, fence = cloud()
    with pytest.raises(LevellerError, match=words.replace('(', r'\(').replace(')', r'\)')):
        Recovery(nova, 'c1', fence=fence, wall=clock, clock=clock, sleep=clock.sleep, **kwargs)


# -- check mode -------------------------------------------------------------------------------

def test_check_mode_reads_the_bmc_but_changes_nothing():
    clock, nova, fence = cloud()
    rec = recovery(clock, nova, fence, check_mode=True)
    summary = rec.prepare()
    assert names(summary['steps']) == [
        ('heartbeat', 'ok'), ('mass_failure', 'ok'), ('bmc', 'ok'), ('power_off', 'would'),
        ('power_confirm', 'would'), ('forced_down', 'would'), ('disable', 'would')]
    assert ('bmc', 'off') not in nova.log and nova.writes() == [] and fence.state == 'on'
    assert summary['service']['after']['status'] == 'disabled'
    assert summary['fencing'] == 'would be verified'
    assert rec.recheck('c1') is None


def test_check_mode_still_refuses_an_unreachable_bmc():
    clock, nova, fence = cloud(behaviour='unreachable')
    refused(recovery(clock, nova, fence, check_mode=True))


# -- (e) the re-check before each evacuation ------------------------------------------------------

def prepared(**kwargs):
    clock, nova, fence = cloud()
    rec = recovery(clock, nova, fence, **kwargs)
    rec.prepare()
    clock.sleep(15)
    return clock, nova, fence, rec


def test_recheck_passes_while_fenced_although_our_own_changes_moved_updated_at():
    clock, nova, fence, rec = prepared()
    svc = nova.compute_services()['c1']
    assert abs(parse_nova_time(svc['updated_at']) - clock()) < 20  # our PUTs made it look fresh
    assert rec.recheck('c1') is None
    assert rec.recheck() is None


def test_recheck_stops_when_nova_compute_reports_again():
    clock, nova, fence, rec = prepared()
    nova.reconnect('c1')
    reason = rec.recheck('c1')
    assert 'reported again after it was fenced' in reason


def test_recheck_stops_when_the_bmc_reads_on_again():
    clock, nova, fence, rec = prepared()
    fence.state = 'on'  # someone powered it on; nova-compute not yet up
    assert rec.recheck('c1') == 'the BMC of c1 reads on: the host has power again'


def test_recheck_stops_when_the_bmc_cannot_be_read():
    clock, nova, fence, rec = prepared()
    fence.behaviour = 'unreachable'
    reason = rec.recheck('c1')
    assert reason.startswith('cannot read the BMC of c1') and SECRET not in reason


def test_recheck_stops_when_forced_down_is_cleared():
    clock, nova, fence, rec = prepared()
    nova.services['c1']['forced_down'] = False
    assert 'forced_down was cleared' in rec.recheck('c1')


def test_recheck_stops_when_nova_cannot_be_read_and_refuses_other_hosts():
    clock, nova, fence, rec = prepared()
    assert 'not the fenced host' in rec.recheck('c2')
    nova.fail['compute_services'] = [NovaError('HTTP 503')]
    assert 'cannot re-check c1' in rec.recheck('c1')


def test_recheck_before_prepare_refuses():
    clock, nova, fence = cloud()
    assert 'has not run' in recovery(clock, nova, fence).recheck('c1')


def test_recheck_without_a_driver_checks_forced_down_and_heartbeat():
    clock, nova, fence = cloud(dead_for=300, behaviour='none')
    rec = recovery(clock, nova, None, fenced=True)
    rec.prepare()
    clock.sleep(30)
    assert rec.recheck('c1') is None
    nova.reconnect('c1')
    assert 'reported again' in rec.recheck('c1')


# -- what goes first, and where --------------------------------------------------------------------

def server(uid, name=None, metadata=None, vcpus=2, ram=2048, disk=10):
    return {'id': uid, 'name': name or 'vm-' + uid, 'metadata': metadata or {},
            'flavor': {'vcpus': vcpus, 'memory_mb': ram, 'disk_gb': disk}}


def test_evacuation_order_priority_then_ha_enabled_then_name_each_group_a_wave():
    servers = [server('a', 'zeta'), server('b', 'alpha'), server('c', 'mid', {'HA_Enabled': 'True'}),
               server('d', 'db', {'leveller:priority': '10'}), server('e', 'ha2', {'HA_Enabled': 'true'}),
               server('f', 'low', {'leveller:priority': '-1'}), server('g', 'odd', {'leveller:priority': 'high'}),
               server('h', 'notha', {'HA_Enabled': 'False'})]
    ordered, notes = evacuation_order(servers)
    assert [(s['name'], wave) for s, wave in ordered] == [
        ('db', 1), ('ha2', 2), ('mid', 2), ('alpha', 3), ('notha', 3), ('odd', 3), ('zeta', 3), ('low', 4)]
    assert notes == ["odd (g): metadata leveller:priority='high' is not a whole number; taken as 0"]


def test_evacuation_order_with_another_priority_key():
    ordered, notes = evacuation_order([server('a', 'a'), server('b', 'b', {'tier': 'yes'})], priority_key='tier')
    assert [s['id'] for s, _wave in ordered] == ['b', 'a'] and notes == []


def services_for(**states):
    base = {'id': 'x', 'status': 'enabled', 'state': 'up', 'forced_down': False, 'disabled_reason': None}
    out = {}
    for host, change in states.items():
        svc = dict(base, host=host)
        svc.update(change)
        out[host] = svc
    return out


def room(vcpu, ram, disk=100):
    return {'VCPU': {'free': vcpu, 'max_unit': 64}, 'MEMORY_MB': {'free': ram, 'max_unit': 65536},
            'DISK_GB': {'free': disk, 'max_unit': 1000}}


def test_reserved_hosts_first_fit_in_order_then_the_scheduler():
    services = services_for(c1={'state': 'down'}, r1={}, r2={}, r3={'status': 'disabled'}, r4={'state': 'down'})
    servers = [server('a', vcpus=4), server('b', vcpus=4), server('c', vcpus=4), server('d', vcpus=64)]
    chosen, notes = reserved_destinations(servers, ['r1', 'r2', 'r3', 'r4'], services,
                                          {'r1': room(6, 8192), 'r2': room(4, 8192)}, 'c1')
    assert chosen == {'a': 'r1', 'b': 'r2', 'c': None, 'd': None}
    assert any('r3 is disabled' in n and 'enable it' in n for n in notes)
    assert any('r4 is down' in n for n in notes)


def test_reserved_hosts_use_placement_needs_when_given():
    services = services_for(c1={'state': 'down'}, r1={})
    servers = [server('a', vcpus=4, disk=80)]
    chosen, _notes = reserved_destinations(servers, ['r1'], services, {'r1': room(8, 8192, disk=20)}, 'c1')
    assert chosen == {'a': None}  # the flavor's 80 GB root disk does not fit
    chosen, _notes = reserved_destinations(servers, ['r1'], services, {'r1': room(8, 8192, disk=20)}, 'c1',
                                           needs={'a': {'VCPU': 4, 'MEMORY_MB': 2048}})  # boot from volume
    assert chosen == {'a': 'r1'}


@pytest.mark.parametrize('reserved, words', [(['r9'], 'r9 runs no nova-compute service'),
                                             (['c1'], 'c1 is the failed host itself')])
def test_reserved_hosts_unknown_or_the_failed_host_are_errors(reserved, words):
    services = services_for(c1={'state': 'down'}, r1={})
    with pytest.raises(LevellerError, match=words):
        reserved_destinations([server('a')], reserved, services, {}, 'c1')


def test_home_metadata_records_the_first_home_only():
    assert home_metadata(server('a'), 'c1') == {HOME_KEY: 'c1'} == {'leveller:home': 'c1'}
    assert home_metadata(server('a', metadata={'leveller:home': 'c7'}), 'c1') == {}


# -- coming back ---------------------------------------------------------------------------------

def evacuated(clock=None):
    """c1 fenced and evacuated two instances 10 minutes ago; its BMC is off."""
    clock = clock or FakeClock()
    nova = FakeNova(clock)
    nova.kill('c1', 700)
    nova.services['c1'].update(forced_down=True, status='disabled',
                               disabled_reason=evacuation_reason(clock() - 600))
    nova.last_write['c1'] = clock() - 600
    nova.add_record('c1', 'i1', at=clock() - 590)
    nova.add_record('c1', 'i2', at=clock() - 580)
    return clock, nova


def enable(clock, nova, **kwargs):
    return reenable(nova, 'c1', wall=clock, **kwargs)


def enable_refused(clock, nova, **kwargs):
    with pytest.raises(RecoveryRefused) as info:
        enable(clock, nova, **kwargs)
    return info.value


def test_enable_refused_while_nova_compute_has_not_started_since_the_evacuation():
    clock, nova = evacuated()
    err = enable_refused(clock, nova)
    assert "has not started since the evacuation: 2 evacuation record(s)" in str(err)
    assert 'i1 (done)' in str(err) and 'forced_down stays set' in str(err)
    assert nova.writes() == [] and nova.services['c1']['forced_down'] is True


def test_enable_refused_for_a_partitioned_nova_compute_that_reconnects_without_restarting():
    clock, nova = evacuated()
    nova.reconnect('c1')  # reports again, fresh heartbeat, but never ran its clean-up
    err = enable_refused(clock, nova)
    assert err.steps[-1]['step'] == 'restarted' and nova.writes() == []


def test_enable_after_nova_compute_started_clears_forced_down_then_enables():
    clock, nova = evacuated()
    nova.start('c1')
    clock.sleep(12)
    summary = enable(clock, nova)
    assert summary['changed'] is True and summary['half_state'] is False
    assert nova.writes() == [('nova', 'set_forced_down', 'c1', False), ('nova', 'set_service_status', 'c1', True)]
    assert names(summary['steps']) == [('evacuations', 'ok'), ('restarted', 'ok'), ('forced_down', 'done'),
                                       ('enable', 'done')]
    assert 'completed by its clean-up' in summary['steps'][1]['detail']
    assert summary['service']['after']['status'] == 'enabled'


def test_enable_refused_when_the_cleaned_host_stopped_reporting_again():
    clock, nova = evacuated()
    nova.start('c1')
    clock.sleep(5)
    nova.kill('c1', 0)
    clock.sleep(120)
    err = enable_refused(clock, nova)
    assert 'does not report' in str(err) and nova.writes() == []


def test_enable_refused_until_a_report_comes_after_the_clean_up():
    clock, nova = evacuated()
    nova.start('c1')
    nova.last_report['c1'] = clock() - 1  # clean-up written at now, the last report before it
    nova.alive['c1'] = False
    err = enable_refused(clock, nova)
    assert 'has not reported since the clean-up' in str(err)


def test_records_of_deleted_instances_are_set_aside():
    clock, nova = evacuated()
    nova.start('c1')
    nova.add_record('c1', 'gone', status='done')
    del nova.servers['gone']
    clock.sleep(12)
    summary = enable(clock, nova)
    assert '1 of deleted instance(s) set aside' in summary['steps'][0]['detail']
    assert summary['changed'] is True


def test_a_host_disabled_by_someone_else_needs_force_enable():
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.services['c1'].update(status='disabled', disabled_reason='disk replacement, OPS-77')
    err = enable_refused(clock, nova)
    assert "disabled by someone else ('disk replacement, OPS-77')" in str(err) and 'force_enable=true' in str(err)
    assert nova.writes() == []
    summary = enable(clock, nova, force_enable=True)
    assert ('reason', 'overridden') in names(summary['steps'])
    assert nova.services['c1']['status'] == 'enabled'


def test_a_host_disabled_without_a_reason_is_not_ours():
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.services['c1'].update(status='disabled', disabled_reason=None)
    assert 'no reason given' in str(enable_refused(clock, nova))


def test_a_drained_host_with_our_reason_is_enabled_without_the_restart_rule():
    clock = FakeClock()
    nova = FakeNova(clock)
    nova.services['c1'].update(status='disabled', disabled_reason='disabled by cloudops.leveller')
    summary = enable(clock, nova)
    assert nova.writes() == [('nova', 'set_service_status', 'c1', True)]
    assert [s['step'] for s in summary['steps']] == ['evacuations', 'enable']
    # and one the module passes as its own
    nova.services['c1'].update(status='disabled', disabled_reason='kernel update OPS-1')
    enable(clock, nova, our_reasons=['kernel update OPS-1'])
    assert nova.services['c1']['status'] == 'enabled'


def test_already_enabled_is_unchanged():
    clock = FakeClock()
    nova = FakeNova(clock)
    summary = enable(clock, nova)
    assert summary['changed'] is False and nova.writes() == [] and summary['msg'] == 'c1 already enabled'


def test_half_state_is_reported_then_completed_on_the_next_call():
    clock, nova = evacuated()
    nova.start('c1')
    clock.sleep(12)
    nova.fail['set_service_status'] = [NovaError('PUT /os-services/svc-c1 returned HTTP 500: db gone')]
    err = enable_refused(clock, nova)
    assert err.half_state is True and 'a half state' in str(err) and 'Run state=enabled again' in str(err)
    assert nova.services['c1']['forced_down'] is False and nova.services['c1']['status'] == 'disabled'
    clock.sleep(10)
    summary = enable(clock, nova)
    assert summary['half_state'] is True and ('half_state', 'found') in names(summary['steps'])
    assert 'completing' in summary['msg']
    assert nova.services['c1']['status'] == 'enabled'
    assert nova.writes()[-1] == ('nova', 'set_service_status', 'c1', True)


def test_half_state_with_nova_compute_not_restarted_stays_disabled():
    clock, nova = evacuated()
    nova.services['c1']['forced_down'] = False  # cleared by hand; nothing cleaned up
    err = enable_refused(clock, nova)
    assert err.half_state is True and 'it stays disabled' in str(err) and nova.writes() == []


def test_enable_in_check_mode_changes_nothing():
    clock, nova = evacuated()
    nova.start('c1')
    clock.sleep(12)
    summary = enable(clock, nova, check_mode=True)
    assert summary['changed'] is True and nova.writes() == []
    assert ('forced_down', 'would') in names(summary['steps']) and ('enable', 'would') in names(summary['steps'])
    assert summary['msg'] == 'c1 would be enabled'


def test_enable_with_the_evacuation_records_unreadable_is_refused():
    clock, nova = evacuated()
    nova.fail['evacuations_from'] = [NovaError('GET /os-migrations returned HTTP 503')]
    err = enable_refused(clock, nova)
    assert err.failure == 'unreachable' and nova.writes() == []


# -- small parts -----------------------------------------------------------------------------------

@pytest.mark.parametrize('text, seconds', [
    ('2027-01-15T08:00:00.000000', START),
    ('2027-01-15T08:00:00', START),
    ('2027-01-15T08:00:00Z', START),
    ('2027-01-15T09:00:00+01:00', START),
    ('2027-01-15 08:00:01.500000', START + 1.5),
])
def test_parse_nova_time(text, seconds):
    assert parse_nova_time(text) == seconds
    assert parse_nova_time(nova_time(seconds)) == seconds


def test_parse_nova_time_refuses_other_text():
    assert parse_nova_time(None) is None
    with pytest.raises(ValueError):
        parse_nova_time('yesterday')


def test_heartbeat_age_takes_both_clocks():
    services = {'c1': {'updated_at': nova_time(START - 100)}, 'c2': {'updated_at': nova_time(START - 5)},
                'c3': {'updated_at': None}}
    assert heartbeat_age('c1', services, START) == (95.0, 100.0)
    assert heartbeat_age('c1', services, START + 600) == (95.0, 700.0)
    assert heartbeat_age('c3', services, START) == (None, None)


def test_our_reasons():
    assert is_our_reason('disabled by cloudops.leveller')
    assert is_our_reason(evacuation_reason(START))
    assert not is_our_reason('RAM errors') and not is_our_reason(None) and not is_our_reason('')
    assert is_our_reason('RAM errors', ['RAM errors'])
