# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module's contract: fencing rule, drain, enable, instance count."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.cloudops.leveller.plugins.modules import evacuate_host as mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import moving_module_runner


@pytest.fixture
def env(monkeypatch, tmp_path):
    # Most drains here test the scheduler fallback; the default (no scheduler) is tested below.
    return moving_module_runner(monkeypatch, tmp_path, mod, wait_sleep=1, allow_scheduler=True)


def test_a_drain_without_plan_or_allow_scheduler_changes_nothing(env):
    env.nova.add('u1', 'c1', name='web-1')
    out = env({'host': 'c1', 'state': 'drained', 'allow_scheduler': False})
    assert out.failed and out.result['failure'] == 'configuration'
    assert "c1 still holds 1 instance(s) to move (web-1) and no drain plan was given; nothing was changed" \
        in out.result['msg']
    assert env.nova.calls == [] and env.nova.services['c1']['status'] == 'enabled'


def test_an_empty_host_is_disabled_without_plan_or_scheduler(env):
    env.nova.add('s1', 'c1', status='SHUTOFF')
    out = env({'host': 'c1', 'state': 'drained', 'allow_scheduler': False, 'wait_timeout': 0})
    # nothing to move: the host is disabled; the stopped instance stays and is named
    assert env.nova.services['c1']['status'] == 'disabled'
    assert [c for c in env.nova.calls if c[0] in ('live', 'cold')] == []
    assert out.result['remaining'][0]['reason'] == 'SHUTOFF and migrate_stopped is false'


def test_evacuation_of_a_live_host_is_refused(env):
    env.nova.add('u1', 'c1')
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True})
    assert out.failed and 'compute service is up' in out.result['msg']
    assert env.nova.calls == []


@pytest.mark.parametrize('forced', [False, True])
def test_evacuation_of_a_down_unfenced_host_is_refused(env, forced):
    # forced_down set by hand proves nothing: a partitioned nova-compute may still run the guests.
    env.nova.add('u1', 'c1')
    env.nova.silent('c1', 600)
    env.nova.services['c1']['forced_down'] = forced
    out = env({'host': 'c1', 'state': 'evacuated'})
    assert out.failed and 'nothing proves it is off' in out.result['msg']
    assert [c for c in env.nova.calls if c[0] != 'forced_down'] == [] and not any(
        c[0] in ('evacuate', 'service', 'forced_down') for c in env.nova.calls)
    assert out.result['steps'][-1]['step'] == 'fence' and out.result['steps'][-1]['result'] == 'refused'


def test_a_partitioned_host_that_still_reports_is_refused(env):
    env.nova.add('u1', 'c1')
    env.nova.services['c1'].update(state='down', forced_down=True)  # forced down by hand, heartbeat fresh
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True})
    assert out.failed and 'within service_down_time' in out.result['msg']
    assert not any(c[0] in ('evacuate', 'service') for c in env.nova.calls)


def test_fenced_true_needs_min_down_seconds_of_silence(env):
    env.nova.add('u1', 'c1')
    env.nova.silent('c1', 90)  # down for Nova (service_down_time 60) but under 2 x 60
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True})
    assert out.failed and 'must have been silent for min_down_seconds (120 s)' in out.result['msg']
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True, 'min_down_seconds': 80})
    assert not out.failed, out.result['msg']
    assert out.result['fencing'] == 'asserted'


def test_mass_failure_brake(env):
    env.nova.add('u1', 'c1')
    for h in ('c1', 'c2', 'c3'):
        env.nova.silent(h, 600)
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True})
    assert out.failed and '3 of 4 compute hosts in scope are down' in out.result['msg']
    assert 'max_down_fraction' in out.result['msg'] and env.nova.calls == []


@pytest.mark.parametrize('forced', [False, True])
def test_evacuation_keeps_count_and_power_state(env, forced):
    env.nova.add('u1', 'c1')
    env.nova.add('u2', 'c1', status='SHUTOFF')
    env.nova.silent('c1', 600)
    env.nova.services['c1']['forced_down'] = forced
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True})
    assert not out.failed, out.result['msg']
    r = out.result
    assert r['instances_before'] == r['instances_after'] == 2
    assert r['totals']['evacuated'] == 2 and r['remaining'] == []
    assert env.nova.servers['u1']['status'] == 'ACTIVE' and env.nova.servers['u2']['status'] == 'SHUTOFF'
    assert env.nova.services['c1']['status'] == 'disabled' and env.nova.services['c1']['forced_down'] is True
    assert env.nova.services['c1']['disabled_reason'].startswith('evacuated by cloudops.leveller at ')
    assert '(run %s)' % r['run_id'] in env.nova.services['c1']['disabled_reason']
    assert r['fencing'] == 'asserted' and [st['step'] for st in r['steps']] == [
        'heartbeat', 'mass_failure', 'fence', 'forced_down', 'disable']
    # each evacuated instance records where it came from
    assert ('metadata', 'u1', {'leveller:home': 'c1'}) in env.nova.calls


def test_drain_disables_moves_everything_and_checks_empty(env):
    env.nova.add('u1', 'c1')
    env.nova.add('u2', 'c1')
    env.nova.add('s1', 'c1', status='SHUTOFF')
    out = env({'host': 'c1', 'state': 'drained', 'migrate_stopped': True, 'disabled_reason': 'patching'})
    assert not out.failed, out.result['msg']
    assert out.result['planner'] == 'scheduler'
    assert out.result['totals']['moved'] == 3 and out.result['instances_after'] == 0
    assert env.nova.services['c1']['status'] == 'disabled'
    # The reason names the run (its journal), so state=enabled can tell which run disabled it.
    assert env.nova.services['c1']['disabled_reason'] == 'patching (run %s)' % out.result['run_id']
    assert out.result['run_id'] and out.result['journal'].startswith(env.journal_dir)
    assert all(s['host'] != 'c1' for s in env.nova.servers.values())


def test_drain_leaves_shutoff_instances_and_fails_when_not_empty(env):
    env.nova.add('u1', 'c1')
    env.nova.add('s1', 'c1', status='SHUTOFF')
    out = env({'host': 'c1', 'state': 'drained', 'wait_timeout': 0})
    assert out.failed and 'not empty' in out.result['msg']
    assert out.result['remaining'][0]['reason'] == 'SHUTOFF and migrate_stopped is false'


def test_drain_plan_that_does_not_place_everything_moves_nothing(env):
    env.nova.add('u1', 'c1')
    env.nova.add('u2', 'c1')
    plan = {'version': 1, 'moves': [{'instance': 'u1', 'source': 'c1', 'destination': 'c2', 'wave': 1}],
            'skipped': [{'kind': 'instance', 'id': 'u2', 'name': 'vm-u2', 'reason': 'no room', 'host': 'c1'},
                        {'kind': 'host', 'name': 'c3', 'reason': 'not a destination: disabled'}]}
    out = env({'host': 'c1', 'state': 'drained', 'plan': plan})
    assert out.failed and 'vm-u2: no room' in out.result['msg']
    assert env.nova.calls == []


def test_enabled_is_idempotent_and_clears_forced_down(env):
    env.nova.services['c1'].update(status='disabled', forced_down=True, disabled_reason='disabled by cloudops.leveller')
    out = env({'host': 'c1', 'state': 'enabled'})
    assert out.result['changed'] and env.nova.services['c1']['status'] == 'enabled'
    assert env.nova.services['c1']['forced_down'] is False
    out = env({'host': 'c1', 'state': 'enabled'})
    assert not out.result['changed']


def test_evacuation_of_selected_instances_leaves_the_others(env):
    env.nova.add('u1', 'c1', name='ha-1')
    env.nova.add('u2', 'c1', name='other')
    env.nova.silent('c1', 600)
    out = env({'host': 'c1', 'state': 'evacuated', 'instances': ['ha-1'], 'fenced': True})
    assert not out.failed, out.result['msg']
    assert out.result['instances_before'] == out.result['instances_after'] == 1
    assert env.nova.servers['u1']['host'] != 'c1' and env.nova.servers['u2']['host'] == 'c1'
    assert out.result['left_alone'] == [{'id': 'u2', 'name': 'other', 'status': 'ACTIVE',
                                         'reason': 'not selected (instances)'}]


def test_selected_instance_not_on_the_host_fails_before_any_change(env):
    env.nova.add('u1', 'c1', name='ha-1')
    out = env({'host': 'c1', 'state': 'drained', 'instances': ['ha-1', 'elsewhere']})
    assert out.failed and 'instances elsewhere are not on c1' in out.result['msg']
    assert env.nova.calls == []


def test_drain_of_selected_instances_waits_only_for_them(env):
    env.nova.add('u1', 'c1', name='a')
    env.nova.add('u2', 'c1', name='b')
    out = env({'host': 'c1', 'state': 'drained', 'instances': ['a']})
    assert not out.failed, out.result['msg']
    assert out.result['totals']['moved'] == 1 and out.result['remaining'] == []
    assert env.nova.servers['u2']['host'] == 'c1'


def test_evacuation_diff_shows_moves_and_service(env):
    env.nova.add('u1', 'c1')
    env.nova.silent('c1', 600)
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True, '_ansible_diff': True})
    assert not out.failed, out.result['msg']
    diff = out.result['diff']
    assert diff['before']['service']['status'] == 'enabled'
    assert diff['after']['service']['status'] == 'disabled'
    (key,) = diff['before']['hosts']
    assert key.endswith('(u1)') and diff['before']['hosts'][key] == 'c1'
    assert diff['after']['hosts'][key] == env.nova.servers['u1']['host'] != 'c1'


def test_a_late_nova_error_still_returns_the_moves_and_totals(env, monkeypatch):
    env.nova.add('u1', 'c1')
    real = env.nova.servers_on_host
    calls = []

    def flaky(host):  # the first read (what is on the host) works; the final count fails
        calls.append(host)
        if len(calls) > 1:
            raise mod.NovaError('GET /servers/detail returned HTTP 503: unavailable', status=503)
        return real(host)
    monkeypatch.setattr(env.nova, 'servers_on_host', flaky)
    out = env({'host': 'c1', 'state': 'drained'})
    assert out.failed and 'stopped on a Nova error' in out.result['msg'] and '503' in out.result['msg']
    assert out.result['totals']['moved'] == 1
    assert [m['result'] for m in out.result['moves']] == ['moved']


def test_enabled_names_the_run_that_disabled_the_host(env):
    env.nova.add('u1', 'c1')
    drained = env({'host': 'c1', 'state': 'drained'})
    assert not drained.failed
    out = env({'host': 'c1', 'state': 'enabled'})
    assert not out.failed and out.result['disabled_by_run'] == drained.result['run_id']
    assert env.nova.services['c1']['status'] == 'enabled'


def test_resume_of_another_hosts_journal_is_refused(env):
    env.nova.add('u1', 'c1')
    drained = env({'host': 'c1', 'state': 'drained'})
    env({'host': 'c1', 'state': 'enabled'})
    out = env({'host': 'c2', 'state': 'drained', 'resume': drained.result['journal']})
    assert out.failed and 'moves instances off c1, not c2' in out.result['msg']
    out = env({'host': 'c1', 'state': 'evacuated', 'resume': drained.result['journal'], 'fenced': True})
    assert out.failed


def test_resume_with_state_enabled_is_refused(env):
    out = env({'host': 'c1', 'state': 'enabled', 'resume': '/x.jsonl'})
    assert out.failed and 'resume is used with state=drained or state=evacuated' in out.result['msg']


def test_enable_after_evacuation_waits_for_the_restart_and_refuses_foreign_reasons(env):
    env.nova.add('u1', 'c1')
    env.nova.silent('c1', 600)
    out = env({'host': 'c1', 'state': 'evacuated', 'fenced': True})
    assert not out.failed, out.result['msg']
    evacuation_run = out.result['run_id']
    # nova-compute has not started again: its evacuation record still awaits clean-up
    out = env({'host': 'c1', 'state': 'enabled'})
    assert out.failed and 'has not started since the evacuation' in out.result['msg']
    assert env.nova.services['c1']['forced_down'] is True
    # it starts: the record is completed by its clean-up, then it reports
    from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import nova_time
    import time
    for mig in env.nova.migs['u1']:
        if mig.get('type') == 'evacuation':
            mig.update(status='completed', updated_at=nova_time(time.time() - 5))
    env.nova.services['c1'].update(state='up', updated_at=nova_time(time.time()))
    out = env({'host': 'c1', 'state': 'enabled'})
    assert not out.failed, out.result['msg']
    assert out.result['disabled_by_run'] == evacuation_run
    assert env.nova.services['c1']['status'] == 'enabled' and env.nova.services['c1']['forced_down'] is False
    # a host disabled by someone else stays disabled without force_enable
    env.nova.services['c2'].update(status='disabled', disabled_reason='RMA ticket 42')
    out = env({'host': 'c2', 'state': 'enabled'})
    assert out.failed and 'disabled by someone else' in out.result['msg']
    out = env({'host': 'c2', 'state': 'enabled', 'force_enable': True})
    assert not out.failed and env.nova.services['c2']['status'] == 'enabled'
